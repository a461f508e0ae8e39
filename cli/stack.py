"""The embedded stack behind `make run`: Temporal dev server, worker and API, supervised.

Children run in their own process groups so that Ctrl-C reaches only this supervisor, which
then stops them in reverse start order (API, worker, Temporal) and waits for each. Should
the supervisor itself die (SIGKILL, a closed terminal), the kernel sends each child SIGTERM
(Linux's parent-death signal), so no orphan keeps the ports for the next `make run`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from api.keys import DEV_KEYS_FILE, ensure_dev_keys
from kb.migrate import upgrade
from kb.repository import load
from settings import Settings
from workflows.client import OWNER

BIN_DIR = Path(sys.executable).parent


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when its parent dies."""


class StackError(RuntimeError):
    """A component of the stack failed to start or died."""


def _dies_with(parent: int) -> Callable[[], None]:
    """Run in the child between fork and exec: SIGTERM when `parent` dies (exec keeps it)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it

    def arrange() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arrange


def check_ports_free(ports: dict[int, str], host: str = "127.0.0.1") -> None:
    """StackError naming each port already taken, what holds it when this user can tell,
    and how to free it; nothing is started then."""
    taken = []
    for port, role in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                continue
            except OSError:
                pass
        holder = port_holder(port)
        if holder is None:
            taken.append(
                f"port {port} ({role}) is in use by a process this user cannot see; "
                f"`ss -ltnp 'sport = :{port}'` (as root) names it"
            )
        else:
            pid, command = holder
            taken.append(f"port {port} ({role}) is in use by pid {pid} ({command}); `kill {pid}`")
    if taken:
        raise StackError(
            "cannot start: " + "; ".join(taken) + ". A `preflight run` killed before this one "
            "may have left it; or choose other ports (PREFLIGHT_API_PORT, "
            "PREFLIGHT_WORKER_METRICS_PORT, PREFLIGHT_TEMPORAL_ADDRESS, PREFLIGHT_TEMPORAL_UI_PORT)"
        )


def port_holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of the process listening on TCP `port`, from /proc: the
    socket's inode in /proc/net/tcp{,6}, then the process with that inode among its fds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(str(fd.readlink()) in inodes for fd in (proc / "fd").iterdir()):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                return int(proc.name), " ".join(a.decode(errors="replace") for a in argv if a)
        except OSError:  # gone, or another user's
            continue
    return None


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

    def _start(
        self, name: str, argv: list[str], own: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        # `make run` rehearses its GitOps deployments unless told otherwise.
        env = (
            {"PREFLIGHT_REHEARSE": "true"}
            | os.environ
            | {
                "PREFLIGHT_TEMPORAL_ADDRESS": self.settings.temporal_address,
                "DATABASE_URL": self.settings.resolved_database_url,
            }
            | (own or {})
        )
        process = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=_dies_with(os.getpid())
        )
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
        metrics = worker_metrics_ports(settings)
        for n in range(1, settings.workers + 1):
            own = {"PREFLIGHT_WORKER_METRICS_PORT": str(metrics[n - 1]) if metrics else "0"}
            self._start(f"worker-{n}", [sys.executable, "-m", "worker"], own)
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


def worker_metrics_ports(settings: Settings) -> list[int]:
    """One /metrics port per worker, from `worker_metrics_port` on; none when it is 0."""
    first = settings.worker_metrics_port
    return [first + n for n in range(settings.workers)] if first else []


def run(settings: Settings) -> int:
    """Migrate and seed, start everything, and supervise until Ctrl-C or a child dies."""
    check_ports_free(
        {
            int(settings.temporal_address.rsplit(":", 1)[1]): "Temporal",
            settings.temporal_ui_port: "Temporal UI",
            settings.api_port: "Preflight API",
        }
        | {port: f"worker-{n} metrics" for n, port in enumerate(worker_metrics_ports(settings), 1)}
    )
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
