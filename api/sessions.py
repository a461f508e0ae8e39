"""The API's way to the session workflows: a handle, the state query, an update or a
signal, each failure as the HTTP answer it means; and who may read, change or decide a
session. The session routes (`api.session_routes`) speak HTTP around it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from fastapi import HTTPException, status
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.identity import Caller
from settings import Settings
from workflows.assistant import WRONG_STAGE, AssistantWorkflow
from workflows.payloads import (
    ENDED,
    INVALID,
    SessionChange,
    SessionState,
)

TemporalClient = Callable[[], Awaitable[Client]]
R = TypeVar("R")
SESSION_ID = re.compile(r"^session-[0-9a-f]{32}$")
"""Session ids the API makes; anything else (a monitor's id, say) is not a session."""
QUERY_TIMEOUT = timedelta(seconds=15)
"""How long a state query may take: it needs a worker, which answers in milliseconds."""
UPDATE_TIMEOUT_S = 300.0
"""How long a request waits for a chat turn or a re-plan (an LLM call and a catalog search
each have their own, shorter limits)."""
LIST_CONCURRENCY = 8
"""State queries in flight at once while listing sessions."""


def not_found(session_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no session {session_id[:80]!r}")


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


ENDED_MESSAGE = "session has ended"


def unavailable(error: Exception) -> HTTPException:
    # The kind of failure only: Temporal's messages can name internal addresses.
    kind = error.status.name if isinstance(error, RPCError) else type(error).__name__
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the workflow service failed ({kind}); see /health and the worker's log",
    )


def update_refused(error: WorkflowUpdateFailedError) -> HTTPException:
    """The workflow refused a change: bad input is 422, the wrong stage 409."""
    cause = error.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
    if isinstance(cause, ApplicationError) and cause.type == INVALID:
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)
    if isinstance(cause, ApplicationError) and cause.type == WRONG_STAGE:
        return conflict(message)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def may_read(caller: Caller, state: SessionState) -> bool:
    return (
        state.owner == caller.user
        or caller.can("admin")
        or (caller.can("approver") and state.stage == "finalize")
    )


def may_change(caller: Caller, state: SessionState) -> bool:
    return state.owner == caller.user or caller.can("admin")


class SessionWorkflows:
    """The API's way to the session workflows: handles, the state query, updates and signals,
    each failure as the HTTP answer it means, and who may read, change or decide a session.
    One per app (`api.dependencies.Sessions`)."""

    def __init__(self, settings: Settings, temporal: TemporalClient) -> None:
        self.settings = settings
        self._temporal = temporal

    async def client(self) -> Client:
        try:
            return await self._temporal()
        except (RPCError, RuntimeError, OSError) as error:
            raise unavailable(error) from None

    async def handle_of(self, session_id: str) -> WorkflowHandle[AssistantWorkflow, SessionState]:
        if not SESSION_ID.match(session_id):
            raise not_found(session_id)
        return (await self.client()).get_workflow_handle_for(AssistantWorkflow.run, session_id)

    async def query(self, handle: WorkflowHandle[AssistantWorkflow, SessionState]) -> SessionState:
        try:
            return await handle.query(AssistantWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise not_found(handle.id) from None
            raise unavailable(error) from None
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
            raise unavailable(error) from None

    async def readable(self, session_id: str, caller: Caller) -> SessionState:
        state = await self.query(await self.handle_of(session_id))
        if not may_read(caller, state):
            raise not_found(session_id)
        return state

    async def changeable(
        self, session_id: str, caller: Caller
    ) -> tuple[WorkflowHandle[AssistantWorkflow, SessionState], SessionState]:
        """The session if the caller may change it and it has not ended."""
        handle = await self.handle_of(session_id)
        state = await self.query(handle)
        if not may_read(caller, state):
            raise not_found(session_id)
        if not may_change(caller, state):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"only the session's owner or an admin may change session {session_id}",
            )
        if state.stage in ENDED:
            raise conflict(ENDED_MESSAGE)
        return handle, state

    async def update(
        self,
        handle: WorkflowHandle[AssistantWorkflow, SessionState],
        call: Awaitable[SessionChange],
    ) -> SessionState:
        """The session after the update `call` (which answers only with what it changed)."""
        try:
            await asyncio.wait_for(call, UPDATE_TIMEOUT_S)
        except WorkflowUpdateFailedError as error:
            raise update_refused(error) from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise HTTPException(
                status.HTTP_504_GATEWAY_TIMEOUT,
                f"the session did not answer within {UPDATE_TIMEOUT_S:.0f} s; it may still "
                "finish: read it again later",
            ) from None
        except RPCError as error:
            # The session ended between the state query and the update.
            if error.status == RPCStatusCode.NOT_FOUND:
                raise conflict(ENDED_MESSAGE) from None
            raise unavailable(error) from None
        return await self.query(handle)

    async def change(
        self,
        session_id: str,
        caller: Caller,
        update: UpdateMethodMultiParam[[AssistantWorkflow, R], SessionChange],
        request: R,
    ) -> SessionState:
        """The session after the caller's `update` with `request`, if they may change it."""
        handle, _ = await self.changeable(session_id, caller)
        return await self.update(handle, handle.execute_update(update, request))

    async def signal(
        self,
        handle: WorkflowHandle[AssistantWorkflow, SessionState],
        send: Callable[[WorkflowHandle[AssistantWorkflow, SessionState]], Awaitable[None]],
    ) -> None:
        try:
            await send(handle)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise conflict(ENDED_MESSAGE) from None
            raise unavailable(error) from None

    async def state_of(self, temporal_client: Client, session_id: str) -> SessionState | None:
        try:
            handle = temporal_client.get_workflow_handle_for(AssistantWorkflow.run, session_id)
            return await handle.query(AssistantWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None  # listed without a stage rather than failing the whole list

    async def decidable(self, session_id: str, caller: Caller, approving: bool) -> SessionState:
        state = await self.query(await self.handle_of(session_id))
        if state.stage in ENDED:
            raise conflict(ENDED_MESSAGE)
        approval = state.approval
        if state.stage != "finalize" or approval is None or approval.status != "pending":
            raise conflict(f"nothing awaits approval in session {session_id}: stage {state.stage}")
        if (
            approving
            and self.settings.require_distinct_approver
            and caller.user in (approval.requested_by, state.owner)
        ):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{caller.user} requested this deployment; another approver must approve it",
            )
        return state
