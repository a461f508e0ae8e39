"""Crash safety on the real Temporal dev server: the worker process is killed while a signal
is on its way and again in the middle of the deploy stage, and the API process is killed
right after accepting an approval; restarted processes finish the session, nothing is
applied twice, and nothing sent meanwhile is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from activities.rehearsal import wait_healthy
from api.keys import add_key
from kb.db import session_scope
from kb.deployments import audit_trail, list_deployments, revisions
from settings import Settings
from tests.conftest import free_port, kb_copy, temporal_dev_server
from tests.workflows.test_workflows import DESCRIBE, explore, state, updated
from workflows.assistant import AssistantWorkflow
from workflows.payloads import Decision, DeployTarget, RollbackRequest, SelectRequest, SessionInput

pytestmark = pytest.mark.integration


class StallingEndpoint:
    """An OpenAI-style completions endpoint whose first request hangs (the worker dies
    while waiting on it); later requests stream a short answer."""

    def __init__(self) -> None:
        self.requests = 0
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                if outer.requests == 1:
                    outer.first_arrived.set()
                    outer.release.wait(60)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for word in ["Once", " upon", " a", " time"]:
                    chunk = {
                        "id": "cmpl-1",
                        "object": "text_completion",
                        "created": 0,
                        "model": "m",
                        "choices": [
                            {"text": word, "index": 0, "finish_reason": None, "logprobs": None}
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def endpoint() -> Iterator[StallingEndpoint]:
    served = StallingEndpoint()
    yield served
    served.close()


def start_worker(address: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PREFLIGHT_TEMPORAL_ADDRESS": address,
        "DATABASE_URL": database_url,
        "PREFLIGHT_WORKER_METRICS_PORT": "0",
    }
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def kill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait()


async def until(handle: WorkflowHandle[Any, Any], stage: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while (await state(handle)).stage != stage:
        assert time.monotonic() < deadline, (await state(handle)).history[-3:]
        await asyncio.sleep(0.2)


def test_killed_workers_lose_nothing_and_apply_nothing_twice(
    seeded_sqlite_url: str, tmp_path: Path, endpoint: StallingEndpoint
) -> None:
    database_url = kb_copy(seeded_sqlite_url, tmp_path)
    settings = Settings(database_url=database_url, state_dir=tmp_path)
    log = tmp_path / "worker.log"
    folder = tmp_path / "gitops"

    async def scenario() -> None:
        async with await temporal_dev_server() as env:
            client: Client = env.client
            address = client.service_client.config.target_host
            worker = start_worker(address, database_url, log)
            try:
                session_id = f"session-{uuid.uuid4().hex[:12]}"
                session = SessionInput(
                    session_id=session_id,
                    owner="alice",
                    target=DeployTarget(kind="gitops", folder=str(folder), endpoint=endpoint.url),
                    heartbeat_timeout=timedelta(seconds=3),
                )
                handle = await client.start_workflow(
                    AssistantWorkflow.run,
                    session,
                    id=session_id,
                    task_queue=settings.temporal_task_queue,
                )
                explored = await explore(handle)
                chosen = explored.recommendations.options[0]  # type: ignore[union-attr]
                await updated(
                    handle,
                    AssistantWorkflow.select,
                    SelectRequest(actor="alice", option_id=chosen.id),
                )

                kill(worker)  # the approval arrives while no worker runs
                await handle.signal(AssistantWorkflow.approve, Decision(approver="bob"))
                worker = start_worker(address, database_url, log)

                # Killed again while the smoke request (after the apply) is in flight.
                assert await asyncio.to_thread(endpoint.first_arrived.wait, 90), log.read_text()
                assert (await state(handle)).stage == "validate"
                kill(worker)
                endpoint.release.set()
                worker = start_worker(address, database_url, log)

                await until(handle, "observe")
                final = await state(handle)
                assert final.deployment and final.deployment.smoke
                assert final.deployment.smoke.tokens == 4
                assert endpoint.requests == 2  # the lost request was retried once
                actions = [h.action for h in final.history]
                assert actions.count("approved") == 1 and actions.count("deployed") == 1

                with session_scope(database_url) as db:
                    made = list_deployments(session=db)
                    # Seen once under the full suite: two deployments. Say which, and what the
                    # workers did, should it happen again.
                    assert len(made) == 1, (
                        [(d.id, d.name, d.namespace, d.target, d.status) for d in made],
                        [(h.at, h.action, h.detail) for h in final.history],
                        log.read_text()[-4000:],
                    )
                    (deployment,) = made
                    assert len(revisions(session=db, deployment_id=deployment.id)) == 1
                    trail = audit_trail(session=db, deployment_id=deployment.id)
                    assert [e.action for e in trail] == ["deploy"]

                await handle.signal(AssistantWorkflow.cancel, RollbackRequest(actor="alice"))
                assert (await handle.result()).stage == "closed"
            finally:
                kill(worker)

    asyncio.run(scenario())


def start_api(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    with log.open("a") as out:
        api = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_healthy(f"http://127.0.0.1:{port}/health", api, log)
    return api


def test_an_api_restart_loses_no_session_and_no_signal(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    database_url = kb_copy(seeded_sqlite_url, tmp_path)
    keys_file = tmp_path / "keys.json"
    alice = {"Authorization": f"Bearer {add_key(keys_file, 'alice', ['requester'])}"}
    bob = {"Authorization": f"Bearer {add_key(keys_file, 'bob', ['approver'])}"}
    log = tmp_path / "processes.log"

    async def scenario() -> None:
        async with await temporal_dev_server() as env:
            address = env.client.service_client.config.target_host
            worker = start_worker(address, database_url, log)
            settings = os.environ | {
                "PREFLIGHT_TEMPORAL_ADDRESS": address,
                "DATABASE_URL": database_url,
                "PREFLIGHT_STATE_DIR": str(tmp_path),
                "PREFLIGHT_API_KEYS_FILE": str(keys_file),
            }
            first_port, second_port = free_port(), free_port()
            api = start_api(first_port, settings, log)
            try:
                url = f"http://127.0.0.1:{first_port}"
                with httpx.Client(base_url=url, timeout=120) as client:
                    session = client.post("/sessions", headers=alice, json={"message": DESCRIBE})
                    state = session.json()
                    path = f"/sessions/{state['session_id']}"
                    while state["questions"]:
                        answer = {"message": "I don't know"}
                        state = client.post(f"{path}/messages", headers=alice, json=answer).json()
                    option = state["recommendations"]["options"][0]["id"]
                    chosen = client.post(
                        f"{path}/select", headers=alice, json={"option_id": option}
                    )
                    assert chosen.status_code == 200, chosen.text
                    approved = client.post(f"{path}/approve", headers=bob, json={"comment": "go"})
                    assert approved.status_code == 202, approved.text
                kill(api)  # right after the approval was accepted

                api = start_api(second_port, settings, log)
                url = f"http://127.0.0.1:{second_port}"
                with httpx.Client(base_url=url, timeout=120) as client:
                    deadline = time.monotonic() + 90
                    while (state := client.get(path, headers=alice).json())["stage"] != "observe":
                        assert time.monotonic() < deadline, state["history"][-3:]
                        await asyncio.sleep(0.3)
                    actions = [h["action"] for h in state["history"]]
                    assert actions.count("approved") == 1 and actions.count("deployed") == 1
                    listed = client.get("/sessions", headers=alice).json()
                    assert state["session_id"] in str(listed)
            finally:
                kill(api)
                kill(worker)

    asyncio.run(scenario())


def test_a_worker_whose_metrics_port_is_taken_says_which_and_what_to_set(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = os.environ | {
            "PREFLIGHT_WORKER_METRICS_PORT": str(port),
            "PREFLIGHT_STATE_DIR": str(tmp_path),
        }
        result = subprocess.run(
            [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in result.stderr
    assert "PREFLIGHT_WORKER_METRICS_PORT" in result.stderr
