"""How the API reports a refusal: `{"detail": "<what is wrong>"}`, documented in OpenAPI."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


MEANINGS = {
    401: "No credentials, or credentials nobody holds.",
    403: "The caller lacks the role this needs.",
    404: "No such resource (or none the caller may see).",
    409: "It exists already; `detail` says what.",
    422: "The body is malformed: an unknown field or a bad value; `detail` names it.",
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
    same shape as every other refusal) instead of FastAPI's list of error objects."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, describe(error.errors())
                ) from None

        return route
