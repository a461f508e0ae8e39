"""How the API reports a refusal: `{"detail": "<what is wrong>"}`, documented in OpenAPI."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


MEANINGS = {
    401: "No credentials, or credentials nobody holds.",
    403: "The caller lacks the role this needs.",
    404: "No such resource (or none the caller may see).",
    409: "It exists already; `detail` says what.",
    422: "The body is malformed: an unknown field or a bad value; `detail` names it.",
    502: "The cluster could not be read (unreachable, or it refused); `detail` says which.",
    503: "The knowledge base (or another dependency) is not ready.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the refusals a route can give."""
    return {code: {"model": Problem, "description": MEANINGS[code]} for code in codes}


def describe(errors: Sequence[Any]) -> str:
    """Validation errors as one line naming each field (`intent.traffic.peak_qps: ...`),
    without the rejected values, which may be long or private."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(location)}: {message}" if location else message)
    return "; ".join(parts)


class ReadableValidation(APIRoute):
    """A route whose malformed requests get 422 with one sentence naming the fields (the
    same shape as every other refusal, and documented so) instead of FastAPI's list of error
    objects; a body that is not JSON at all is malformed too (FastAPI says 400)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        responses = dict(kwargs.pop("responses", None) or {})
        responses.setdefault(422, problems(422)[422])
        super().__init__(path, endpoint, responses=responses, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, describe(error.errors())
                ) from None
            except StarletteHTTPException as error:  # FastAPI's body parsing raises this
                if error.status_code != status.HTTP_400_BAD_REQUEST:
                    raise
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, "the request body is not JSON"
                ) from None

        return route


def allowed_methods(app: Any, path: str) -> str:
    """Every method some route serves at `path` (Starlette's 405 names only one route's)."""
    methods = {
        method
        for route in app.routes
        if isinstance(route, APIRoute) and route.path_regex.match(path)
        for method in route.methods or ()
    }
    return ", ".join(sorted(methods))
