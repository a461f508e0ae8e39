"""The contract: every payload and error type that crosses Temporal, in one place.

A session workflow's inputs, its update and signal payloads and the state its `state` query
returns (the API speaks these types), and what each activity takes and gives back (the
planning activities give back the planning service's answers, `planner.answers`). Only
domain types are imported here, so the API and the workflows read the contract without
loading the Kubernetes, OpenAI or Prometheus clients the activities use.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from planner.answers import Prepared
    from planner.catalog_index import Candidate
    from planner.conversation import Conversation, Question
    from planner.deployment_plan import ServingApi
    from planner.intent import DeploymentIntent, DeploymentSpecification
    from planner.recommendation import Recommendation, Recommendations
    from planner.requirements import TrafficProfile
    from planner.rightsizing import Advice, Deployed
    from planner.specs import EngineSettings
    from planner.whatif import ScenarioRow

# ---- The session workflow ---------------------------------------------------------------

Stage = Literal[
    "collect",
    "recommend",
    "explore",
    "finalize",
    "deploy",
    "validate",
    "observe",
    "rolled_back",
    "cancelled",
    "closed",
]
ENDED: tuple[Stage, ...] = ("rolled_back", "cancelled", "closed")


class ApprovalPolicy(BaseModel):
    require_distinct_approver: bool = True
    """The requester may not approve their own deployment."""
    remind_after: dt.timedelta = dt.timedelta(days=1)
    """Remind the approvers after this long without a decision, and again each time."""
    expire_after: dt.timedelta = dt.timedelta(days=7)
    """Give up waiting: the selection is dropped and the session goes back to explore."""


class MonitorPolicy(BaseModel):
    interval: dt.timedelta = dt.timedelta(minutes=5)
    checks_per_run: int = Field(default=100, ge=1)
    """Continue-as-new after this many checks, so the history stays short."""
    breach_after: int = Field(default=3, ge=1)
    """Consecutive breached checks that make a sustained breach."""


class SessionInput(BaseModel):
    session_id: str
    owner: str
    first_message: str | None = None
    target: DeployTarget
    approval: ApprovalPolicy = ApprovalPolicy()
    monitor: MonitorPolicy = MonitorPolicy()
    namespace: str = "default"
    rehearse: bool = False
    """GitOps without a cluster: rehearse the deployment on this machine (emulator, local
    Prometheus, a little traffic), clearly labelled as a rehearsal."""
    heartbeat_timeout: dt.timedelta = dt.timedelta(seconds=60)
    """How soon a long step (waiting for Ready, the smoke request) whose worker died is
    retried on another worker."""
    continue_after_events: int = Field(default=5_000, ge=100)
    """A session still planning whose history reaches this many events goes on as a new run
    of the same workflow id, carrying its state (`carried`): a long conversation never
    meets Temporal's history limits, and replays stay short."""
    carried: Carried | None = None
    """Set by the run that continued as new: where the session stands."""


class Carried(BaseModel):
    """What a session's next run starts from: its state and the workflow's own counters."""

    state: SessionState
    selection: int
    what_ifs: list[Scenario]
    unrecorded: list[HistoryEntry]
    """History entries not yet in the audit table, written by the next run."""


class ChatRequest(BaseModel):
    actor: str
    message: str = Field(min_length=1, max_length=4000)


class EditRequest(BaseModel):
    actor: str
    changes: dict[str, Any] = Field(min_length=1)
    """Dotted DeploymentIntent fields (`slo.ttft_p90_ms`, `traffic.peak_qps`), or `model`
    and `gpu` to pin one; null clears a field."""


class WhatIfRequest(BaseModel):
    actor: str
    name: str = Field(default="what if", min_length=1, max_length=80)
    changes: dict[str, Any] = Field(min_length=1)


class SelectRequest(BaseModel):
    actor: str
    option_id: str
    name: str | None = None
    """Deployment name (DNS-1123); the model's short name by default."""


class Decision(BaseModel):
    approver: str
    comment: str = ""


class RollbackRequest(BaseModel):
    actor: str
    reason: str = ""


class HistoryEntry(BaseModel):
    at: dt.datetime
    actor: str
    action: str
    detail: str


class Approval(BaseModel):
    status: Literal["pending", "approved", "rejected", "expired"] = "pending"
    requested_by: str
    requested_at: dt.datetime
    approver: str | None = None
    comment: str = ""
    reminders: int = 0


