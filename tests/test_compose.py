"""docker-compose.yml stays valid and speaks the same settings as the code."""

from __future__ import annotations

from typing import Any

import yaml

from settings import REPO_ROOT, Settings


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return document


def test_stack_has_the_production_services() -> None:
    services = compose()["services"]
    assert {"postgres", "temporal", "worker", "api", "prometheus"} <= set(services)
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"


def test_app_environment_names_real_settings_and_reaches_real_services() -> None:
    services = compose()["services"]
    fields = {name.upper() for name in Settings.model_fields}
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        for variable in env:
            assert variable == "DATABASE_URL" or variable.removeprefix("PREFLIGHT_") in fields, (
                f"{name}: {variable} is not a setting"
            )
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        host, port = env["PREFLIGHT_TEMPORAL_ADDRESS"].split(":")
        assert host in services and f"{port}:{port}" in services[host]["ports"]


def test_no_secret_is_written_into_the_file() -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if ("PASSWORD" in line or "API_KEY" in line) and not line.lstrip().startswith("#"):
            assert "${" in line, f"secret inline: {line.strip()}"
