"""How well the assistant itself does, from the sessions' recorded events (so a restart of any
process loses nothing): how often a recommendation is accepted, how often people edit the
generated specification (how good the defaults are), how long a reply takes, how long from
the first message to a deployment that works, and how many deploys succeed."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from kb.db import session_scope
from kb.sessions import SessionAuditEvent

FAILED = "deploy_failed"
STAGE_AFTER = {
    "created": "collect",
    "reply": "collect",  # a reply that asks; one with options is followed by `recommended`
    "recommended": "explore",
    "rejected": "explore",
    "approval_expired": "explore",
    FAILED: "explore",
    "selected": "finalize",
    "approved": "deploy",
    "deployed": "validate",
    "validated": "observe",
    "rolled_back": "rolled_back",
    "cancelled": "cancelled",
    "closed": "closed",
    "monitor_stopped": "closed",
    "rollback_failed": "closed",
}
"""The stage (workflows.payloads.Stage) a session is in after each event that moves it."""
COUNTED = ("message", "edited", *STAGE_AFTER)
USE_CASE = re.compile(r"^use case ([a-z0-9_]+):")
"""How a `recommended` event names the use case (events before 2026-12-07 do not: `unknown`)."""
TARGETS = {
    "time_to_deploy_s": 600.0,  # under 10 minutes from the first message
    "reply_latency_s": 2.0,  # a reply within 2 s
    "deploy_success_rate": 0.95,  # over 95 % of deploys succeed
}
"""The design's targets for the assistant."""


class Spread(BaseModel):
    count: int
    p50: float | None
    p90: float | None
    values: list[float] = Field(default=[], exclude=True)
    """Every observation (seconds), for the histograms; not part of the answer."""


class UseCaseCounts(BaseModel):
    """Sessions that got options for one use case, and what became of them."""

    recommended: int = 0
    accepted: int = 0
    spec_edited: int = 0
    deploys_succeeded: int = 0
    deploys_failed: int = 0


class Insights(BaseModel):
    sessions: int
    recommended: int
    """Sessions that got options."""
    accepted: int
    """Of those, sessions that selected one."""
    spec_edited: int
    """Of those, sessions whose person edited the generated specification."""
    deploys_succeeded: int
    deploys_failed: int
    time_to_deploy_s: Spread
    """First message to the first deploy that passed its checks, per session."""
    reply_latency_s: Spread
    """A message to its reply."""
    use_cases: dict[str, UseCaseCounts] = {}
    """The counts above by the use case of each session's latest options."""
    stages: dict[str, int] = {}
    """Sessions in each stage now (by their latest event that moves a session)."""

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.recommended if self.recommended else None

    @property
    def spec_edit_rate(self) -> float | None:
        return self.spec_edited / self.recommended if self.recommended else None

    @property
    def deploy_success_rate(self) -> float | None:
        done = self.deploys_succeeded + self.deploys_failed
        return self.deploys_succeeded / done if done else None


def insights_at(url: str) -> Insights:
    """From the knowledge base at `url`."""
    with session_scope(url) as session:
        return insights(session=session)


def insights(*, session: Session) -> Insights:
    rows = session.exec(
        select(SessionAuditEvent)
        .where(col(SessionAuditEvent.action).in_([*COUNTED, FAILED]))
        .order_by(col(SessionAuditEvent.session_id), col(SessionAuditEvent.seq))
    ).all()
    by_session: dict[str, list[SessionAuditEvent]] = defaultdict(list)
    for row in rows:
        by_session[row.session_id].append(row)
    to_deploy: list[float] = []
    replies: list[float] = []
    use_cases: dict[str, UseCaseCounts] = {}
    stages: dict[str, int] = defaultdict(int)
    for events in by_session.values():
        moved = [STAGE_AFTER[e.action] for e in events if e.action in STAGE_AFTER]
        if moved:
            stages[moved[-1]] += 1
        first = next((e.at for e in events if e.action == "message"), None)
        working = next((e.at for e in events if e.action == "validated"), None)
        if first and working:
            to_deploy.append(_seconds(working, first))
        case = _use_case(events)
        if case is not None:
            counts = use_cases.setdefault(case, UseCaseCounts())
            counts.recommended += 1
            counts.accepted += any(e.action == "selected" for e in events)
            counts.spec_edited += any(e.action == "edited" for e in events)
            counts.deploys_succeeded += sum(e.action == "validated" for e in events)
            counts.deploys_failed += sum(e.action == FAILED for e in events)
        asked: dt.datetime | None = None
        for e in events:
            if e.action == "message":
                asked = e.at
            elif e.action == "reply" and asked is not None:
                replies.append(_seconds(e.at, asked))
                asked = None
    cases = use_cases.values()
    return Insights(
        sessions=sum(any(e.action == "created" for e in events) for events in by_session.values()),
        recommended=sum(c.recommended for c in cases),
        accepted=sum(c.accepted for c in cases),
        spec_edited=sum(c.spec_edited for c in cases),
        deploys_succeeded=sum(c.deploys_succeeded for c in cases),
        deploys_failed=sum(c.deploys_failed for c in cases),
        time_to_deploy_s=_spread(to_deploy),
        reply_latency_s=_spread(replies),
        use_cases=dict(sorted(use_cases.items())),
        stages=dict(sorted(stages.items())),
    )


def _use_case(events: Sequence[SessionAuditEvent]) -> str | None:
    """The use case of the session's latest options; None when it got none."""
    offered = [e for e in events if e.action == "recommended"]
    if not offered:
        return None
    found = USE_CASE.match(offered[-1].detail)
    return found[1] if found else "unknown"


def _seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return max((later - earlier).total_seconds(), 0.0)


def _spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(count=0, p50=None, p90=None)
    p50, p90 = np.percentile(values, [50, 90])
    return Spread(count=len(values), p50=float(p50), p90=float(p90), values=list(values))