class Step(BaseModel):
    name: str
    status: Literal["ok", "failed", "skipped"]
    detail: str = ""


class DeploymentState(BaseModel):
    status: Literal["deploying", "deployed", "failed", "rolled_back"] = "deploying"
    target: str
    name: str
    namespace: str
    deployment_id: str | None = None
    revision: int | None = None
    steps: list[Step] = []
    compensations: list[Step] = []
    """What was undone after a failure, in the order it ran."""
    smoke: SmokeResult | None = None
    rehearsal: Rehearsal | None = None
    """Set when this deployment runs as a rehearsal: its numbers come from the emulator."""
    error: str | None = None


class SloStatus(BaseModel):
    last: SloReport | None = None
    checks: int = 0
    consecutive_breaches: int = 0
    proposal: str | None = None
    """After a sustained breach: what to change, or to roll back."""


class SessionChange(BaseModel):
    """What an update did: the session's stage after it and the state's fields it changed.
    Only this joins the history (the whole state, with its options and manifests, made four
    updates 585 kB); the state itself is read with the `state` query."""

    stage: Stage
    changed: list[str]


class SessionState(BaseModel):
    session_id: str
    owner: str
    stage: Stage = "collect"
    conversation: Conversation = Conversation()
    reply: str | None = None
    questions: list[Question] = []
    specification: DeploymentSpecification | None = None
    recommendations: Recommendations | None = None
    scenarios: list[ScenarioRow] = []
    selection: Recommendation | None = None
    prepared: Prepared | None = None
    approval: Approval | None = None
    deployment: DeploymentState | None = None
    slo: SloStatus | None = None
    history: list[HistoryEntry] = []


# ---- Session planning activities ---------------------------------------------------------


INVALID = "InvalidInput"
"""`ApplicationError.type` of every refusal the user can fix."""


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID, non_retryable=True)


class ConverseInput(BaseModel):
    conversation: Conversation
    message: str


class EditInput(BaseModel):
    intent: DeploymentIntent
    changes: dict[str, Any]
    wide: bool = False


class Scenario(BaseModel):
    name: str
    changes: dict[str, Any]


class CompareInput(BaseModel):
    intent: DeploymentIntent
    scenarios: list[Scenario]


class PrepareInput(BaseModel):
    recommendation: Recommendation
    specification: DeploymentSpecification
    name: str
    namespace: str
    api: ServingApi | None = None
    """What serves the model: the target cluster's, or None for the `serving_api` setting."""


class SessionEvent(BaseModel):
    session_id: str
    seq: int
    actor: str
    action: str
    detail: str
    at: dt.datetime | None = None
    """When the workflow made the change (events before 2026-12-07: when it was recorded)."""


class SessionEvents(BaseModel):
    """State changes to write to the audit table together, in order."""

    events: list[SessionEvent]


# ---- Deployment activities ---------------------------------------------------------------


class AppliedObject(BaseModel):
    kind: str
    name: str
    namespace: str
    action: Literal["created", "configured", "unchanged"]
    resource_version: str | None
    dry_run: bool


class ReadyResult(BaseModel):
    name: str
    namespace: str
    conditions: list[str]
    url: str | None
    waited_s: float


class GitOpsResult(BaseModel):
    folder: Path
    files: list[str]
    """Every file the kustomization lists, in apply order."""
    changed: list[str]
    """Files written or rewritten (kustomization.yaml included), or removed."""
    commit: str | None = None
    """The new commit's id, when one was asked for and git saw a change."""


class DeployResult(BaseModel):
    target: str
    deployment_id: str | None = None
    """None for a dry run, which records nothing."""
    revision: int | None = None
    new_revision: bool = False
    applied: list[AppliedObject] = []
    files: GitOpsResult | None = None
    ready: ReadyResult | None = None


class RollbackResult(BaseModel):
    deployment_id: str
    action: Literal["rollback", "delete"]
    """Back to the previous revision, or deleted when there was none."""
    restored_revision: int | None
    """The revision running now; None when everything was deleted."""
    detail: str


