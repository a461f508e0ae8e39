"""The web UI: server-rendered page shells (Jinja2) whose scripts speak the same REST API as
every other client, with the caller's own identity. Everything is served from this app:
no CDN, no web font, so the pages work offline.

Sign-in follows `settings.auth_mode`: with API keys, the key goes into an HttpOnly cookie
(`identity.SESSION_COOKIE`) that the API accepts like a header; behind an authenticating
proxy there is nothing to sign in to, the proxy's headers name the user on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from swagger_ui_bundle import swagger_ui_path

from api.identity import SESSION_COOKIE, Caller, key_checker
from settings import Settings

HERE = Path(__file__).parent
PAGES = Environment(
    loader=FileSystemLoader(HERE / "pages"), autoescape=select_autoescape(), trim_blocks=True
)
MAX_FORM = 4096
"""Bytes of a sign-in form: a key and where to go next."""
COOKIE_MAX_AGE_S = 12 * 3600
"""A browser sign-in lasts a working day."""

SessionId = Annotated[str, PathParam(pattern=r"^session-[0-9a-f]{32}$")]
DeploymentId = Annotated[str, PathParam(pattern=r"^[0-9a-z-]{1,64}$")]


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//elsewhere`)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static assets and the API's interactive docs to `app`."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Preflight API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    # One key store for the sign-in form, reread when the keys file changes.
    app.state.check_key = key_checker(settings) if settings.auth_mode == "api_key" else None
    app.include_router(router)


router = APIRouter(include_in_schema=False)


def page(
    request: Request,
    name: str,
    caller: Caller | None,
    context: Mapping[str, str | None],
    code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    html = PAGES.get_template(name).render(
        caller=caller,
        roles=sorted(caller.roles) if caller else [],
        auth_mode=settings.auth_mode,
        **context,
    )
    # The pages load nothing from elsewhere; say so to the browser as well.
    policy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    return HTMLResponse(html, code, headers={"Content-Security-Policy": policy})


async def signed_in(request: Request) -> Caller | None:
    try:
        caller: Caller = await request.app.state.authenticate(request)
    except HTTPException as error:
        if error.status_code == status.HTTP_401_UNAUTHORIZED:
            return None
        raise
    return caller


def to_sign_in(request: Request) -> Response:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(path)}", status.HTTP_303_SEE_OTHER)


async def shell(request: Request, name: str, **context: str) -> Response:
    caller = await signed_in(request)
    if caller is None:
        return to_sign_in(request)
    return page(request, name, caller, dict(context))


@router.get("/")
async def home(request: Request) -> Response:
    return await shell(request, "home.html", title="Sessions")


@router.get("/s/{session_id}")
async def session_page(request: Request, session_id: SessionId) -> Response:
    return await shell(request, "session.html", title="Session", session_id=session_id)


@router.get("/d")
async def deployments_page(request: Request) -> Response:
    return await shell(request, "deployments.html", title="Deployments")


@router.get("/i")
async def insights_page(request: Request) -> Response:
    return await shell(request, "insights.html", title="Insights")


@router.get("/d/{deployment_id}")
async def dashboard_page(request: Request, deployment_id: DeploymentId) -> Response:
    return await shell(request, "dashboard.html", title="Deployment", deployment_id=deployment_id)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/") -> Response:
    caller = await signed_in(request)
    if caller is not None:
        return RedirectResponse(_local(next), status.HTTP_303_SEE_OTHER)
    context = {"title": "Sign in", "next": _local(next), "error": None}
    return page(request, "sign_in.html", None, context)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the sign-in form is too long")
    form = parse_qs(body.decode(errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    check_key = request.app.state.check_key
    if check_key is None:  # behind a proxy, the proxy signs people in
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    caller = check_key(key) if key else None
    if caller is None:
        error = "Enter your API key." if not key else "That API key is not known."
        context = {"title": "Sign in", "next": target, "error": error}
        return page(request, "sign_in.html", None, context, status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/sign-out")
async def sign_out() -> Response:
    response = RedirectResponse("/sign-in", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response
