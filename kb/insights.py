"""How well the assistant itself does, from the sessions' recorded events (so a restart of any
process loses nothing): how often a recommendation is accepted, how often people edit the
generated specification (how good the defaults are), how long a reply takes, how long from
the first message to a deployment that works, and how many deploys succeed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from sqlmodel import Session, col, select

from kb.sessions import SessionAuditEvent

COUNTED = ("created", "message", "reply", "recommended", "selected", "edited", "validated")
FAILED = "deploy_failed"
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
    values: list[float] = []
    """Every observation (seconds), for the histograms."""


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


def insights(*, session: Session) -> Insights:
    rows = session.exec(
        select(SessionAuditEvent)
        .where(col(SessionAuditEvent.action).in_([*COUNTED, FAILED]))
        .order_by(col(SessionAuditEvent.session_id), col(SessionAuditEvent.seq))
    ).all()
    by_session: dict[str, list[SessionAuditEvent]] = defaultdict(list)
    for row in rows:
        by_session[row.session_id].append(row)
    seen: dict[str, int] = defaultdict(int)
    to_deploy: list[float] = []
    replies: list[float] = []
    failed = succeeded = 0
    for events in by_session.values():
        for action in {e.action for e in events}:
            seen[action] += 1
        failed += sum(e.action == FAILED for e in events)
        succeeded += sum(e.action == "validated" for e in events)
        first = next((e.at for e in events if e.action == "message"), None)
        working = next((e.at for e in events if e.action == "validated"), None)
        if first and working:
            to_deploy.append(_seconds(working, first))
        asked: dt.datetime | None = None
        for e in events:
            if e.action == "message":
                asked = e.at
            elif e.action == "reply" and asked is not None:
                replies.append(_seconds(e.at, asked))
                asked = None
    return Insights(
        sessions=seen["created"],
        recommended=seen["recommended"],
        accepted=_within(by_session, "selected"),
        spec_edited=_within(by_session, "edited"),
        deploys_succeeded=succeeded,
        deploys_failed=failed,
        time_to_deploy_s=_spread(to_deploy),
        reply_latency_s=_spread(replies),
    )


def _within(by_session: dict[str, list[SessionAuditEvent]], action: str) -> int:
    """Sessions that got options and then did `action`."""
    return sum(
        any(e.action == "recommended" for e in events) and any(e.action == action for e in events)
        for events in by_session.values()
    )


def _seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return max((later - earlier).total_seconds(), 0.0)


def _spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(count=0, p50=None, p90=None)
    p50, p90 = np.percentile(values, [50, 90])
    return Spread(count=len(values), p50=float(p50), p90=float(p90), values=list(values))
