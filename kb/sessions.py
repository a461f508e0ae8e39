"""The audit trail of assistant sessions: every state change a session workflow makes.

Rows are written by a Temporal activity, which may run more than once for the same change
(a retry after a lost acknowledgement), so each change carries the workflow's own sequence
number and a second write of the same (session_id, seq) is ignored.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionAuditEvent(SQLModel, table=True):
    """One state change of one session: who did what, and when."""

    __tablename__ = "session_audit_event"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(index=True)
    seq: int = Field(ge=0)
    """The change's position in its session (assigned by the workflow, so retries repeat it)."""
    at: dt.datetime = Field(default_factory=_now)
    actor: str
    action: str
    detail: str = ""


def record_session_event(
    *,
    session: Session,
    session_id: str,
    seq: int,
    actor: str,
    action: str,
    detail: str = "",
    at: dt.datetime | None = None,
) -> bool:
    """Record one change; False when (session_id, seq) is there already (nothing changes).

    INSERT ... ON CONFLICT DO NOTHING rather than read-then-insert: two concurrent attempts
    of the same activity cannot both insert, and neither fails."""
    values = SessionAuditEvent(
        session_id=session_id, seq=seq, actor=actor, action=action, detail=detail, at=at or _now()
    ).model_dump(exclude={"id"})
    dialect = session.get_bind().dialect.name
    keys = ["session_id", "seq"]
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(SessionAuditEvent).on_conflict_do_nothing(index_elements=keys)
    elif dialect == "sqlite":
        statement = sqlite.insert(SessionAuditEvent).on_conflict_do_nothing(index_elements=keys)
    else:
        raise NotImplementedError(f"session audit events on {dialect} are not supported")
    # RETURNING answers with a row only when one was inserted (rowcount is not reliable here).
    inserted = session.connection().execute(
        statement.values(**values).returning(col(SessionAuditEvent.id))
    )
    return inserted.first() is not None


def session_events(*, session: Session, session_id: str) -> list[SessionAuditEvent]:
    """Every recorded change of one session, in the order the workflow made them."""
    query = select(SessionAuditEvent).where(SessionAuditEvent.session_id == session_id)
    return list(session.exec(query.order_by(col(SessionAuditEvent.seq))).all())
