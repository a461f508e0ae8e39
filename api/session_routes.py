"""Assistant sessions over HTTP: start one, chat, edit, compare what-ifs, select, read the
selected manifests against what runs, approve or reject, roll back, cancel.

The API keeps no session state: each session is an `AssistantWorkflow` whose `state` query
is the truth, and Temporal visibility (the `PreflightOwner` search attribute) lists them.
Who may do what:
- the owner (or an admin) reads and changes their session;
- an approver reads sessions that await approval, approves or rejects them, and may roll
  back any deployed session;
- anyone else gets 404, as for an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from api.dependencies import Sessions
from api.errors import MEANINGS, Problem, ReadableValidation
from api.identity import Caller, CurrentCaller, require
from api.keys import USER_NAME
from api.sessions import (
    ENDED_MESSAGE,
    LIST_CONCURRENCY,
    QUERY_TIMEOUT,
    SessionWorkflows,
    conflict,
    may_change,
    not_found,
    unavailable,
)
from deploy.targets import ClusterError, deploy_target, recorded_target
from kb import deployments
from kb.db import session_scope
from manifests.diff import compare
from manifests.render import to_yaml
from planner.deployment_plan import MAX_NAME
from planner.k8s_names import dns1123_label
from planner.whatif import CHANGEABLE
from settings import Settings
from workflows.assistant import AssistantWorkflow
from workflows.client import OWNER
from workflows.payloads import (
    ENDED,
    ApprovalPolicy,
    ChatRequest,
    Decision,
    EditRequest,
    MonitorPolicy,
    RollbackRequest,
    SelectRequest,
    SessionInput,
    SessionState,
    Stage,
    WhatIfRequest,
)

T = TypeVar("T")
"""Gives the app's Temporal client (connecting on first use); raises when unreachable."""

MAX_MESSAGE = 4000
MAX_NOTE = 2000
"""Characters of a comment or reason: a note, not a document."""
Requester = Annotated[Caller, Depends(require("requester"))]
Approver = Annotated[Caller, Depends(require("approver"))]
SessionId = Annotated[str, Path(description="The session's id, as `POST /sessions` gave it.")]

Status = Literal[
    "running", "completed", "failed", "canceled", "terminated", "continued_as_new", "timed_out"
]
STATUSES: dict[WorkflowExecutionStatus, Status] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}


# ---- request and response bodies ----------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSession(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "A support chatbot for 1,000 employees"}]}
    )
    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE)
    """The first message, in plain words; the reply comes back with the session. None
    starts an empty session."""


class Message(_Body):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)


class SpecChanges(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"changes": {"target_ttft_p90_ms": 800}}]}
    )
    changes: dict[str, Any] = Field(
        min_length=1, json_schema_extra={"propertyNames": {"enum": list(CHANGEABLE)}}
    )
    """Dotted intent fields and their new values (`target_ttft_p90_ms`, `traffic.peak_qps`),
    or `model` and `gpu` to pin one; null clears a field."""


class WhatIf(SpecChanges):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "on A100", "changes": {"gpu": "a100"}}]}
    )
    name: str = Field(default="what if", min_length=1, max_length=80)


class Selection(_Body):
    option_id: str = Field(min_length=1, max_length=200)
    """The `id` of one of the session's recommended options."""
    # The pattern stated for clients; checked by `_name`, whose refusal says what is wrong.
    name: str | None = Field(
        default=None,
        max_length=MAX_NAME,
        json_schema_extra={"pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"},
    )
    """Deployment name (DNS-1123 label, starting with a letter); the model's short name by
    default."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None:
            dns1123_label(name, "name", MAX_NAME)
            if not name[0].isalpha():
                raise ValueError(f"name {name!r} must start with a letter")
        return name


class Approval(_Body):
    comment: str = Field(default="", max_length=MAX_NOTE)


class Rejection(_Body):
    reason: str = Field(min_length=1, max_length=MAX_NOTE)
    """Why not: the requester reads it."""


class Reason(_Body):
    reason: str = Field(default="", max_length=MAX_NOTE)


class SessionSummary(BaseModel):
    session_id: str
    owner: str | None
    """Who started it; null for a session started without the owner search attribute."""
    status: Status
    """The workflow's status in Temporal: `running` until the session ends."""
    started_at: dt.datetime
    closed_at: dt.datetime | None
    stage: Stage | None
    """Where the session is; null when the session could not be asked just now."""
    deployment_id: str | None = None
    """The deployment the session made (what its rollback undoes); null before a deploy or
    when the session could not be asked."""


