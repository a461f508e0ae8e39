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


def test_lists_are_json_names_any_case_and_given_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFLIGHT_TRUSTED_PROXIES", '["10.0.0.0/8", "127.0.0.1"]')
    monkeypatch.setenv("preflight_approved_models", '["Qwen/Qwen3-8B"]')
    monkeypatch.setenv("PREFLIGHT_API_PORT", "9001")
    settings = Settings(api_port=9002)
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert settings.approved_models == ["Qwen/Qwen3-8B"]
    assert settings.api_port == 9002
    # A list that is not JSON is named, and its value (it may be a secret) is not echoed.
    monkeypatch.setenv("PREFLIGHT_TRUSTED_PROXIES", "10.9.8.7, s3cret")
    with pytest.raises(ValidationError, match="trusted_proxies must be a JSON list") as raised:
        Settings()
    assert "s3cret" not in str(raised.value) and "10.9.8.7" not in str(raised.value)
