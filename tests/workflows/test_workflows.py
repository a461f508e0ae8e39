"""AssistantWorkflow and MonitorWorkflow on Temporal's time-skipping test server: the whole
session, wrong-stage updates, a week-long approval wait, the saga's compensation, and a
sustained SLO breach that ends in a rollback. Activities are the real ones (knowledge base,
planner, GitOps folder, a real llama.cpp endpoint for the smoke test); only the SLO check
is replaced where a breach must be staged, since no metrics source runs here."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from kb.db import session_scope
from kb.sessions import session_events
from settings import Settings
from tests.conftest import kb_copy
from tests.llm_server import llama_server, llama_server_log  # noqa: F401  (fixtures)
from worker import activities, build_worker
from workflows.assistant import AssistantWorkflow
from workflows.payloads import (
    ApprovalPolicy,
    ChatRequest,
    Decision,
    DeployTarget,
    EditRequest,
    MonitorPolicy,
    RollbackRequest,
    SelectRequest,
    SessionChange,
    SessionInput,
    SessionState,
    SloCheckRequest,
    SloReport,
    WhatIfRequest,
)

pytestmark = pytest.mark.integration
T = TypeVar("T")
TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
DESCRIBE = (
    "A customer support chatbot for 1,000 employees, budget $20,000 a month, "
    "answers must start within 1 second."
)


@pytest.fixture
def settings(seeded_sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=kb_copy(seeded_sqlite_url, tmp_path), state_dir=tmp_path)


def run_session(
    settings: Settings,
    scenario: Callable[[WorkflowEnvironment], Awaitable[T]],
    replacements: Sequence[Callable[..., Any]] = (),
) -> T:
    """Run `scenario` against a fresh time-skipping server and an in-process worker whose
    activities are the real ones, except any `replacements` (matched by name)."""
    replaced = {activity_name(r) for r in replacements}
    bound = [a for a in activities(settings) if activity_name(a) not in replaced]

    async def main() -> T:
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        ) as env:
            with ThreadPoolExecutor(max_workers=4) as executor:
                worker = build_worker(env.client, settings, executor, [*bound, *replacements])
                async with worker:
                    return await scenario(env)

    return asyncio.run(main())


def activity_name(function: Callable[..., Any]) -> str:
    name = activity._Definition.must_from_callable(function).name
    assert name is not None  # only dynamic activities lack one
    return name


async def start(
    client: Client, settings: Settings, endpoint: str | None = None, **fields: Any
) -> WorkflowHandle[Any, Any]:
    session_id = f"session-{uuid.uuid4().hex[:12]}"
    folder = str(settings.state_dir / "gitops")
    session = SessionInput(
        session_id=session_id,
        owner="alice",
        target=DeployTarget(kind="gitops", folder=folder, endpoint=endpoint),
        **fields,
    )
    return await client.start_workflow(
        AssistantWorkflow.run, session, id=session_id, task_queue=settings.temporal_task_queue
    )


HISTORIES = Path(__file__).parents[1] / "data" / "histories"


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With PREFLIGHT_RECORD_HISTORIES=1, save the run's history for the replay test: the
    recorded histories are what catch a non-deterministic change to the workflows."""
    if os.environ.get("PREFLIGHT_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())


async def state(handle: WorkflowHandle[Any, Any]) -> SessionState:
    result: SessionState = await handle.query(AssistantWorkflow.state)
    return result


async def updated(handle: WorkflowHandle[Any, Any], update: Any, request: Any) -> SessionState:
    """The session after `update` (which answers with what it changed), as the API reads it."""
    await handle.execute_update(update, request)
    return await state(handle)


async def wait_for(
    handle: WorkflowHandle[Any, Any], done: Callable[[SessionState], bool], timeout_s: float = 60
) -> SessionState:
    for _ in range(int(timeout_s * 10)):
        current = await state(handle)
        if done(current):
            return current
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; stage {current.stage}; history {current.history[-3:]}")


async def explore(handle: WorkflowHandle[Any, Any]) -> SessionState:
    """Describe the use case, then answer every question with "I don't know"."""
    current = await updated(
        handle, AssistantWorkflow.chat, ChatRequest(actor="alice", message=DESCRIBE)
    )
    while current.questions:
        current = await updated(
            handle, AssistantWorkflow.chat, ChatRequest(actor="alice", message="I don't know")
        )
    return current


def test_a_whole_session_from_words_to_rollback(
    settings: Settings,
    llama_server: str,  # noqa: F811
) -> None:
    endpoint = llama_server.removesuffix("/v1")
    folder = settings.state_dir / "gitops"

    async def scenario(env: WorkflowEnvironment) -> None:
        handle = await start(
            env.client, settings, endpoint, first_message="I need an LLM for something"
        )
        first = await wait_for(handle, lambda s: s.reply is not None)
        assert first.stage == "collect" and first.questions  # it asks what it is for
        assert any(q.quick_answers[-1] == "I don't know" for q in first.questions)

        explored = await explore(handle)
        assert explored.stage == "explore"
        assert explored.recommendations and explored.recommendations.options
        options = explored.recommendations.options
        # The transcript: every message, each followed by the reply it got.
        said = [(e.action, e.detail) for e in explored.history if e.action in ("message", "reply")]
        assert [a for a, _ in said] == ["message", "reply"] * (len(said) // 2) and said
        assert said[-1] == ("reply", explored.reply)

        edited = await updated(
            handle,
            AssistantWorkflow.edit_spec,
            EditRequest(actor="alice", changes={"target_ttft_p90_ms": 800}),
        )
        assert edited.specification and edited.specification.slo.ttft_p90_ms == 800
        assert "slo.ttft_p90_ms" not in edited.specification.defaults

        gpu = options[0].option.gpu_id
        other = next(o.option.gpu_id for o in options if o.option.gpu_id != gpu)
        compared = await updated(
            handle,
            AssistantWorkflow.what_if,
            WhatIfRequest(actor="alice", name="pinned", changes={"gpu": other}),
        )
        assert [row.scenario for row in compared.scenarios] == ["current", "pinned"]
        assert compared.scenarios[1].gpus and other in compared.scenarios[1].gpus

        chosen = edited.recommendations.options[0]  # type: ignore[union-attr]
        selected = await updated(
            handle, AssistantWorkflow.select, SelectRequest(actor="alice", option_id=chosen.id)
        )
        assert selected.stage == "finalize" and selected.prepared is not None
        assert "kind: LLMInferenceService" in selected.prepared.yaml
        assert not folder.exists()  # nothing leaves Preflight before approval

        await handle.signal(AssistantWorkflow.approve, Decision(approver="alice"))
        refused = await wait_for(handle, lambda s: s.history[-1].action == "approve_refused")
        assert refused.stage == "finalize"

        await handle.signal(AssistantWorkflow.approve, Decision(approver="bob", comment="ok"))
        observed = await wait_for(handle, lambda s: s.stage == "observe")
        deployment = observed.deployment
        assert deployment is not None and deployment.status == "deployed"
        assert [s.name for s in deployment.steps] == [
            "render",
            "validate",
            "permission check",
            "dry run",
            "apply",
            "wait ready",
            "smoke test",
        ]
        assert deployment.smoke is not None and deployment.smoke.ttft_ms > 0
        assert (folder / "kustomization.yaml").exists()

        # Monitoring runs on durable timers: without a metrics source it measures nothing.
        await env.sleep(timedelta(minutes=6))
        checked = await wait_for(handle, lambda s: s.slo is not None and s.slo.checks >= 1)
        assert checked.slo and checked.slo.last and checked.slo.last.status == "no_source"
        assert checked.slo.last.measurements == {}

        await handle.signal(
            AssistantWorkflow.rollback, RollbackRequest(actor="alice", reason="done testing")
        )
        final: SessionState = await handle.result()
        assert final.stage == "rolled_back"
        assert not (folder / "kustomization.yaml").exists()

        with session_scope(settings.resolved_database_url) as session:
            events = session_events(session=session, session_id=final.session_id)
        actions = [e.action for e in events]
        assert actions[0] == "created"
        for action in ("message", "edited", "what_if", "selected", "approved", "deployed"):
            assert action in actions
        assert actions[-1] == "rolled_back"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        await keep_history(handle, "session_journey")

    run_session(settings, scenario)


def test_an_update_answers_with_what_it_changed_and_the_history_stays_small(
    settings: Settings,
) -> None:
    async def scenario(env: WorkflowEnvironment) -> None:
        handle = await start(env.client, settings)
        change = await handle.execute_update(
            AssistantWorkflow.chat, ChatRequest(actor="alice", message=DESCRIBE)
        )
        assert isinstance(change, SessionChange)
        assert {"conversation", "reply", "specification", "history"} <= set(change.changed)
        while (await state(handle)).questions:
            change = await handle.execute_update(
                AssistantWorkflow.chat, ChatRequest(actor="alice", message="I don't know")
            )
        assert "recommendations" in change.changed and change.stage == "explore"
        current = await state(handle)
        assert current.recommendations and current.recommendations.options
        # The options and the history are in the state the query reads, not in the answers
        # the history keeps (the whole state in each answer: 585 kB for four updates).
        completed = [
            event.workflow_execution_update_completed_event_attributes.outcome.success
            for event in (await handle.fetch_history()).events
            if event.HasField("workflow_execution_update_completed_event_attributes")
        ]
        answers = [payload.data for outcome in completed for payload in outcome.payloads]
        assert answers and max(len(answer) for answer in answers) < 1_000
        assert len(current.model_dump_json()) > 20_000

    run_session(settings, scenario)


def test_a_long_conversation_goes_on_as_a_new_run_and_loses_nothing(settings: Settings) -> None:
    async def scenario(env: WorkflowEnvironment) -> None:
        handle = await start(env.client, settings, continue_after_events=100)
        current = await updated(
            handle, AssistantWorkflow.chat, ChatRequest(actor="alice", message=DESCRIBE)
        )
        while current.questions:
            current = await updated(
                handle, AssistantWorkflow.chat, ChatRequest(actor="alice", message="I don't know")
            )
        first_run = (await handle.describe()).run_id
        edits = 0
        while (await handle.describe()).run_id == first_run:
            edits += 1
            assert edits < 40, "the session never continued as new"
            await handle.execute_update(
                AssistantWorkflow.edit_spec,
                EditRequest(actor="alice", changes={"concurrent_users": 1000 + edits}),
            )
        # The new run answers for the session: the same state, and it goes on planning.
        current = await wait_for(
            handle, lambda s: s.conversation.intent.concurrent_users == 1000 + edits
        )
        assert current.stage == "explore" and current.recommendations
        current = await updated(
            handle,
            AssistantWorkflow.edit_spec,
            EditRequest(actor="alice", changes={"concurrent_users": 5000}),
        )
        assert current.conversation.intent.concurrent_users == 5000
        actions = [entry.action for entry in current.history]
        assert actions[0] == "created" and actions.count("created") == 1
        assert actions.count("edited") == edits + 1
        # Every audit entry written once, in order, across both runs.
        await handle.signal(AssistantWorkflow.cancel, RollbackRequest(actor="alice"))
        final: SessionState = await handle.result()
        with session_scope(settings.resolved_database_url) as session:
            events = session_events(session=session, session_id=final.session_id)
        assert [e.action for e in events] == [entry.action for entry in final.history]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        await keep_history(handle, "session_continued")  # the run that started from `carried`

    run_session(settings, scenario)


def test_an_update_in_the_wrong_stage_is_refused_and_the_session_goes_on(
    settings: Settings,
) -> None:
    async def scenario(env: WorkflowEnvironment) -> None:
        handle = await start(env.client, settings)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await updated(
                handle,
                AssistantWorkflow.select,
                SelectRequest(actor="alice", option_id="x@y:tp1:fp8"),
            )
        assert "cannot select an option in stage collect" in str(refused.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as invalid:
            await updated(
                handle,
                AssistantWorkflow.edit_spec,
                EditRequest(actor="alice", changes={"traffic.peak_qps": -3}),
            )
        assert "peak_qps" in str(invalid.value.cause)
        await handle.signal(AssistantWorkflow.approve, Decision(approver="bob"))
        current = await explore(handle)  # still answers, nothing was lost
        assert current.stage == "explore" and current.approval is None
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await updated(
                handle, AssistantWorkflow.select, SelectRequest(actor="alice", option_id="nope")
            )
        assert "no option 'nope'" in str(unknown.value.cause)
        actions = [h.action for h in (await state(handle)).history]
        assert "approve_ignored" in actions and "edited" not in actions

    run_session(settings, scenario)


def test_the_approval_wait_reminds_daily_and_expires_after_a_week(settings: Settings) -> None:
    async def scenario(env: WorkflowEnvironment) -> None:
        handle = await start(env.client, settings, approval=ApprovalPolicy())
        explored = await explore(handle)
        chosen = explored.recommendations.options[0]  # type: ignore[union-attr]
        await updated(
            handle, AssistantWorkflow.select, SelectRequest(actor="alice", option_id=chosen.id)
        )
        await env.sleep(timedelta(days=3, hours=1))
        waiting = await state(handle)
        assert waiting.stage == "finalize" and waiting.approval
        assert waiting.approval.reminders == 3
        await env.sleep(timedelta(days=5))
        expired = await state(handle)
        assert expired.stage == "explore" and expired.approval
        assert expired.approval.status == "expired" and expired.approval.reminders == 6
        await handle.signal(AssistantWorkflow.cancel, RollbackRequest(actor="alice"))
        final: SessionState = await handle.result()
        assert final.stage == "cancelled"
        assert not (settings.state_dir / "gitops").exists()
        await keep_history(handle, "session_approval_expired")

    run_session(settings, scenario)


@activity.defn(name="check_slo")
def breached_slo(request: SloCheckRequest) -> SloReport:
    """Stands in for Prometheus (issue 7): TTFT p90 at twice its target."""
    ttft = 2 * request.targets["ttft_p90_ms"]
    return SloReport(
        status="breach",
        detail="ttft_p90_ms over target",
        measurements={"ttft_p90_ms": ttft},
        breached=["ttft_p90_ms"],
    )


def test_a_sustained_breach_proposes_a_fix_and_a_rollback_signal_undoes_the_deploy(
    settings: Settings,
) -> None:
    folder = settings.state_dir / "gitops"

    async def scenario(env: WorkflowEnvironment) -> None:
        policy = MonitorPolicy(interval=timedelta(minutes=5), checks_per_run=2, breach_after=3)
        handle = await start(env.client, settings, monitor=policy)
        explored = await explore(handle)
        chosen = explored.recommendations.options[0]  # type: ignore[union-attr]
        await updated(
            handle, AssistantWorkflow.select, SelectRequest(actor="alice", option_id=chosen.id)
        )
        await handle.signal(AssistantWorkflow.approve, Decision(approver="bob"))
        await wait_for(handle, lambda s: s.stage == "observe")
        assert (folder / "kustomization.yaml").exists()
        # Three checks in a row, across a continue-as-new (two checks per run).
        await env.sleep(timedelta(minutes=16))
        breached = await wait_for(handle, lambda s: bool(s.slo and s.slo.proposal))
        assert breached.slo and breached.slo.consecutive_breaches == 3
        assert breached.slo.proposal and "scale out" in breached.slo.proposal
        assert "roll back" in breached.slo.proposal
        await handle.signal(
            AssistantWorkflow.rollback, RollbackRequest(actor="alice", reason="breach")
        )
        final: SessionState = await handle.result()
        assert final.stage == "rolled_back" and final.deployment
        assert final.deployment.status == "rolled_back"
        assert not (folder / "kustomization.yaml").exists()
        await keep_history(handle, "session_breach_rollback")
        monitor = env.client.get_workflow_handle(f"{final.session_id}-monitor")
        await keep_history(monitor, "monitor_breach")

    run_session(settings, scenario, [breached_slo])