class Manifests(BaseModel):
    yaml: str
    """The selected option's manifests, as an approval would deploy them."""
    running_yaml: str | None
    """The manifests of the revision running now under the same name, namespace and target;
    null when nothing runs there."""
    running_revision: int | None
    diff: str
    """Unified diff from the running YAML to the selected; all additions when nothing runs,
    empty when nothing would change."""
    summary: str
    """Per object (`Kind namespace/name`): `3 objects new`, `1 object changed, 6 unchanged`."""


class Accepted(BaseModel):
    session_id: str
    action: Literal["approve", "reject", "rollback", "cancel"]
    detail: str
    """What happens next. The signal is asynchronous: `GET /sessions/{id}` shows its
    effect."""


# ---- errors -------------------------------------------------------------------------------

RESPONSES = {
    **MEANINGS,
    403: "The caller lacks the role, or may see this session but not change it.",
    409: "The session is not in a stage that allows this, or it has ended.",
    504: "The session did not answer in time; it may still finish the work.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": RESPONSES[code]} for code in codes}


# ---- what runs -----------------------------------------------------------------------------


class Running(NamedTuple):
    revision: int
    manifests: list[dict[str, Any]]


def running_now(settings: Settings, state: SessionState) -> Running | None:
    """What runs now where the session's selection would deploy: the current revision of its
    own deployment once made, else of the one with the same name and namespace at the
    server's target."""
    assert state.prepared is not None
    plan = state.prepared.plan
    with session_scope(settings.resolved_database_url) as session:
        deployment_id = state.deployment.deployment_id if state.deployment else None
        if deployment_id is None:
            found = deployments.find_deployment(
                session=session,
                name=plan.name,
                namespace=plan.namespace,
                target=recorded_target(deploy_target(settings)),
            )
            deployment_id = found.id if found else None
        if deployment_id is None:
            return None
        current = deployments.current_revision(session=session, deployment_id=deployment_id)
        return Running(current.number, current.manifests) if current else None


def manifests_of(settings: Settings, state: SessionState) -> Manifests:
    """The selected manifests against what runs (reads the knowledge base)."""
    assert state.prepared is not None
    running = running_now(settings, state)
    changes = compare(
        running.manifests if running else None,
        state.prepared.manifests,
        f"running (revision {running.revision})" if running else "running (nothing)",
    )
    return Manifests(
        yaml=state.prepared.yaml,
        running_yaml=to_yaml(running.manifests) if running else None,
        running_revision=running.revision if running else None,
        diff=changes.diff,
        summary=changes.summary,
    )


# ---- access -------------------------------------------------------------------------------


def visibility_string(value: str) -> str:
    """`value` as a visibility-query string literal. User names cannot hold quotes or
    backslashes (`USER_NAME`); checked again here because this builds a query."""
    if not USER_NAME.match(value) or '"' in value or "\\" in value:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "user name cannot be searched")
    return f'"{value}"'


router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=ReadableValidation)


