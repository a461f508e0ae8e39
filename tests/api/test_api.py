"""The API reports the health of what it depends on, honestly."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from settings import Settings
from tests.conftest import free_port


def test_health_is_degraded_when_temporal_is_down(database_url: str) -> None:
    settings = Settings(database_url=database_url, temporal_address=f"127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"status": "ok", "detail": None}
    assert body["temporal"]["status"] == "unavailable"


def test_health_reports_an_unreachable_database() -> None:
    settings = Settings(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["database"]["status"] == "unavailable"
    assert "nobody" not in str(body)
