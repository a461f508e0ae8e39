"""What an assistant session holds and what it takes: the workflow's inputs, its update and
signal payloads, and the state its `state` query returns. The API speaks these types."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.deploy_steps import DeployTarget, SmokeResult
    from activities.rehearsal import Rehearsal
    from activities.session import Prepared
    from activities.slo import SloReport
    from planner.conversation import Conversation, Question
    from planner.intent import DeploymentSpecification
    from planner.recommend import Recommendation, Recommendations
    from planner.whatif import ScenarioRow

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
