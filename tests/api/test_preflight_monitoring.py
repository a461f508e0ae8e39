"""Preflight's own rules and dashboard (monitoring/) against a real Prometheus scraping a real
API's /metrics: the recording rules compute the assistant's numbers from recorded sessions,
a deploy success below target makes its alert pending, and every dashboard query answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from api.app import create_app
from kb.insights import TARGETS
from kb.migrate import upgrade
from settings import Settings
from tests.conftest import free_port
from tests.kb.test_insights import record
from tests.prometheus_server import prometheus, wait_for_series

pytestmark = pytest.mark.integration
MONITORING = Path(__file__).parents[2] / "monitoring"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """A real API on a free port over a knowledge base holding two sessions' events."""
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(url)
    record(
        url,
        "deployed",
        *[(0, "created"), (0, "message"), (1.5, "reply"), (2, "recommended"), (60, "selected")],
        *[(80, "deploy_failed"), (200, "selected"), (420, "validated")],
    )
    record(url, "browsing", (0, "created"), (0, "message"), (0.5, "reply"), (1, "recommended"))
    port = free_port()
    settings = Settings(
        database_url=url, state_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}"
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.1)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def query(url: str, expr: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def value(url: str, expr: str) -> float:
    [sample] = query(url, expr)
    return float(sample["value"][1])  # type: ignore[index]


def test_the_rules_and_the_dashboard_read_the_assistants_numbers(api: str, tmp_path: Path) -> None:
    rules = MONITORING / "preflight-rules.yml"
    with prometheus([api], tmp_path / "prometheus", [rules]) as url:
        wait_for_series(url, "preflight:time_to_deploy_seconds:p90")
        assert value(url, "preflight:acceptance:ratio") == 0.5
        assert value(url, 'use_case:preflight_acceptance:ratio{use_case="chatbot"}') == 0.5
        assert value(url, "preflight:spec_edit:ratio") == 0
        assert value(url, "preflight:deploy_success:ratio") == 0.5
        assert 1 < value(url, "preflight:reply_latency_seconds:p90") <= 2  # a bucket's bounds
        assert 300 < value(url, "preflight:time_to_deploy_seconds:p90") <= 600
        wait_for_series(url, 'ALERTS{alertname="PreflightDeploySuccessBelowTarget"}')
        [alert] = query(url, 'ALERTS{alertname="PreflightDeploySuccessBelowTarget"}')
        assert alert["metric"]["alertstate"] == "pending"  # type: ignore[index]
        assert not query(url, 'ALERTS{alertname="PreflightRepliesSlow"}')
        dashboard = json.loads((MONITORING / "preflight-dashboard.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if "worker" not in target["expr"]:  # workers: tests/cli/test_stack.py
                    assert query(url, target["expr"]), (panel["title"], target["expr"])


def test_the_rules_and_the_dashboard_hold_the_designs_targets() -> None:
    """Each alert on a target and each panel drawing it uses kb.insights.TARGETS: a target
    changed in one place only fails here."""
    rules = yaml.safe_load((MONITORING / "preflight-rules.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    said = {
        "PreflightDeploySuccessBelowTarget": ("<", TARGETS["deploy_success_rate"]),
        "PreflightRepliesSlow": (">", TARGETS["reply_latency_s"]),
        "PreflightSlowToDeploy": (">", TARGETS["time_to_deploy_s"]),
    }
    for alert, (way, target) in said.items():
        _, compared, threshold = alerts[alert].rsplit(" ", 2)
        assert (compared, float(threshold)) == (way, target), alerts[alert]
    dashboard = json.loads((MONITORING / "preflight-dashboard.json").read_text())
    drawn = {
        target["expr"]: [
            s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        ]
        for panel in dashboard["panels"]
        if "thresholds" in panel["fieldConfig"]["defaults"]
        for target in panel["targets"]
    }
    assert drawn == {
        "preflight:reply_latency_seconds:p90": [None, TARGETS["reply_latency_s"]],
        "preflight:time_to_deploy_seconds:p90": [None, TARGETS["time_to_deploy_s"]],
        "preflight:deploy_success:ratio": [None, TARGETS["deploy_success_rate"]],
    }
