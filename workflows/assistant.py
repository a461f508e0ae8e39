"""AssistantWorkflow: one durable workflow per assistant session.

    collect -> recommend -> explore -> finalize -> deploy -> validate -> observe
                                                    \\-> compensation (rollback)

Chat, spec edits, what-ifs and the selection are updates: validated (a wrong stage is
refused before anything is recorded) and answered with what they changed (the `state`
query reads the state itself: the history keeps the answers). Approval, rejection,
rollback and cancel are signals, so another person can send them at any time; the
approval wait is a durable timer that reminds and expires as the policy says. The deploy
stage is a saga whose compensations run in reverse order on any failure. Observe is a
child MonitorWorkflow. Every state change lands in the history and in the audit table.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.calls import DeployCalls, RehearsalCalls, SessionCalls
    from workflows.deploy_saga import SYSTEM, DeploySaga, reason
    from workflows.monitor import MonitorWorkflow
    from workflows.payloads import (
        ENDED,
        INVALID,
        SLO_REPORT_SIGNAL,
        Approval,
        Carried,
        ChatRequest,
        CompareInput,
        Configuration,
        ConverseInput,
        Decision,
        EditInput,
        EditRequest,
        HistoryEntry,
        MonitorInput,
        MonitorUpdate,
        PrepareInput,
        RollbackRequest,
        Scenario,
        SelectRequest,
        SessionChange,
        SessionEvent,
        SessionEvents,
        SessionInput,
        SessionState,
        SloStatus,
        Stage,
        UndoRequest,
        WhatIfRequest,
    )

T = TypeVar("T")
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[INVALID],
)
MAX_SCENARIOS = 4
WRONG_STAGE = "WrongStage"
"""`ApplicationError.type` of an update refused for the session's stage."""
REPLY_IN_HISTORY = "reply-in-history"
"""Patch id: chat replies are kept in the history (sessions from before replay without)."""
OPTIONS_IN_TURN = "options-in-turn"
"""Patch id: a chat turn's options come with it (sessions from before planned them twice)."""
SERVING_API_LOOKUP = "serving-api-lookup"
"""Patch id: a cluster target is asked which KServe resource serves LLMs before the plan
is rendered (before: always an InferenceService)."""
PLANNING_LOCAL = "planning-local"
"""Patch id: planning runs as local activities (before: activity tasks on the queue)."""
AUDIT_IN_BATCHES = "audit-in-batches"
"""Patch id: audit entries are written together by a local activity (before: one activity
each)."""
CONTINUE_AS_NEW = "continue-as-new"
"""Patch id: a long session goes on as a new run (sessions from before never did)."""
PLANNING: tuple[Stage, ...] = ("collect", "recommend", "explore")
"""The stages a session may continue as new in: no deploy, approval or monitor in flight."""