# ---- start and read ---------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start an assistant session",
    response_description="The new session, with the reply to the first message if any.",
    responses=problems(401, 403, 422, 503, 504),
)
async def start(
    sessions: Sessions, caller: Requester, request: Annotated[StartSession | None, Body()] = None
) -> SessionState:
    """Start a session owned by the caller. With a `message`, the first chat turn runs
    before the answer, so the reply (questions, or options) is already in it. The
    deploy target comes from the server's settings. Needs the requester role."""
    temporal_client = await sessions.client()
    session_id = f"session-{uuid.uuid4().hex}"
    session = SessionInput(
        session_id=session_id,
        owner=caller.user,
        target=deploy_target(sessions.settings),
        namespace=sessions.settings.deploy_namespace,
        rehearse=sessions.settings.rehearse and deploy_target(sessions.settings).kind == "gitops",
        approval=ApprovalPolicy(
            require_distinct_approver=sessions.settings.require_distinct_approver,
            remind_after=sessions.settings.approval_remind_after,
            expire_after=sessions.settings.approval_expire_after,
        ),
        monitor=MonitorPolicy(
            interval=sessions.settings.monitor_interval,
            breach_after=sessions.settings.monitor_breach_after,
        ),
    )
    owner = TypedSearchAttributes([SearchAttributePair(OWNER, caller.user)])
    queue = sessions.settings.temporal_task_queue
    message = request.message if request else None
    if message is None:
        try:
            handle = await temporal_client.start_workflow(
                AssistantWorkflow.run,
                session,
                id=session_id,
                task_queue=queue,
                search_attributes=owner,
            )
        except RPCError as error:
            raise unavailable(error) from None
        return await sessions.query(handle)
    start = WithStartWorkflowOperation(
        AssistantWorkflow.run,
        session,
        id=session_id,
        task_queue=queue,
        search_attributes=owner,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    # The start and the first turn in one call: the session's first task answers it.
    first_turn = temporal_client.execute_update_with_start_workflow(
        AssistantWorkflow.chat,
        ChatRequest(actor=caller.user, message=message),
        start_workflow_operation=start,
    )
    handle = temporal_client.get_workflow_handle_for(AssistantWorkflow.run, session_id)
    try:
        return await sessions.update(handle, first_turn)
    except HTTPException as refused:
        if refused.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            # A session whose first words were refused is of no use: end it.
            await sessions.signal(
                handle,
                lambda h: h.signal(
                    AssistantWorkflow.cancel,
                    RollbackRequest(actor=caller.user, reason="first message refused"),
                ),
            )
        raise


@router.get(
    "",
    summary="List sessions",
    response_description="Sessions, newest first.",
    responses=problems(401, 422, 503),
)
async def list_sessions(
    sessions: Sessions,
    caller: CurrentCaller,
    awaiting_approval: Annotated[
        bool,
        Query(
            description="Only running sessions waiting for an approver; an approver sees "
            "everyone's."
        ),
    ] = False,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=200,
            description="Most sessions returned (the newest; counted before the "
            "awaiting-approval filter).",
        ),
    ] = 50,
) -> list[SessionSummary]:
    """The caller's own sessions (an admin's: everyone's), each with its stage. With
    `awaiting_approval`, the running sessions that wait for a decision, which an approver
    may read and decide."""
    temporal_client = await sessions.client()
    conditions = [
        f'WorkflowType="{AssistantWorkflow.__name__}"',
        'ExecutionStatus != "ContinuedAsNew"',  # one row per session, its latest run
    ]
    everyone = caller.can("admin") or (awaiting_approval and caller.can("approver"))
    if not everyone:
        conditions.append(f"{OWNER.name}={visibility_string(caller.user)}")
    if awaiting_approval:
        conditions.append('ExecutionStatus="Running"')
    try:
        found = [
            execution
            async for execution in temporal_client.list_workflows(
                " AND ".join(conditions), limit=limit, rpc_timeout=QUERY_TIMEOUT
            )
        ]
    except RPCError as error:
        raise unavailable(error) from None
    gate = asyncio.Semaphore(LIST_CONCURRENCY)

    async def ask(session_id: str) -> SessionState | None:
        async with gate:
            return await sessions.state_of(temporal_client, session_id)

    states = await asyncio.gather(*(ask(e.id) for e in found))
    summaries = []
    for execution, state in zip(found, states, strict=True):
        if awaiting_approval and not (
            state
            and state.stage == "finalize"
            and state.approval
            and state.approval.status == "pending"
        ):
            continue
        summaries.append(
            SessionSummary(
                session_id=execution.id,
                owner=execution.typed_search_attributes.get(OWNER),
                status=STATUSES[execution.status or WorkflowExecutionStatus.RUNNING],
                started_at=execution.start_time,
                closed_at=execution.close_time,
                stage=state.stage if state else None,
                deployment_id=state.deployment.deployment_id
                if state and state.deployment
                else None,
            )
        )
    return sorted(summaries, key=lambda s: s.started_at, reverse=True)


