"""`make run`'s stack: real Temporal dev server, worker and API start, serve, and stop cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_preflight_monitoring import MONITORING, query, value
from tests.cli.test_cli import PREFLIGHT
from tests.conftest import MEASURED_DIR, free_port
from tests.prometheus_server import prometheus, wait_for_scrapes, wait_for_series

pytestmark = pytest.mark.integration


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_env(tmp_path: Path, api_port: int, temporal_port: int, ui_port: int) -> dict[str, str]:
    env = os.environ | {
        "PREFLIGHT_STATE_DIR": str(tmp_path),
        "PREFLIGHT_API_PORT": str(api_port),
        "PREFLIGHT_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "PREFLIGHT_TEMPORAL_UI_PORT": str(ui_port),
        "PREFLIGHT_MEASURED_DATA_DIR": str(MEASURED_DIR),
        "PREFLIGHT_WORKERS": "2",
        "PREFLIGHT_WORKER_METRICS_PORT": str(free_port()),  # and the next, for worker-2
    }
    env.pop("DATABASE_URL", None)
    return env


def start_stack(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        return subprocess.Popen([PREFLIGHT, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


def preflight(
    command: str, env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """`preflight COMMAND` run to its end, its output captured."""
    return subprocess.run(
        [PREFLIGHT, command], env=env, capture_output=True, text=True, timeout=timeout_s
    )


def wait_healthy(stack: subprocess.Popen[bytes], api_port: int, log: Path) -> Any:
    health = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert stack.poll() is None, log.read_text()
        try:
            health = httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=5).json()
            if health["status"] == "ok":
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not healthy in 120 s: {health}\n{log.read_text()}")


def started_pids(log: Path) -> dict[str, int]:
    return {
        name: int(pid)
        for name, pid in re.findall(r"started ([\w-]+) \(pid (\d+)\)", log.read_text())
    }


def the_workers_metrics_follow_the_demo(url: str, scraped: list[str], said: str) -> None:
    """Both workers serve /metrics: their activities (the chat turns, the deploy's steps) and
    the assistant's numbers, the same as the API's; the rules and dashboard read them."""
    workers = scraped[1:]
    turns = 'sum(preflight_worker_activity_seconds_count{activity="converse"})'
    said_turns = said.count("alice answers") + 1  # the description, then each answer
    wait_for_series(url, f"{turns} >= {said_turns}")
    assert value(url, turns) == said_turns
    applied = query(url, "preflight_worker_activity_seconds_count{activity='apply_manifests'}")
    assert [s["metric"]["outcome"] for s in applied] == ["completed"]  # type: ignore[index]
    counted = query(url, "preflight_worker_activity_seconds_count")
    assert {s["metric"]["instance"] for s in counted} <= set(workers)  # type: ignore[index]
    for source in scraped:
        assert value(url, f'preflight_sessions_total{{instance="{source}"}}') == 1
    wait_for_series(url, "activity:preflight_worker_activity_seconds:p90")
    assert value(url, "preflight:worker_activity_failures:ratio") == 0
    assert not query(url, 'ALERTS{alertname="PreflightActivitiesFailing"}')
    dashboard = json.loads((MONITORING / "preflight-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if "worker" in target["expr"]:
                assert query(url, target["expr"]), (panel["title"], target["expr"])


def test_a_killed_run_leaves_nothing_behind_and_the_next_run_starts_cleanly(
    tmp_path: Path,
) -> None:
    ports = free_port(), free_port(), free_port()
    env, log = stack_env(tmp_path, *ports), tmp_path / "stack.log"
    first = start_stack(env, log)
    try:
        wait_healthy(first, ports[0], log)
        pids = started_pids(log)
        first.kill()  # SIGKILL: no chance to stop its children, as when a terminal closes
        first.wait(timeout=10)
        deadline = time.monotonic() + 30
        while [p for p in pids.values() if pid_alive(p)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [name for name, pid in pids.items() if pid_alive(pid)], log.read_text()
        second = start_stack(env, log)
        try:
            assert wait_healthy(second, ports[0], log)["status"] == "ok"
        finally:
            second.send_signal(signal.SIGINT)
            assert second.wait(timeout=60) == 0, log.read_text()
    finally:
        for pid in started_pids(log).values():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_port_in_use_is_named_with_its_holder_and_nothing_starts(tmp_path: Path) -> None:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = stack_env(tmp_path, api_port, temporal_port, ui_port)
    second_metrics = int(env["PREFLIGHT_WORKER_METRICS_PORT"]) + 1
    with socket.socket() as holder, socket.socket() as other:
        holder.bind(("127.0.0.1", api_port))
        holder.listen()
        other.bind(("127.0.0.1", second_metrics))
        other.listen()
        started = time.monotonic()
        result = preflight("run", env, timeout_s=60)
    assert result.returncode == 2
    assert f"port {api_port} (Preflight API) is in use by pid {os.getpid()}" in result.stderr
    assert f"port {second_metrics} (worker-2 metrics) is in use" in result.stderr
    assert f"`kill {os.getpid()}`" in result.stderr
    assert "started" not in result.stdout and not (tmp_path / "preflight.db").exists()
    assert time.monotonic() - started < 30


def test_run_serves_health_docs_the_demo_and_metrics_then_stops_everything_on_ctrl_c(
    tmp_path: Path,
) -> None:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = stack_env(tmp_path, api_port, temporal_port, ui_port)
    first_metrics = int(env["PREFLIGHT_WORKER_METRICS_PORT"])
    scraped = [f"127.0.0.1:{port}" for port in (api_port, first_metrics, first_metrics + 1)]
    log = tmp_path / "stack.log"
    stack = start_stack(env, log)
    try:
        deadline = time.monotonic() + 120
        health = wait_healthy(stack, api_port, log)
        assert health == {
            "status": "ok",
            "database": {"status": "ok", "detail": None},
            "temporal": {"status": "ok", "detail": None},
        }, log.read_text()
        docs = httpx.get(f"http://127.0.0.1:{api_port}/docs", timeout=5)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        openapi = httpx.get(f"http://127.0.0.1:{api_port}/openapi.json", timeout=5).json()
        assert "/health" in openapi["paths"]
        pids = started_pids(log)
        assert set(pids) == {"temporal", "worker-1", "worker-2", "api"}
        assert (tmp_path / "preflight.db").exists()
        # The workers start beside the API: give them the same patience as /health.
        while log.read_text().count("worker polling task queue") < 2:
            assert stack.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)

        # A new user's first minute: `preflight demo` against the running stack, while the
        # operator's Prometheus scrapes the API and both workers with Preflight's own rules.
        rules = [MONITORING / "preflight-rules.yml"]
        with prometheus(scraped, tmp_path / "prometheus", rules) as url:
            wait_for_scrapes(url, "process_start_time_seconds", 2)
            demo = preflight("demo", env, timeout_s=300)
            assert demo.returncode == 0, demo.stdout + demo.stderr + log.read_text()
            for shown in ("alice describes", "feasible configurations", "bob approves"):
                assert shown in demo.stdout, demo.stdout
            assert "observing" in demo.stdout, demo.stdout
            assert (tmp_path / "gitops" / "kustomization.yaml").exists()
            the_workers_metrics_follow_the_demo(url, scraped, demo.stdout)

        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=60) == 0, log.read_text()
    finally:
        if stack.poll() is None:
            stack.kill()
    text = log.read_text()
    order = ("api", "worker-2", "worker-1", "temporal")
    stopped = [text.index(f"stopped {name}") for name in order]
    assert stopped == sorted(stopped), text
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert not port_open(api_port) and not port_open(temporal_port)
