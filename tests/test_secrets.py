"""Secrets, checked: one whole run of `preflight run` with every credential Preflight handles
in play (the users' API keys, the LLM endpoint's key, a Hugging Face token in the
environment, the kubeconfig's bearer token), a demo session that deploys to a cluster, and
requests that fail on purpose; then every place a secret could leak to is searched for each
of them: the manifests rendered and applied, the stack's logs and the demo's output, the
workflow histories, the error responses, and every file the run left in its state folder."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

from kb.catalog import gpu_k8s
from kb.db import session_scope
from tests.cli.test_cli import PREFLIGHT
from tests.cli.test_stack import stack_env, start_stack, wait_healthy
from tests.conftest import free_port
from tests.fake_apiserver import node, running, write_kubeconfig
from tests.llm_server import serving

pytestmark = pytest.mark.integration
DEV_KEYS = "dev_keys.json"
"""Where `make run` keeps its development users' keys in plain text, by design (the demo reads
them): the one file in the state folder allowed to hold them."""


def payload_texts(value: Any) -> Iterator[str]:
    """Every payload of a history as text: histories carry payloads base64-encoded, where a
    plain search would find nothing."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str):
                try:
                    yield base64.b64decode(item, validate=True).decode(errors="replace")
                except (binascii.Error, ValueError):
                    yield item
            else:
                yield from payload_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_texts(item)


async def histories(address: str) -> list[str]:
    client = await Client.connect(address)
    found = []
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = json.loads((await handle.fetch_history()).to_json())
        found.append("\n".join([json.dumps(history), *payload_texts(history)]))
    return found


def test_no_secret_of_a_whole_run_reaches_manifests_logs_histories_or_errors(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    llm_key = f"sk-{secrets.token_hex(16)}"
    hf_token = f"hf_{secrets.token_hex(17)}"
    kube_token = secrets.token_hex(24)
    state = tmp_path / "state"
    log = tmp_path / "stack.log"
    errors: list[str] = []
    with running(kube_token) as apiserver, serving(tmp_path / "llm.log", llm_key) as llm_url:
        apiserver.ready_on_apply = True
        with session_scope(seeded_sqlite_url) as session:  # a node of every GPU, with room
            apiserver.nodes = [
                node(f"node-{i}", k8s.node_labels, 8, k8s.resource_name)
                for i, k8s in enumerate(gpu_k8s(session=session).values())
            ]
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", apiserver.url, kube_token)
        ports = free_port(), free_port(), free_port()
        env = stack_env(state, *ports) | {
            "KUBECONFIG": str(kubeconfig),
            "PREFLIGHT_KUBE_CONTEXT": "fake",
            "PREFLIGHT_DEPLOY_NAMESPACE": "ml",
            "PREFLIGHT_LLM_BASE_URL": llm_url,
            "PREFLIGHT_LLM_API_KEY": llm_key,
            "HF_TOKEN": hf_token,
        }
        stack = start_stack(env, log)
        try:
            wait_healthy(stack, ports[0], log)
            deadline = time.monotonic() + 120
            while log.read_text().count("worker polling task queue") < 2:
                assert stack.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            demo = subprocess.run(
                [PREFLIGHT, "demo"], env=env, capture_output=True, text=True, timeout=600
            )
            assert demo.returncode == 0, demo.stdout + demo.stderr + log.read_text()
            assert "deploy to cluster:fake: deployed" in demo.stdout, demo.stdout

            keys: dict[str, str] = json.loads((state / DEV_KEYS).read_text())
            base = f"http://127.0.0.1:{ports[0]}"
            alice = {"Authorization": f"Bearer {keys['alice']}"}
            [session] = httpx.get(f"{base}/sessions", headers=alice).json()
            session_id = session["session_id"]
            manifests = httpx.get(f"{base}/sessions/{session_id}/manifests", headers=alice)
            assert manifests.status_code == 200, manifests.text
            plan = httpx.get(f"{base}/sessions/{session_id}", headers=alice).json()["prepared"]
            for response in (
                # A secret where a key belongs, in either header.
                httpx.get(f"{base}/sessions", headers={"Authorization": f"Bearer {llm_key}"}),
                httpx.get(f"{base}/sessions", headers={"X-API-Key": hf_token}),
                # A known user's key, one character off.
                httpx.get(f"{base}/sessions", headers={"X-API-Key": keys["bob"][:-1] + "x"}),
                # Secrets in bodies that are refused: not JSON, unknown field, wrong type.
                httpx.post(
                    f"{base}/sessions",
                    headers=alice | {"Content-Type": "application/json"},
                    content=f'{{"message": "{hf_token}',
                ),
                httpx.post(f"{base}/sessions", headers=alice, json={"token": hf_token}),
                httpx.post(
                    f"{base}/sessions/{session_id}/messages",
                    headers=alice,
                    json={"message": {"hf": hf_token, "kube": kube_token}},
                ),
                # A requester where only an admin may act, a secret in the body.
                httpx.post(f"{base}/models", headers=alice, json={"id": kube_token}),
            ):
                assert response.status_code >= 400, response.text
                errors.append(f"{response.status_code} {response.headers} {response.text}")

            # A token pasted where a plan names the Secret that holds it is refused by name.
            pasted = copy.deepcopy(plan["plan"])
            pasted["model"]["hf_token_secret"] = hf_token
            (tmp_path / "plan.json").write_text(json.dumps(pasted))
            refused = subprocess.run(
                [PREFLIGHT, "render", "--plan", str(tmp_path / "plan.json"), "-o", "out"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert refused.returncode != 0 and "hf_token_secret" in refused.stderr
            errors.append(refused.stdout + refused.stderr)

            recorded = asyncio.run(histories(f"127.0.0.1:{ports[1]}"))
            assert any("AssistantWorkflow" in h for h in recorded)
        finally:
            stack.send_signal(signal.SIGINT)
            stack.wait(timeout=60)
        applied = [r.body for r in apiserver.requests if r.method == "PATCH"]
        # Applied with the kubeconfig's token: the server refuses any other.
        assert any(b["kind"] == "LLMInferenceService" for b in applied), applied
    # The LLM was asked with its key: the server refuses any other.
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in (tmp_path / "llm.log").read_text()

    searched = {
        "the manifests rendered": manifests.text + json.dumps(plan),
        "the manifests applied": yaml.safe_dump_all(applied),
        "the stack's log": log.read_text(),
        "the demo's output": demo.stdout + demo.stderr,
        "the error responses": "\n".join(errors),
        "the workflow histories": "\n".join(recorded),
        **{
            f"the state file {path.relative_to(state)}": path.read_bytes().decode(errors="replace")
            for path in state.rglob("*")
            if path.is_file() and path.name != DEV_KEYS
        },
    }
    credentials = {"the LLM key": llm_key, "the HF token": hf_token, "the kube token": kube_token}
    credentials |= {f"{user}'s API key": key for user, key in keys.items()}
    leaks = [
        f"{name} in {place}"
        for name, secret in credentials.items()
        for place, text in searched.items()
        if secret in text
    ]
    assert not leaks, leaks
    # The search reads what it searches: decoded payloads, the databases' plain text.
    name = plan["plan"]["name"]
    for place in (
        "the workflow histories",
        "the state file temporal.db",
        "the state file preflight.db",
    ):
        assert name in searched[place], place
