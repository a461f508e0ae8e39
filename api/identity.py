"""Who calls the API, and what they may do.

Two ways to know the caller (`settings.auth_mode`):
- `api_key`: a key sent as `Authorization: Bearer <key>` or `X-API-Key`, looked up in the
  keys file (`api.keys`: its storage);
- `proxy_header`: an authenticating proxy in front of the API names the user and roles in
  headers, believed only from the proxy's own addresses (`settings.trusted_proxies`).

Roles: a requester plans and deploys, an approver approves, an admin may do everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from api.keys import KeysFileError, KeyStore, Role, checked_roles, checked_user
from settings import Settings


class Caller(BaseModel):
    """An authenticated user and the roles they hold."""

    model_config = ConfigDict(frozen=True)
    user: str
    roles: frozenset[Role]

    def can(self, role: Role) -> bool:
        """Whether the caller holds `role`; an admin holds every role."""
        return role in self.roles or "admin" in self.roles


Authenticate = Callable[[Request], Awaitable[Caller]]


def unauthorized(detail: str, scheme: str = "Bearer") -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": f'{scheme} realm="preflight"'},
    )


SESSION_COOKIE = "preflight_key"
"""The web UI's sign-in: the API key in an HttpOnly, SameSite=Strict cookie, so page scripts
never hold it."""
CSRF_HEADER = "X-Preflight-UI"
"""Sent by the web UI's scripts with every change. A cookie rides along on any request the
browser makes; a custom header only on the page's own (other sites cannot set it)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _presented_key(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if header := request.headers.get("X-API-Key", "").strip():
        return header
    cookie = request.cookies.get(SESSION_COOKIE, "").strip()
    if cookie and request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a change signed in by cookie must come from the web UI (the {CSRF_HEADER} header)",
        )
    return cookie or None


def key_checker(settings: Settings) -> Callable[[str], Caller | None]:
    """Who holds `key` (None: nobody), from the keys file; 503 when the file is unusable."""
    store = KeyStore(settings.resolved_api_keys_file)

    def check(key: str) -> Caller | None:
        try:
            entry = store.find(key)
        except KeysFileError as error:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"the API keys file is not usable: {error}"
            ) from None
        return None if entry is None else Caller(user=entry.user, roles=frozenset(entry.roles))

    return check


def authenticator(settings: Settings) -> Authenticate:
    """The dependency that names the caller of a request, per `settings.auth_mode`; 401
    (with `WWW-Authenticate`) when it cannot."""
    if settings.auth_mode == "proxy_header":
        return _proxy_authenticator(settings)
    check = key_checker(settings)

    async def caller(request: Request) -> Caller:
        key = _presented_key(request)
        if key is None:
            raise unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")
        found = check(key)
        if found is None:
            raise unauthorized("unknown API key")
        return found

    return caller


def _proxy_authenticator(settings: Settings) -> Authenticate:
    trusted = [ip_network(p, strict=False) for p in settings.trusted_proxies]
    user_header, roles_header = settings.proxy_user_header, settings.proxy_roles_header

    def is_trusted(host: str | None) -> bool:
        try:
            address = ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in trusted)

    async def caller(request: Request) -> Caller:
        host = request.client.host if request.client else None
        if not is_trusted(host):
            raise unauthorized(
                f"{host or 'an unknown address'} is not a trusted proxy: it may not assert "
                f"{user_header}",
                "Proxy",
            )
        user = request.headers.get(user_header, "").strip()
        if not user:
            raise unauthorized(f"missing {user_header} header from the proxy", "Proxy")
        try:
            checked_user(user)
        except ValueError as error:
            raise unauthorized(f"{user_header}: {error}", "Proxy") from None
        names = request.headers.get(roles_header, "").split(",")
        try:
            roles = checked_roles(n.strip().lower() for n in names if n.strip())
        except ValueError as error:
            raise unauthorized(f"{roles_header}: {error}", "Proxy") from None
        return Caller(user=user, roles=roles)

    return caller


_BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


async def current_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    _api_key: Annotated[str | None, Security(_API_KEY)],
) -> Caller:
    """The route dependency: the app's authenticator (`create_app` installs it on
    `app.state.authenticate`). The two security parameters only document the schemes in
    OpenAPI, so /docs offers to sign in; the authenticator reads the headers itself."""
    authenticate: Authenticate | None = getattr(request.app.state, "authenticate", None)
    if authenticate is None:
        raise RuntimeError("no authenticator: create the app with api.app.create_app")
    return await authenticate(request)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that passes callers holding any of `roles` and refuses others (403)."""
    if not roles:
        raise ValueError("require() needs at least one role")

    async def allowed(caller: CurrentCaller) -> Caller:
        if not any(caller.can(role) for role in roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{caller.user} needs the {' or '.join(roles)} role"
            )
        return caller

    return allowed
