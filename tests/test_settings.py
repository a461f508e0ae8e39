"""Settings come from the environment, and production refuses demo defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settings import Settings


def test_database_url_from_the_conventional_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db:5432/preflight")
    monkeypatch.setenv("PREFLIGHT_API_PORT", "9001")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db:5432/preflight"
    assert settings.api_port == 9001


def test_embedded_default_is_sqlite_in_the_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PREFLIGHT_STATE_DIR", "/tmp/pf-state")
    assert Settings().resolved_database_url == "sqlite:////tmp/pf-state/preflight.db"


def test_production_refuses_sqlite_and_placeholder_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLIGHT_ENVIRONMENT", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="production needs DATABASE_URL"):
        Settings()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/preflight")
    monkeypatch.setenv("PREFLIGHT_LLM_BASE_URL", "http://llm:8000/v1")
    monkeypatch.setenv("PREFLIGHT_LLM_API_KEY", "changeme")
    with pytest.raises(ValidationError, match="placeholder") as raised:
        Settings()
    assert "changeme" not in str(raised.value).replace("PREFLIGHT_LLM_API_KEY is a placeholder", "")


def test_bad_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLIGHT_API_PORT", "99999")
    with pytest.raises(ValidationError, match="api_port"):
        Settings()


def test_worker_metrics_ports_past_the_last_port_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLIGHT_WORKERS", "4")
    monkeypatch.setenv("PREFLIGHT_WORKER_METRICS_PORT", "65534")
    with pytest.raises(ValidationError, match=r"no port for worker 4 \(65537 > 65535\)"):
        Settings()
    monkeypatch.setenv("PREFLIGHT_WORKER_METRICS_PORT", "0")  # no /metrics: nothing to check
    assert Settings().worker_metrics_port == 0