class DeployTarget(BaseModel):
    kind: Literal["gitops", "cluster"]
    folder: str | None = None
    """GitOps: the folder the manifests are written to."""
    commit: bool = False
    """GitOps: commit the folder with git."""
    context: str | None = None
    """Cluster: the kubeconfig context (None: the current one, or in-cluster)."""
    endpoint: str | None = None
    """Where the smoke request goes when the cluster reports no URL (a GitOps rehearsal, a
    port-forward); None with GitOps means no smoke request."""
    wait_timeout_s: float = 900.0

    @property
    def label(self) -> str:
        return f"gitops:{self.folder}" if self.kind == "gitops" else f"cluster:{self.context}"


class ApplyRequest(BaseModel):
    target: DeployTarget
    manifests: list[dict[str, Any]]
    name: str
    namespace: str
    actor: str
    owner: str
    dry_run: bool


class CapacityRequest(BaseModel):
    target: DeployTarget
    gpu_id: str
    tp: int
    replicas: int
    """Replicas that start now (at least one)."""
    peak_replicas: int


class CapacityCheck(BaseModel):
    checked: bool
    """False when the cluster's nodes could not be read: the scheduler will tell."""
    detail: str


class WaitRequest(BaseModel):
    target: DeployTarget
    deployment_id: str
    name: str
    namespace: str
    actor: str
    kind: Literal["LLMInferenceService", "InferenceService"] = "InferenceService"
    """What serves the model (sessions before LLMInferenceService rendered only the other)."""


class SmokeRequest(BaseModel):
    endpoint: str
    model: str


class SmokeResult(BaseModel):
    endpoint: str
    ttft_ms: float
    tpot_ms: float | None
    """None when the answer was a single token."""
    tokens: int


class UndoRequest(BaseModel):
    deployment_id: str
    actor: str


# ---- Rehearsals --------------------------------------------------------------------------


class RehearsalRequest(BaseModel):
    deployment_id: str
    configuration: Configuration
    served_model_name: str
    traffic: TrafficProfile
    qps: float
    """Requests per second to send: a little of the specification's steady load."""


class Rehearsal(BaseModel):
    endpoint: str
    prometheus_url: str
    folder: str


# ---- SLO checks and the monitor ----------------------------------------------------------


SloCheckStatus = Literal["no_source", "ok", "breach", "error"]


REHEARSAL = "REHEARSAL (emulated server, not a real model)"


class SloCheckRequest(BaseModel):
    deployment_id: str
    targets: dict[str, float]
    """SLO name (`ttft_p90_ms`, `tpot_p90_ms`, `e2e_p95_ms`) to its target."""
    model_name: str | None = None
    """vLLM's served model name, the `model_name` label of its metrics."""
    configuration: Configuration | None = None
    """With it, each measured check is also an outcome: observed against predicted."""
    prometheus_url: str | None = None
    """A Prometheus of this deployment's own (a rehearsal's); else the configured one."""
    rehearsal: bool = False
    """The numbers come from the emulator: said in every report, never an outcome."""


class Configuration(Deployed, Candidate):
    """What was deployed: enough to ask the planner about the load it actually serves, and
    to advise on its size (the specification's lengths stand in for unmeasured ones)."""

    engine: EngineSettings = EngineSettings()
    """The vLLM settings it runs with (payloads recorded before 2026-12-06: the defaults)."""
    prefix_routing: bool = False
    """Whether llm-d routes by prefix (payloads recorded before 2026-12-07: no)."""


class SloReport(BaseModel):
    status: SloCheckStatus
    detail: str
    measurements: dict[str, float] = {}
    breached: list[str] = []
    """Names of the targets the measurements exceed."""
    advice: list[Advice] = []


SLO_REPORT_SIGNAL = "slo_report"


class MonitorInput(BaseModel):
    parent_id: str
    deployment_id: str
    targets: dict[str, float]
    model_name: str | None = None
    """vLLM's served model name: how Prometheus labels the deployment's metrics."""
    configuration: Configuration
    """What was deployed; its replicas at peak are the base of a scale-out proposal."""
    prometheus_url: str | None = None
    """The deployment's own Prometheus (a rehearsal's); None: the configured one."""
    rehearsal: bool = False
    policy: MonitorPolicy
    checks: int = 0
    consecutive_breaches: int = 0
    last_status: str | None = None


class MonitorUpdate(BaseModel):
    report: SloReport
    checks: int
    consecutive_breaches: int
    proposal: str | None = None


# A session's input carries its state (`Carried`), defined after it.
Carried.model_rebuild()
SessionInput.model_rebuild()