@router.get(
    "/{session_id}",
    summary="Read a session",
    response_description="The session's whole state, as the workflow holds it.",
    responses=problems(401, 404, 503),
)
async def read(sessions: Sessions, session_id: SessionId, caller: CurrentCaller) -> SessionState:
    """The conversation, specification, options, what-ifs, selection, approval,
    deployment and SLO status of a session, and its history. The owner and admins
    read any session; approvers read those awaiting approval."""
    return await sessions.readable(session_id, caller)


@router.get(
    "/{session_id}/manifests",
    summary="The selected manifests against what runs",
    response_description="The manifests' YAML, the running revision's, and the diff.",
    responses=problems(401, 404, 409, 503),
)
async def manifests(sessions: Sessions, session_id: SessionId, caller: CurrentCaller) -> Manifests:
    """What approving the session's selection would deploy, next to what runs now under
    the same name and namespace at this server's deploy target: a unified diff and a
    count of objects new, changed, unchanged and removed. Readable by whoever may read
    the session; 409 before an option is selected."""
    state = await sessions.readable(session_id, caller)
    if state.prepared is None:
        raise conflict(
            f"nothing selected in session {session_id}: stage {state.stage}; select an option first"
        )
    try:
        return await run_in_threadpool(manifests_of, sessions.settings, state)
    except ClusterError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot tell what runs: {error}"
        ) from None


# ---- updates: the owner's changes, answered with the new state ---------------------


@router.post(
    "/{session_id}/messages",
    summary="Send a chat message",
    response_description="The session after the turn: the reply, questions or options.",
    responses=problems(401, 403, 404, 409, 422, 503, 504),
)
async def chat(
    sessions: Sessions, session_id: SessionId, body: Message, caller: CurrentCaller
) -> SessionState:
    """One chat turn: the words change the deployment intent; open essentials come
    back as questions, and once none is open the options are recommended. Allowed
    while collecting or exploring."""
    return await sessions.change(
        session_id,
        caller,
        AssistantWorkflow.chat,
        ChatRequest(actor=caller.user, message=body.message),
    )


@router.patch(
    "/{session_id}/spec",
    summary="Edit the specification",
    response_description="The session with the edited specification and new options.",
    responses=problems(401, 403, 404, 409, 422, 503, 504),
)
async def edit_spec(
    sessions: Sessions, session_id: SessionId, body: SpecChanges, caller: CurrentCaller
) -> SessionState:
    """Change fields of the intent (all or nothing) and re-plan at once. An unknown
    field or a bad value is 422 and changes nothing."""
    return await sessions.change(
        session_id,
        caller,
        AssistantWorkflow.edit_spec,
        EditRequest(actor=caller.user, changes=body.changes),
    )


@router.post(
    "/{session_id}/what-if",
    summary="Compare a what-if scenario",
    response_description="The session with its scenarios side by side.",
    responses=problems(401, 403, 404, 409, 422, 503, 504),
)
async def what_if(
    sessions: Sessions, session_id: SessionId, body: WhatIf, caller: CurrentCaller
) -> SessionState:
    """Re-plan the intent with `changes` without adopting them; the session keeps its
    last few scenarios next to the current plan."""
    return await sessions.change(
        session_id,
        caller,
        AssistantWorkflow.what_if,
        WhatIfRequest(actor=caller.user, name=body.name, changes=body.changes),
    )


@router.post(
    "/{session_id}/select",
    summary="Select an option for deployment",
    response_description="The session awaiting approval, with the rendered manifests.",
    responses=problems(401, 403, 404, 409, 422, 503, 504),
)
async def select(
    sessions: Sessions, session_id: SessionId, body: Selection, caller: CurrentCaller
) -> SessionState:
    """Pick one of the recommended options: its deployment plan and manifests are
    rendered and validated, and the session waits for an approver. Nothing is
    deployed yet."""
    return await sessions.change(
        session_id,
        caller,
        AssistantWorkflow.select,
        SelectRequest(actor=caller.user, option_id=body.option_id, name=body.name),
    )


