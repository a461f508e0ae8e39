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


def test_prometheus_scrapes_the_api_and_every_worker_with_preflights_rules() -> None:
    document = compose()
    config = yaml.safe_load(document["configs"]["prometheus-config"]["content"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["preflight-api"]["static_configs"][0]["targets"] == ["api:8000"]
    [workers] = jobs["preflight-worker"]["dns_sd_configs"]
    assert workers["names"] == ["worker"]
    assert workers["port"] == Settings.model_fields["worker_metrics_port"].default
    worker = document["services"]["worker"]["environment"]
    assert worker["PREFLIGHT_WORKER_METRICS_HOST"] == "0.0.0.0"  # reachable from prometheus
    [rules] = config["rule_files"]
    volumes = document["services"]["prometheus"]["volumes"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in volumes)
    assert mounts["./monitoring/preflight-rules.yml"] == rules
    assert (REPO_ROOT / "monitoring" / "preflight-rules.yml").exists()
