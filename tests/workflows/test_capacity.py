"""A session deploying to a cluster checks its free GPUs right before apply: with too few, the
deploy stops at that step saying what is missing, nothing is applied and the session goes
back to explore; once a node has room, the same choice deploys and the step says so. The real
activities on Temporal's time-skipping server; the cluster is the local API endpoint."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.metrics import ACTIVITY_SECONDS
from settings import Settings
from tests.conftest import kb_copy
from tests.fake_apiserver import FakeApiServer, node, pod, running, write_kubeconfig
from tests.workflows.test_workflows import explore, run_session, updated, wait_for
from workflows.assistant import AssistantWorkflow
from workflows.payloads import Decision, DeployTarget, SelectRequest, SessionInput

pytestmark = pytest.mark.integration
TOKEN = f"test-bearer-{secrets.token_hex(12)}"


@pytest.fixture
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    with running(TOKEN) as fake:
        fake.ready_on_apply = True
        monkeypatch.setenv(
            "KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", fake.url, TOKEN))
        )
        yield fake


def real_applies(fake: FakeApiServer) -> list[Any]:
    return [r for r in fake.requests if r.method == "PATCH" and "dryRun" not in r.query]


def test_too_few_free_gpus_stop_the_deploy_before_apply_and_room_lets_it_through(
    apiserver: FakeApiServer, seeded_sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=kb_copy(seeded_sqlite_url, tmp_path), state_dir=tmp_path)

    async def select_and_approve(handle: WorkflowHandle[Any, Any], option_id: str) -> None:
        await updated(
            handle, AssistantWorkflow.select, SelectRequest(actor="alice", option_id=option_id)
        )
        await handle.signal(AssistantWorkflow.approve, Decision(approver="bob"))

    async def scenario(env: WorkflowEnvironment) -> None:
        session_id = f"session-{uuid.uuid4().hex[:12]}"
        handle = await env.client.start_workflow(
            AssistantWorkflow.run,
            SessionInput(
                session_id=session_id,
                owner="alice",
                target=DeployTarget(kind="cluster", context="fake", wait_timeout_s=30),
                namespace="ml",
            ),
            id=session_id,
            task_queue=settings.temporal_task_queue,
        )
        chosen = (await explore(handle)).recommendations.options[0]  # type: ignore[union-attr]
        o = chosen.option
        labels = _labels(settings, o.gpu_id)
        # Each node one GPU short of a replica (a pod holds one), and one cordoned.
        apiserver.nodes = [
            node("gpu-a", labels, o.tp),
            node("gpu-b", labels, o.tp),
            node("gpu-c", labels, 8, unschedulable=True),
        ]
        apiserver.pods = [pod("busy-a", "gpu-a", 1), pod("busy-b", "gpu-b", 1)]
        refused = attempts("check_capacity", "refused")
        await select_and_approve(handle, chosen.id)
        failed = await wait_for(handle, lambda s: s.stage == "explore" and s.deployment is not None)
        deployment = failed.deployment
        assert deployment is not None and deployment.status == "failed"
        steps = [(s.name, s.status) for s in deployment.steps]
        assert steps[-1] == ("capacity check", "failed"), steps
        assert [name for name, _ in steps[:-1]] == [
            "render",
            "validate",
            "permission check",
            "dry run",
        ]
        detail = deployment.steps[-1].detail
        assert f"x {o.gpu_id}, each on one node" in detail and "missing" in detail, detail
        assert deployment.compensations == []  # nothing was applied: nothing to undo
        assert real_applies(apiserver) == []
        # The worker's /metrics counts the refusal (bad input: not retried).
        assert attempts("check_capacity", "refused") == refused + 1

        completed = attempts("check_capacity", "completed")
        apiserver.nodes.append(node("gpu-d", labels, 8 * o.replicas_for_peak))
        await select_and_approve(handle, chosen.id)
        deployed = await wait_for(handle, lambda s: s.stage == "observe")
        assert deployed.deployment is not None
        check = next(s for s in deployed.deployment.steps if s.name == "capacity check")
        assert check.status == "ok" and "room for" in check.detail, check.detail
        assert real_applies(apiserver)
        assert attempts("check_capacity", "completed") == completed + 1

    run_session(settings, scenario)


def attempts(activity: str, outcome: str) -> float:
    """Attempts the worker's `preflight_worker_activity_seconds` histogram counted so far."""
    [family] = ACTIVITY_SECONDS.collect()
    wanted = {"activity": activity, "outcome": outcome}
    counts = [s.value for s in family.samples if s.name.endswith("_count") and s.labels == wanted]
    return counts[0] if counts else 0


def _labels(settings: Settings, gpu_id: str) -> dict[str, str]:
    from kb.catalog import gpu_k8s
    from kb.db import session_scope

    with session_scope(settings.resolved_database_url) as session:
        return gpu_k8s(session=session)[gpu_id].node_labels