# Not sandboxed: entering the sandbox on every activation and building one per session
# took a third of a worker's CPU under load. What the sandbox would catch (a clock, a random
# number, I/O in workflow code) the recorded histories catch on replay
# (tests/workflows/test_replay.py), and the workflow modules hold no state of their own.
@workflow.defn(sandboxed=False)
class AssistantWorkflow:
    @workflow.init
    def __init__(self, session: SessionInput) -> None:
        self._input = session
        carried = session.carried
        self._state = (
            carried.state
            if carried
            else SessionState(session_id=session.session_id, owner=session.owner)
        )
        self._lock = asyncio.Lock()
        self._unrecorded: list[HistoryEntry] = list(carried.unrecorded) if carried else []
        self._recorded = len(self._state.history) - len(self._unrecorded)
        """Audit entries written, counting those of the runs before."""
        self._selection = carried.selection if carried else 0
        """Bumped by each selection, so an approval wait notices a newer one."""
        self._decision: tuple[str, Decision] | None = None
        self._rollback: RollbackRequest | None = None
        self._cancel: RollbackRequest | None = None
        self._what_ifs: list[Scenario] = carried.what_ifs if carried else []
        self._continues = False
        """Whether this run may continue as new (sessions started before could not)."""

    # ---- the lifecycle -------------------------------------------------------------------

    @workflow.run
    async def run(self, session: SessionInput) -> SessionState:
        self._continues = workflow.patched(CONTINUE_AS_NEW)
        recorder = asyncio.create_task(self._record_history())
        if session.carried is None:
            self._log(session.owner, "created", f"session {session.session_id} started")
        if session.first_message:
            async with self._lock:
                try:
                    await self._converse(
                        ChatRequest(actor=session.owner, message=session.first_message)
                    )
                except ApplicationError as error:
                    self._log(SYSTEM, "chat_failed", error.message)
        while self._state.stage not in ENDED:
            await workflow.wait_condition(
                lambda: (
                    self._state.stage == "finalize"
                    or self._cancel is not None
                    or self._history_full()
                )
            )
            if self._cancel is not None:
                self._end("cancelled", self._cancel, "session cancelled")
                break
            if self._history_full():
                # Between updates; audit entries not yet written go along (their writes are
                # idempotent, so one in flight now is written once).
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._history_full():
                    carried = Carried(
                        state=self._state,
                        selection=self._selection,
                        what_ifs=self._what_ifs,
                        unrecorded=self._unrecorded,
                    )
                    workflow.continue_as_new(
                        session.model_copy(update={"first_message": None, "carried": carried})
                    )
                continue
            approved = await self._await_approval()
            if approved is None:
                continue
            if await self._deploy(approved):
                await self._observe()
        await workflow.wait_condition(
            lambda: not self._unrecorded and workflow.all_handlers_finished()
        )
        recorder.cancel()
        return self._state

    async def _await_approval(self) -> Decision | None:
        """Wait for a decision, reminding and expiring as the policy says."""
        policy, approval = self._input.approval, self._state.approval
        assert approval is not None
        selection = self._selection
        deadline = workflow.now() + policy.expire_after
        while True:
            left = deadline - workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._decision is not None
                        or self._cancel is not None
                        or self._selection != selection
                    ),
                    timeout=min(policy.remind_after, left),
                )
            except TimeoutError:
                if workflow.now() >= deadline:
                    approval.status = "expired"
                    self._state.stage = "explore"
                    self._log(
                        SYSTEM, "approval_expired", f"no decision within {policy.expire_after}"
                    )
                    return None
                approval.reminders += 1
                self._log(
                    SYSTEM,
                    "approval_reminder",
                    f"still waiting for an approver since {approval.requested_at.isoformat()}",
                )
                continue
            if self._cancel is not None:
                return None
            if self._selection != selection:  # a newer selection restarts the wait
                return None
            assert self._decision is not None
            verdict, decision = self._decision
            self._decision = None
            approval.status = "approved" if verdict == "approve" else "rejected"
            approval.approver, approval.comment = decision.approver, decision.comment
            self._log(decision.approver, approval.status, decision.comment)
            if verdict != "approve":
                self._state.stage = "explore"
                return None
            self._state.stage = "deploy"
            return decision

    async def _deploy(self, approved: Decision) -> bool:
        saga = DeploySaga(
            state=self._state,
            target=self._input.target,
            rehearse=self._input.rehearse,
            activity=self._activity,
            log=self._log,
            undo=self._undo,
            stop_rehearsal=self._stop_rehearsal,
            configuration=self._configuration,
        )
        return await saga.run(approved)

    async def _observe(self) -> None:
        deployment, selection = self._state.deployment, self._state.selection
        assert deployment is not None and deployment.deployment_id and selection is not None
        spec = self._state.specification
        assert spec is not None
        self._state.stage, self._state.slo = "observe", SloStatus()
        targets = {
            name: value
            for name, value in (
                ("ttft_p90_ms", spec.slo.ttft_p90_ms),
                ("tpot_p90_ms", spec.slo.tpot_p90_ms),
                ("e2e_p95_ms", spec.slo.e2e_p95_ms),
            )
            if value
        }
        monitor = await workflow.start_child_workflow(
            MonitorWorkflow.run,
            MonitorInput(
                parent_id=workflow.info().workflow_id,
                deployment_id=deployment.deployment_id,
                targets=targets,
                model_name=self._state.prepared.plan.model.served_model_name
                if self._state.prepared
                else None,
                configuration=self._configuration(),
                prometheus_url=deployment.rehearsal.prometheus_url
                if deployment.rehearsal
                else None,
                rehearsal=deployment.rehearsal is not None,
                policy=self._input.monitor,
            ),
            id=f"{self._state.session_id}-monitor",
        )
        await workflow.wait_condition(
            lambda: self._rollback is not None or self._cancel is not None or monitor.done()
        )
        monitor.cancel()
        if self._rollback is None and self._cancel is None:
            self._state.stage = "closed"
            self._log(SYSTEM, "monitor_stopped", "monitoring ended unexpectedly; see its workflow")
            return
        if self._rollback is not None:
            request = self._rollback
            try:
                if deployment.rehearsal:
                    await self._stop_rehearsal()
                undone = await self._undo(deployment.deployment_id, request.actor)
            except ActivityError as error:
                deployment.error = f"rollback failed: {reason(error)[0]}"
                self._log(request.actor, "rollback_failed", deployment.error)
                self._state.stage = "closed"
                return
            deployment.status = "rolled_back"
            self._end("rolled_back", request, undone)
        else:
            assert self._cancel is not None
            self._end("closed", self._cancel, "observation stopped; the deployment keeps running")

    # ---- updates -------------------------------------------------------------------------

    @workflow.update
    async def chat(self, request: ChatRequest) -> SessionChange:
        async with self._lock, self._changes() as change:
            await self._converse(request)
        return change

    @chat.validator
    def _validate_chat(self, request: ChatRequest) -> None:
        self._require(("collect", "explore"), "chat")

    @workflow.update
    async def edit_spec(self, request: EditRequest) -> SessionChange:
        async with self._lock, self._changes() as change:
            evaluation = await self._planning(
                SessionCalls.evaluate,
                EditInput(
                    intent=self._state.conversation.intent,
                    changes=request.changes,
                    wide=bool(self._state.conversation.unknown),
                ),
            )
            self._state.conversation = self._state.conversation.model_copy(
                update={"intent": evaluation.intent}
            )
            self._state.specification = evaluation.specification
            self._state.recommendations = evaluation.recommendations
            self._state.questions, self._state.scenarios, self._what_ifs = [], [], []
            self._state.stage = "explore"
            self._log(request.actor, "edited", _changes(request.changes))
        return change

    @edit_spec.validator
    def _validate_edit(self, request: EditRequest) -> None:
        self._require(("collect", "explore"), "edit the specification")

    @workflow.update
    async def what_if(self, request: WhatIfRequest) -> SessionChange:
        async with self._lock, self._changes() as change:
            scenarios = [*self._what_ifs, Scenario(name=request.name, changes=request.changes)]
            scenarios = scenarios[-MAX_SCENARIOS:]
            self._state.scenarios = await self._planning(
                SessionCalls.compare_scenarios,
                CompareInput(intent=self._state.conversation.intent, scenarios=scenarios),
            )
            self._what_ifs = scenarios
            self._log(request.actor, "what_if", f"{request.name}: {_changes(request.changes)}")
        return change

    @what_if.validator
    def _validate_what_if(self, request: WhatIfRequest) -> None:
        self._require(("explore", "finalize"), "explore a what-if")

    @workflow.update
    async def select(self, request: SelectRequest) -> SessionChange:
        async with self._lock, self._changes() as change:
            if self._state.stage == "finalize":  # a new choice withdraws the pending one
                self._state.stage, self._state.approval = "explore", None
                self._selection += 1
            chosen = self._option(request.option_id)
            spec = self._state.specification
            assert chosen is not None and spec is not None
            name = request.name or _default_name(chosen.option.model_id)
            api = None
            if self._input.target.kind == "cluster" and workflow.patched(SERVING_API_LOOKUP):
                # What the person approves is what the cluster can serve.
                api = await self._planning(DeployCalls.serving_api, self._input.target)
            prepared = await self._planning(
                SessionCalls.prepare_deployment,
                PrepareInput(
                    recommendation=chosen,
                    specification=spec,
                    name=name,
                    namespace=self._input.namespace,
                    api=api,
                ),
            )
            self._state.selection, self._state.prepared = chosen, prepared
            self._state.approval = Approval(requested_by=request.actor, requested_at=workflow.now())
            self._state.stage = "finalize"
            self._selection += 1
            self._decision = None
            self._log(
                request.actor, "selected", f"{chosen.id} as {prepared.plan.name}; awaiting approval"
            )
        return change

    @select.validator
    def _validate_select(self, request: SelectRequest) -> None:
        self._require(("explore", "finalize"), "select an option")
        if self._option(request.option_id) is None:
            known = (
                [r.id for r in self._state.recommendations.options]
                if self._state.recommendations
                else []
            )
            raise ApplicationError(
                f"no option {request.option_id!r}; options: {', '.join(known) or 'none'}",
                type=INVALID,
            )

    # ---- signals and the query -----------------------------------------------------------

    @workflow.signal
    def approve(self, decision: Decision) -> None:
        self._decide("approve", decision)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self._decide("reject", decision)

    @workflow.signal
    def rollback(self, request: RollbackRequest) -> None:
        if self._state.stage != "observe":
            self._log(
                request.actor,
                "rollback_ignored",
                f"nothing deployed to roll back in stage {self._state.stage}",
            )
            return
        self._rollback = request
        self._log(request.actor, "rollback_requested", request.reason)

    @workflow.signal
    def cancel(self, request: RollbackRequest) -> None:
        if self._state.stage in ENDED:
            return
        self._cancel = request

    @workflow.signal(name=SLO_REPORT_SIGNAL)
    def slo_report(self, update: MonitorUpdate) -> None:
        slo = self._state.slo or SloStatus()
        self._state.slo = slo.model_copy(
            update={
                "last": update.report,
                "checks": update.checks,
                "consecutive_breaches": update.consecutive_breaches,
                "proposal": update.proposal or slo.proposal,
            }
        )
        self._log(SYSTEM, f"slo_{update.report.status}", update.proposal or update.report.detail)

    @workflow.query
    def state(self) -> SessionState:
        return self._state

    # ---- helpers -------------------------------------------------------------------------

    def _decide(self, verdict: str, decision: Decision) -> None:
        approval = self._state.approval
        if self._state.stage != "finalize" or approval is None or approval.status != "pending":
            self._log(
                decision.approver,
                f"{verdict}_ignored",
                f"nothing awaits approval in stage {self._state.stage}",
            )
            return
        if (
            verdict == "approve"
            and self._input.approval.require_distinct_approver
            and decision.approver in (approval.requested_by, self._state.owner)
        ):
            self._log(
                decision.approver,
                "approve_refused",
                "the requester may not approve their own deployment",
            )
            return
        self._decision = (verdict, decision)

    async def _converse(self, request: ChatRequest) -> None:
        turn = await self._planning(
            SessionCalls.converse,
            ConverseInput(conversation=self._state.conversation, message=request.message),
        )
        state = self._state
        state.conversation, state.reply = turn.conversation, turn.reply.text
        state.questions, state.specification = turn.reply.questions, turn.reply.specification
        self._log(request.actor, "message", request.message)
        # The reply joins the history so a transcript can be shown; sessions that began
        # before replies were kept replay without it.
        if workflow.patched(REPLY_IN_HISTORY):
            # Workflow time stands still while a local activity runs: the reply was ready
            # when the turn's own clock says.
            self._log(SYSTEM, "reply", turn.reply.text, after_s=turn.seconds)
        if turn.reply.questions:
            state.stage, state.recommendations = "collect", None
            return
        state.stage = "recommend"
        recommendations = turn.recommendations
        # The turn's own options: sessions from before it carried them planned them again.
        if not workflow.patched(OPTIONS_IN_TURN) or recommendations is None:
            recommendations = (
                await self._planning(
                    SessionCalls.evaluate,
                    EditInput(intent=turn.conversation.intent, changes={}, wide=turn.reply.wide),
                )
            ).recommendations
        state.recommendations, state.scenarios, self._what_ifs = recommendations, [], []
        state.stage = "explore"
        self._log(
            SYSTEM,
            "recommended",
            # The use case leads, in the form the assistant's metrics read (kb/insights.py).
            f"use case {recommendations.specification.use_case}: "
            f"{recommendations.feasible} feasible, {len(recommendations.options)} shown",
        )

    async def _planning(self, activity: Callable[[Any, Any], T], argument: Any) -> T:
        """A planning activity for an update: a refusal fails the update, not the session.
        Local (sessions from before: a task on the queue): planning takes a fraction of a
        second, and the update waits for it anyway, so the round trips to the server for an
        activity task are all cost."""
        try:
            if workflow.patched(PLANNING_LOCAL):
                result: T = await workflow.execute_local_activity_method(
                    activity,
                    argument,
                    start_to_close_timeout=timedelta(seconds=180),
                    retry_policy=RETRY,
                )
                return result
            return await self._activity(activity, argument, 180)
        except ActivityError as error:
            raise ApplicationError(reason(error)[0], type=INVALID, non_retryable=True) from None

    async def _activity(
        self,
        activity: Callable[[Any, Any], T],
        argument: Any,
        timeout_s: float,
        heartbeat: bool = False,
        retry: RetryPolicy = RETRY,
    ) -> T:
        result: T = await workflow.execute_activity_method(
            activity,
            argument,
            start_to_close_timeout=timedelta(seconds=timeout_s),
            heartbeat_timeout=self._input.heartbeat_timeout if heartbeat else None,
            retry_policy=retry,
        )
        return result

    def _configuration(self) -> Configuration:
        """What the selection deploys, as the SLO checks and the rehearsal need it."""
        option, spec = self._state.selection, self._state.specification
        assert option is not None and spec is not None
        o = option.option
        return Configuration(
            model_id=o.model_id,
            gpu_id=o.gpu_id,
            tp=o.tp,
            precision=o.precision,
            replicas=o.replicas_for_peak,
            min_replicas=o.min_replicas,
            max_qps_per_replica=o.max_qps_per_replica,
            usd_per_replica_hour=(
                o.usd_per_hour / o.replicas_for_peak if o.usd_per_hour is not None else None
            ),
            peak_qps=spec.traffic.peak_qps,
            prompt_tokens=spec.traffic.prompt_tokens_mean,
            output_tokens=spec.traffic.output_tokens_mean,
            prompt_tokens_p95=spec.traffic.prompt_tokens_p95,
            output_tokens_p95=spec.traffic.output_tokens_p95,
            engine=spec.engine,
            prefix_routing=spec.prefix_routing,
        )

    async def _undo(self, deployment_id: str, actor: str) -> str:
        request = UndoRequest(deployment_id=deployment_id, actor=actor)
        undone = await self._activity(DeployCalls.roll_back, request, 300)
        return undone.detail

    async def _stop_rehearsal(self) -> str:
        deployment = self._state.deployment
        assert deployment is not None and deployment.deployment_id is not None
        stopped: str = await self._activity(
            RehearsalCalls.stop_rehearsal, deployment.deployment_id, 60
        )
        return stopped

    def _option(self, option_id: str) -> Any:
        found = self._state.recommendations
        return next((r for r in found.options if r.id == option_id), None) if found else None

    def _require(self, stages: tuple[Stage, ...], what: str) -> None:
        if self._state.stage not in stages:
            raise ApplicationError(
                f"cannot {what} in stage {self._state.stage}; allowed in: {', '.join(stages)}",
                type=WRONG_STAGE,
            )

    def _end(self, stage: Stage, request: RollbackRequest, detail: str) -> None:
        self._state.stage = stage
        self._log(
            request.actor, stage, f"{detail}{f' ({request.reason})' if request.reason else ''}"
        )

    @contextlib.asynccontextmanager
    async def _changes(self) -> AsyncIterator[SessionChange]:
        """What an update changes, found by comparing the state before and after it."""
        before = self._state.model_dump(mode="json")
        change = SessionChange(stage=self._state.stage, changed=[])
        yield change
        after = self._state.model_dump(mode="json")
        change.stage = self._state.stage
        change.changed = [name for name, value in after.items() if before.get(name) != value]

    def _log(self, actor: str, action: str, detail: str, after_s: float = 0.0) -> None:
        at = workflow.now() + timedelta(seconds=after_s)
        entry = HistoryEntry(at=at, actor=actor, action=action, detail=detail)
        self._state.history.append(entry)
        self._unrecorded.append(entry)

    def _history_full(self) -> bool:
        """Whether a session still planning should go on as a new run (`continue_after_events`
        or the server's suggestion), which the run loop does between updates."""
        info = workflow.info()
        return (
            self._continues
            and self._state.stage in PLANNING
            and (
                info.get_current_history_length() >= self._input.continue_after_events
                or info.is_continue_as_new_suggested()
            )
        )

    async def _record_history(self) -> None:
        """Write history entries to the audit table in order: all that are waiting at once,
        in one local activity (sessions from before: one activity each)."""
        batched = workflow.patched(AUDIT_IN_BATCHES)
        until_it_lands = RetryPolicy(maximum_interval=timedelta(minutes=1))
        while True:
            await workflow.wait_condition(lambda: bool(self._unrecorded))
            if batched:
                entries = list(self._unrecorded)
                events = [
                    SessionEvent(
                        session_id=self._state.session_id,
                        seq=self._recorded + i,
                        actor=entry.actor,
                        action=entry.action,
                        detail=entry.detail,
                        at=entry.at,
                    )
                    for i, entry in enumerate(entries, 1)
                ]
                await workflow.execute_local_activity_method(
                    SessionCalls.record_events,
                    SessionEvents(events=events),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=until_it_lands,
                )
                self._recorded += len(entries)
                del self._unrecorded[: len(entries)]
                continue
            entry = self._unrecorded[0]
            self._recorded += 1
            recorded = self._recorded
            await self._activity(
                SessionCalls.record_event,
                SessionEvent(
                    session_id=self._state.session_id,
                    seq=recorded,
                    actor=entry.actor,
                    action=entry.action,
                    detail=entry.detail,
                    at=entry.at,
                ),
                30,
                retry=until_it_lands,
            )
            self._unrecorded.pop(0)


def _changes(changes: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in changes.items())


def _default_name(model_id: str) -> str:
    """A DNS-1123 label from the model's short name (`Llama-3.1-8B` -> `llama-3-1-8b`)."""
    return re.sub(r"[^a-z0-9]+", "-", model_id.split("/")[-1].lower()).strip("-")[:40].strip("-")
