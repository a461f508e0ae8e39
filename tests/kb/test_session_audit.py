"""Records written while Preflight runs, on SQLite and PostgreSQL: the session audit trail
(written by retried activities, so idempotent), deployment owners and SLO checks."""

from __future__ import annotations

import datetime as dt

import pytest

from kb import deployments
from kb.db import session_scope
from kb.sessions import record_session_event, session_events
from kb.slo_checks import SloCheckError, record_slo_check, slo_checks


def _record(url: str, session_id: str, seq: int, action: str, actor: str = "alice") -> bool:
    with session_scope(url) as session:
        return record_session_event(
            session=session,
            session_id=session_id,
            seq=seq,
            actor=actor,
            action=action,
            detail=f"{action} detail",
        )


def test_a_retried_event_is_written_once(database_url: str) -> None:
    assert _record(database_url, "s1", 0, "started") is True
    # The retry of the same change (same seq) in a new transaction, as an activity retry does.
    assert _record(database_url, "s1", 0, "started", actor="someone else") is False
    with session_scope(database_url) as session:
        events = session_events(session=session, session_id="s1")
    assert [(e.seq, e.action, e.actor) for e in events] == [(0, "started", "alice")]


def test_a_repeat_in_the_same_transaction_is_ignored_and_the_rest_kept(database_url: str) -> None:
    with session_scope(database_url) as session:
        written = [
            record_session_event(
                session=session, session_id="s1", seq=seq, actor="bob", action=action, detail=""
            )
            for seq, action in [(0, "started"), (0, "started"), (1, "message")]
        ]
    assert written == [True, False, True]
    with session_scope(database_url) as session:
        assert [e.seq for e in session_events(session=session, session_id="s1")] == [0, 1]


def test_events_come_back_in_sequence_order_per_session(database_url: str) -> None:
    for seq in (2, 0, 3, 1):
        _record(database_url, "s1", seq, f"step {seq}")
    _record(database_url, "s2", 0, "other session")
    with session_scope(database_url) as session:
        first = session_events(session=session, session_id="s1")
        second = session_events(session=session, session_id="s2")
        none = session_events(session=session, session_id="s3")
    assert [e.action for e in first] == ["step 0", "step 1", "step 2", "step 3"]
    assert [(e.session_id, e.seq) for e in second] == [("s2", 0)]
    assert none == []


def _deployment(url: str, name: str, owner: str | None) -> str:
    with session_scope(url) as session:
        found = deployments.find_or_create_deployment(
            session=session, name=name, namespace="ml", target="gitops:/tmp/x", owner=owner
        )
        return found.id


def test_the_owner_is_set_on_creation_and_kept(database_url: str) -> None:
    mine = _deployment(database_url, "bot", owner="alice")
    assert _deployment(database_url, "bot", owner="bob") == mine  # a redeploy, not a takeover
    _deployment(database_url, "other", owner="bob")
    _deployment(database_url, "cli", owner=None)
    with session_scope(database_url) as session:
        assert deployments.read_deployment(session=session, deployment_id=mine).owner == "alice"
        owned = deployments.list_deployments(session=session, owner="alice")
        every = deployments.list_deployments(session=session)
    assert [d.name for d in owned] == ["bot"]
    assert sorted(d.name for d in every) == ["bot", "cli", "other"]


def test_slo_checks_are_a_time_series_of_the_latest(database_url: str) -> None:
    deployment_id = _deployment(database_url, "bot", owner="alice")
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    targets = {"ttft_p90_ms": 500.0}
    with session_scope(database_url) as session:
        record_slo_check(
            session=session,
            deployment_id=deployment_id,
            status="no_source",
            detail="no Prometheus configured",
            targets=targets,
            at=start,
        )
        for minutes, ttft in ((10, 320.0), (20, 610.0)):
            record_slo_check(
                session=session,
                deployment_id=deployment_id,
                status="ok" if ttft <= 500 else "breach",
                measurements={"ttft_p90_ms": ttft},
                targets=targets,
                at=start + dt.timedelta(minutes=minutes),
            )
    with session_scope(database_url) as session:
        every = slo_checks(session=session, deployment_id=deployment_id)
        latest = slo_checks(session=session, deployment_id=deployment_id, limit=2)
    assert [c.status for c in every] == ["no_source", "ok", "breach"]
    assert every[0].measurements == {}
    assert every[2].measurements == {"ttft_p90_ms": 610.0}
    assert every[2].targets == targets
    assert [c.status for c in latest] == ["ok", "breach"]


def test_a_check_without_a_source_cannot_carry_numbers(database_url: str) -> None:
    deployment_id = _deployment(database_url, "bot", owner=None)
    with session_scope(database_url) as session, pytest.raises(SloCheckError, match="no_source"):
        record_slo_check(
            session=session,
            deployment_id=deployment_id,
            status="no_source",
            measurements={"ttft_p90_ms": 1.0},
        )
