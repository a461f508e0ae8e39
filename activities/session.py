"""Activities of an assistant session: the planning service's use cases, and the audit trail.

Bad input (an unknown field, a model the catalog lacks, an option that cannot run, an empty
knowledge base) is a non-retryable `ApplicationError` whose message says what is wrong;
anything else is transient and retried by the workflow's policy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from temporalio import activity

from deploy.inventory import ClusterReader
from kb.db import session_scope
from kb.repository import NotLoadedError
from kb.sessions import record_session_event
from planner.answers import Evaluation, Prepared, Turn
from planner.service import PlanningError, PlanningService
from planner.whatif import ScenarioRow
from settings import Settings
from workflows.calls import SessionCalls
from workflows.payloads import (
    CompareInput,
    ConverseInput,
    EditInput,
    PrepareInput,
    SessionEvent,
    SessionEvents,
    invalid,
)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """What the user can fix fails the update, never retried."""
    try:
        yield
    except (PlanningError, NotLoadedError) as error:
        raise invalid(str(error)) from None


class SessionActivities(SessionCalls):
    """Planning activities over the catalog at `settings.resolved_database_url`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.planning = PlanningService(settings, ClusterReader(settings))

    def warm(self) -> None:
        """Before the worker's first turn (see `PlanningService.warm`)."""
        with contextlib.suppress(NotLoadedError):
            self.planning.warm()

    @activity.defn
    def converse(self, request: ConverseInput) -> Turn:
        started = time.perf_counter()
        with _refusals():
            turn = self.planning.turn(request.conversation, request.message)
        return turn.model_copy(update={"seconds": time.perf_counter() - started})

    @activity.defn
    def evaluate(self, request: EditInput) -> Evaluation:
        with _refusals():
            return self.planning.replan(request.intent, request.changes, request.wide)

    @activity.defn
    def compare_scenarios(self, request: CompareInput) -> list[ScenarioRow]:
        with _refusals():
            scenarios = [(s.name, s.changes) for s in request.scenarios]
            return self.planning.compare(request.intent, scenarios, baseline="current")

    @activity.defn
    def prepare_deployment(self, request: PrepareInput) -> Prepared:
        with _refusals():
            return self.planning.prepare(
                request.recommendation,
                request.specification,
                request.name,
                request.namespace,
                request.api or self._settings.serving_api,
            )

    @activity.defn
    def record_event(self, event: SessionEvent) -> bool:
        return self.record_events(SessionEvents(events=[event])) == 1

    @activity.defn
    def record_events(self, batch: SessionEvents) -> int:
        with session_scope(self._settings.resolved_database_url) as session:
            return sum(
                record_session_event(
                    session=session,
                    session_id=event.session_id,
                    seq=event.seq,
                    actor=event.actor,
                    action=event.action,
                    detail=event.detail,
                    at=event.at,
                )
                for event in batch.events
            )
