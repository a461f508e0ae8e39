"""The activities the workflows call, by name and payload type, without their code.

Each class here is implemented by its namesake in `activities/` (a subclass: mypy holds the
signatures to these), so the workflows, and the API that starts them, reach an activity
through the contract and never import the clients an implementation uses. The names are the
activity types in every recorded history: renaming one breaks replay.
"""

from __future__ import annotations

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from planner.answers import Evaluation, Prepared, Turn
    from planner.deployment_plan import ServingApi
    from planner.whatif import ScenarioRow
    from workflows.payloads import (
        ApplyRequest,
        CapacityCheck,
        CapacityRequest,
        CompareInput,
        ConverseInput,
        DeployResult,
        DeployTarget,
        EditInput,
        PrepareInput,
        ReadyResult,
        Rehearsal,
        RehearsalRequest,
        RollbackResult,
        SessionEvent,
        SessionEvents,
        SloCheckRequest,
        SloReport,
        SmokeRequest,
        SmokeResult,
        UndoRequest,
        WaitRequest,
    )


class SessionCalls:
    """Planning for a session, and its audit trail."""

    @activity.defn
    def converse(self, request: ConverseInput) -> Turn:
        """One chat turn; options once the essentials are known (or left to defaults)."""
        raise NotImplementedError

    @activity.defn
    def evaluate(self, request: EditInput) -> Evaluation:
        """The intent with `changes` applied (all or nothing), specified and re-planned."""
        raise NotImplementedError

    @activity.defn
    def compare_scenarios(self, request: CompareInput) -> list[ScenarioRow]:
        """The current intent and each what-if scenario side by side, best option each."""
        raise NotImplementedError

    @activity.defn
    def prepare_deployment(self, request: PrepareInput) -> Prepared:
        """The chosen option's plan and manifests, rendered and validated."""
        raise NotImplementedError

    @activity.defn
    def record_event(self, event: SessionEvent) -> bool:
        """Write one state change to the audit table, once however often retried."""
        raise NotImplementedError

    @activity.defn
    def record_events(self, batch: SessionEvents) -> int:
        """Write state changes to the audit table in one transaction, each once however often
        retried; how many were new. A local activity: no round trip to the server."""
        raise NotImplementedError


class DeployCalls:
    """The deploy saga's steps and its compensation."""

    @activity.defn
    def serving_api(self, target: DeployTarget) -> ServingApi:
        """Which of KServe's resources for LLMs the target cluster serves."""
        raise NotImplementedError

    @activity.defn
    def check_target(self, request: ApplyRequest) -> str:
        """Permission to apply every manifest at the target."""
        raise NotImplementedError

    @activity.defn
    def check_capacity(self, request: CapacityRequest) -> CapacityCheck:
        """Free GPUs, on one node per replica, for the replicas that start now."""
        raise NotImplementedError

    @activity.defn
    def apply_manifests(self, request: ApplyRequest) -> DeployResult:
        """Apply (or dry-run) the manifests and record the revision."""
        raise NotImplementedError

    @activity.defn
    def wait_until_ready(self, request: WaitRequest) -> ReadyResult:
        """Until the served model is ready, heartbeating."""
        raise NotImplementedError

    @activity.defn
    def smoke_test(self, request: SmokeRequest) -> SmokeResult:
        """A few tokens from the endpoint."""
        raise NotImplementedError

    @activity.defn
    def roll_back(self, request: UndoRequest) -> RollbackResult:
        """Back to the previous revision, or delete a first deploy."""
        raise NotImplementedError


class RehearsalCalls:
    """An emulated server under the planned load, where no cluster serves the deploy."""

    @activity.defn
    def start_rehearsal(self, request: RehearsalRequest) -> Rehearsal:
        raise NotImplementedError

    @activity.defn
    def stop_rehearsal(self, deployment_id: str) -> str:
        raise NotImplementedError


class SloCalls:
    """The live SLOs of a deployment, from Prometheus."""

    @activity.defn
    def check_slo(self, request: SloCheckRequest) -> SloReport:
        raise NotImplementedError
