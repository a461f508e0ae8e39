"""The command line as a client of a running Preflight API (`PREFLIGHT_API_URL`).

It imports nothing of the planner or the knowledge base: a question the server answers costs
this process a request, not the seconds of loading a catalog. Standard-library HTTP, for the
same reason (an HTTP client package takes longer to import than the server takes to plan).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from cli.console import fail
from settings import Settings

TIMEOUT_S = 120.0
"""A full catalog search on a busy server takes seconds at worst, never minutes."""


def post(settings: Settings, path: str, body: dict[str, Any]) -> Any:
    """The server's JSON answer, or a red line naming what went wrong (its `detail` for a
    refusal). The key never appears in what is printed."""
    assert settings.api_url is not None
    if settings.api_key is None:
        raise fail(
            "PREFLIGHT_API_URL is set but PREFLIGHT_API_KEY is not: ask an admin for a key "
            "(`preflight users add`)"
        )
    url = settings.api_url.rstrip("/") + path
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise fail(f"{url}: {error.code} {_detail(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise fail(f"cannot reach the Preflight API at {settings.api_url}: {reason}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's own validation shape, should a route use it
        detail = "; ".join(str(d.get("msg", d)) for d in detail)
    return str(detail or error.reason)
