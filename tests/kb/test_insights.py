"""The assistant's numbers from recorded session events, on SQLite and PostgreSQL: a session
that deployed after a failed try, one that edited its specification and gave up, one that
never got options."""

from __future__ import annotations

import datetime as dt

import pytest

from kb.db import session_scope
from kb.insights import insights
from kb.sessions import record_session_event

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def record(url: str, session_id: str, *timeline: tuple[float, str], case: str = "chatbot") -> None:
    """A session's events at seconds after T0; its options are for the use case `case`."""
    with session_scope(url) as session:
        for seq, (seconds, action) in enumerate(timeline, 1):
            record_session_event(
                session=session,
                session_id=session_id,
                seq=seq,
                actor="a",
                action=action,
                detail=f"use case {case}: 3 feasible, 3 shown" if action == "recommended" else "",
                at=T0 + dt.timedelta(seconds=seconds),
            )


def test_rates_and_times_come_from_the_events(database_url: str) -> None:
    record(
        database_url,
        "deployed",
        *[(0, "created"), (0, "message"), (1.5, "reply"), (2, "recommended")],
        *[(60, "selected"), (70, "approved"), (80, "deploy_failed"), (90, "recommended")],
        *[(200, "selected"), (210, "approved"), (300, "deployed"), (420, "validated")],
    )
    record(
        database_url,
        "edited",
        *[(0, "created"), (0, "message"), (0.5, "reply"), (1, "recommended"), (9, "edited")],
        case="rag_qa",
    )
    record(database_url, "asking", (0, "created"), (0, "message"), (3.0, "reply"))
    with session_scope(database_url) as session:
        found = insights(session=session)
    assert (found.sessions, found.recommended, found.accepted, found.spec_edited) == (3, 2, 1, 1)
    assert (found.deploys_succeeded, found.deploys_failed) == (1, 1)
    assert found.acceptance_rate == found.spec_edit_rate == found.deploy_success_rate == 0.5
    assert found.time_to_deploy_s.values == [420.0]
    assert sorted(found.reply_latency_s.values) == [0.5, 1.5, 3.0]
    assert found.reply_latency_s.p50 == pytest.approx(1.5)
    chatbot, rag = found.use_cases["chatbot"], found.use_cases["rag_qa"]
    assert (chatbot.recommended, chatbot.accepted, chatbot.deploys_failed) == (1, 1, 1)
    assert (rag.recommended, rag.accepted, rag.spec_edited) == (1, 0, 1)
    assert found.stages == {"collect": 1, "explore": 1, "observe": 1}