# ---- signals: decisions anyone entitled may send at any time -----------------------


@router.post(
    "/{session_id}/approve",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Approve the selected deployment",
    responses=problems(401, 403, 404, 409, 503),
)
async def approve(
    sessions: Sessions, session_id: SessionId, body: Approval, caller: Approver
) -> Accepted:
    """Approve the session's pending selection: the deploy starts. Needs the approver
    role, and (by policy) someone other than the requester."""
    await sessions.decidable(session_id, caller, approving=True)
    await sessions.signal(
        await sessions.handle_of(session_id),
        lambda h: h.signal(
            AssistantWorkflow.approve, Decision(approver=caller.user, comment=body.comment)
        ),
    )
    return Accepted(
        session_id=session_id, action="approve", detail="approved; the deployment starts"
    )


@router.post(
    "/{session_id}/reject",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Reject the selected deployment",
    responses=problems(401, 403, 404, 409, 422, 503),
)
async def reject(
    sessions: Sessions, session_id: SessionId, body: Rejection, caller: Approver
) -> Accepted:
    """Turn down the pending selection with a reason; the session goes back to
    exploring. Needs the approver role."""
    await sessions.decidable(session_id, caller, approving=False)
    await sessions.signal(
        await sessions.handle_of(session_id),
        lambda h: h.signal(
            AssistantWorkflow.reject, Decision(approver=caller.user, comment=body.reason)
        ),
    )
    return Accepted(
        session_id=session_id, action="reject", detail="rejected; the session goes back"
    )


@router.post(
    "/{session_id}/rollback",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Roll back the session's deployment",
    responses=problems(401, 404, 409, 422, 503),
)
async def rollback(
    sessions: Sessions, session_id: SessionId, caller: CurrentCaller, body: Reason | None = None
) -> Accepted:
    """Undo the deployment (restore the revision before it, or delete what was created)
    and end the session. The owner, an approver or an admin may; only while the
    deployment is being observed."""
    handle = await sessions.handle_of(session_id)
    state = await sessions.query(handle)
    if not (may_change(caller, state) or caller.can("approver")):
        raise not_found(session_id)
    if state.stage in ENDED:
        raise conflict(ENDED_MESSAGE)
    if state.stage != "observe":
        raise conflict(f"nothing deployed to roll back: session is in stage {state.stage}")
    reason = body.reason if body else ""
    await sessions.signal(
        handle,
        lambda h: h.signal(
            AssistantWorkflow.rollback, RollbackRequest(actor=caller.user, reason=reason)
        ),
    )
    return Accepted(
        session_id=session_id, action="rollback", detail="rolling back; the session ends"
    )


async def cancel(
    sessions: SessionWorkflows, session_id: str, caller: Caller, reason: str
) -> Accepted:
    handle, state = await sessions.changeable(session_id, caller)
    await sessions.signal(
        handle,
        lambda h: h.signal(
            AssistantWorkflow.cancel, RollbackRequest(actor=caller.user, reason=reason)
        ),
    )
    after = (
        "monitoring stops; the deployment keeps running"
        if state.stage in ("deploy", "validate", "observe")
        else "nothing was deployed"
    )
    return Accepted(session_id=session_id, action="cancel", detail=f"cancelled; {after}")


cancel_doc = (
    "End the session. Before a deploy nothing is left behind; after one, monitoring "
    "stops and the deployment keeps running (roll it back to remove it). The owner or an "
    "admin may."
)


@router.post(
    "/{session_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a session",
    description=cancel_doc,
    responses=problems(401, 403, 404, 409, 422, 503),
)
async def cancel_route(
    sessions: Sessions, session_id: SessionId, caller: CurrentCaller, body: Reason | None = None
) -> Accepted:
    return await cancel(sessions, session_id, caller, body.reason if body else "")


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a session",
    description=cancel_doc,
    responses=problems(401, 403, 404, 409, 503),
)
async def delete_route(
    sessions: Sessions, session_id: SessionId, caller: CurrentCaller
) -> Accepted:
    return await cancel(sessions, session_id, caller, "")
