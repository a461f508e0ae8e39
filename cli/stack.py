"""The embedded stack behind `make run`: Temporal dev server, worker and API, supervised.

Children run in their own process groups so that Ctrl-C reaches only this supervisor, which
then stops them in reverse start order (API, worker, Temporal) and waits for each.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from api.keys import DEV_KEYS_FILE, ensure_dev_keys
from kb.migrate import upgrade
from kb.repository import load
from settings import Settings
from workflows.client import OWNER

BIN_DIR = Path(sys.executable).parent


class StackError(RuntimeError):
    """A component of the stack failed to start or died."""


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{process.args!r} exited with {process.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"nothing listened on {host}:{port} within {timeout_s:.0f} s")


@dataclass
class Stack:
    settings: Settings
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # `make run` rehearses its GitOps deployments unless told otherwise.
        env = (
            {"PREFLIGHT_REHEARSE": "true"}
            | os.environ
            | {
                "PREFLIGHT_TEMPORAL_ADDRESS": self.settings.temporal_address,
                "DATABASE_URL": self.settings.resolved_database_url,
            }
        )
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        self.processes.append((name, process))
        print(f"preflight: started {name} (pid {process.pid})", flush=True)
        return process

    def start(self) -> None:
        settings = self.settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        host, port = settings.temporal_address.rsplit(":", 1)
        temporal = self._start(
            "temporal",
            [
                str(BIN_DIR / "temporal"),
                "server",
                "start-dev",
                "--ip",
                host,
                "--port",
                port,
                "--ui-port",
                str(settings.temporal_ui_port),
                "--db-filename",
                str(settings.state_dir / "temporal.db"),
                "--namespace",
                settings.temporal_namespace,
                # Known before the API's first session starts (the workers register it too,
                # for a server started elsewhere, but a session may come first).
                "--search-attribute",
                f"{OWNER.name}=Keyword",
                "--log-level",
                "warn",
            ],
        )
        wait_for_port(host, int(port), 60, temporal)
        for n in range(1, settings.workers + 1):
            self._start(f"worker-{n}", [sys.executable, "-m", "worker"])
        api = self._start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                settings.api_host,
                "--port",
                str(settings.api_port),
                "--log-level",
                settings.log_level.lower(),
            ],
        )
        wait_for_port(settings.api_host, settings.api_port, 60, api)
        print(
            f"preflight: serving http://{settings.api_host}:{settings.api_port} "
            f"(docs at /docs, Temporal UI at http://{host}:{settings.temporal_ui_port})",
            flush=True,
        )

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self, timeout_s: float = 15) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            print(f"preflight: stopped {name}", flush=True)
        self.processes.clear()


def run(settings: Settings) -> int:
    """Migrate and seed, start everything, and supervise until Ctrl-C or a child dies."""
    upgrade(settings.resolved_database_url)
    report = load(url=settings.resolved_database_url, measured_dir=settings.measured_data_dir)
    print(
        f"preflight: knowledge base ready ({sum(report.inserted.values())} new, "
        f"{sum(report.updated.values())} updated records)",
        flush=True,
    )
    if settings.environment == "development" and settings.auth_mode == "api_key":
        users = ensure_dev_keys(settings.state_dir, settings.resolved_api_keys_file)
        print(
            f"preflight: API keys of {', '.join(users)} in {settings.state_dir / DEV_KEYS_FILE}",
            flush=True,
        )
    stack = Stack(settings)
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start()
        while not stopping:
            exited = stack.first_exited()
            if exited is not None:
                raise StackError(f"{exited[0]} exited unexpectedly with status {exited[1]}")
            time.sleep(0.2)
        return 0
    finally:
        stack.stop()
