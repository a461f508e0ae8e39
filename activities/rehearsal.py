"""A rehearsal of a GitOps deployment on one machine, for when no cluster runs the manifests.

It starts the emulator for the deployed configuration (`preflight emulate`: timed by the
planner, no real model), a local Prometheus scraping it, and the load generator sending a
little traffic shaped like the specification. The monitoring stage then reads real metrics
of an emulated server. Everything about it says REHEARSAL: it is never evidence of how the
real deployment will perform.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from temporalio import activity

from planner.catalog_index import Candidate
from settings import Settings
from workflows.calls import RehearsalCalls
from workflows.payloads import Rehearsal, RehearsalRequest, invalid

PREFLIGHT = str(Path(sys.executable).parent / "preflight")
STARTUP_S = 60.0
SCRAPE_INTERVAL = "1s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {STARTUP_S:.0f} s")
        time.sleep(0.3)


def start_emulator(
    c: Candidate,
    served_model_name: str,
    port: int,
    database_url: str,
    log: Path,
    slowdown: float = 1.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """`preflight emulate` for configuration `c` on `port`, once it answers /health."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *(PREFLIGHT, "emulate", "--model", c.model_id, "--gpu", c.gpu_id),
                *("--tp", str(c.tp), "--precision", c.precision, "--port", str(port)),
                *("--served-model-name", served_model_name, "--slowdown", str(slowdown)),
            ],
            env=os.environ | {"DATABASE_URL": database_url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{endpoint}/health", process, log)
    except RuntimeError:
        process.kill()
        raise
    return process, endpoint


def start_prometheus(
    targets: list[str], folder: Path, rule_files: Sequence[Path] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's `prometheus` scraping `targets` (`host:port`) into `folder`, evaluating
    `rule_files` as often as it scrapes."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise invalid("prometheus is not installed: `make install` installs Debian's package")
    config: dict[str, Any] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{"job_name": "vllm", "static_configs": [{"targets": targets}]}],
        "rule_files": [str(path.absolute()) for path in rule_files],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = free_port(), folder / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/-/ready", process, log)
    return process, url


class RehearsalActivities(RehearsalCalls):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _folder(self, deployment_id: str) -> Path:
        return self._settings.state_dir / "rehearsals" / deployment_id

    @activity.defn
    def start_rehearsal(self, request: RehearsalRequest) -> Rehearsal:
        """Emulator, Prometheus and traffic for the deployment (a retry starts afresh)."""
        folder = self._folder(request.deployment_id)
        self.stop_rehearsal(request.deployment_id)
        folder.mkdir(parents=True, exist_ok=True)
        c = request.configuration
        env = os.environ | {"DATABASE_URL": self._settings.resolved_database_url}
        started: list[int] = []
        try:
            emulator, endpoint = start_emulator(
                Candidate(model_id=c.model_id, gpu_id=c.gpu_id, tp=c.tp, precision=c.precision),
                request.served_model_name,
                free_port(),
                self._settings.resolved_database_url,
                folder / "emulator.log",
            )
            started.append(emulator.pid)
            activity.heartbeat("emulator ready")
            prometheus, prometheus_url = start_prometheus(
                [endpoint.removeprefix("http://")], folder
            )
            started.append(prometheus.pid)
            profile = folder / "traffic.yaml"
            profile.write_text(yaml.safe_dump({"traffic": request.traffic.model_dump()}))
            with (folder / "load.log").open("w") as out:
                load = subprocess.Popen(
                    [
                        *(PREFLIGHT, "load", "--url", f"{endpoint}/v1", "--profile", str(profile)),
                        *("--qps", f"{request.qps:.4g}", "--duration", "24h", "--json"),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(load.pid)
        except RuntimeError as error:
            _stop(started)
            raise invalid(f"the rehearsal could not start: {error}") from None
        finally:
            (folder / "pids.json").write_text(json.dumps(started))
        return Rehearsal(endpoint=endpoint, prometheus_url=prometheus_url, folder=str(folder))

    def stop_all(self) -> None:
        """Stop every rehearsal this machine runs (the worker is going away)."""
        for pids in (self._settings.state_dir / "rehearsals").glob("*/pids.json"):
            self.stop_rehearsal(pids.parent.name)

    @activity.defn
    def stop_rehearsal(self, deployment_id: str) -> str:
        pids_file = self._folder(deployment_id) / "pids.json"
        if not pids_file.exists():
            return "no rehearsal ran"
        stopped = _stop(json.loads(pids_file.read_text()))
        pids_file.unlink()
        return f"rehearsal stopped ({stopped} processes)"


def _stop(pids: list[int]) -> int:
    """Terminate the processes (the load first, the emulator last) and reap our children."""
    stopped = 0
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
            stopped += 1
        except ProcessLookupError:
            continue
    for pid in pids:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break
            except ChildProcessError:  # not ours (an earlier worker's): poll until gone
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return stopped
