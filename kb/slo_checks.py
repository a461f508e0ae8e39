"""What the monitoring of a live deployment saw, one row per check.

A check never invents a number: without a metrics source its row says `no_source` and holds
no measurements, so a reader can tell "not measured" from "measured and fine".
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import JSON, String
from sqlmodel import Field, Session, SQLModel, col, select

SloCheckStatus = Literal["no_source", "ok", "breach", "error"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SloCheck(SQLModel, table=True):
    """One SLO check of one deployment."""

    __tablename__ = "slo_check"
    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(foreign_key="deployment.id", index=True)
    at: dt.datetime = Field(default_factory=_now)
    status: SloCheckStatus = Field(sa_type=String)
    detail: str = ""
    measurements: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    """Metric -> observed value (e.g. `ttft_p90_ms`); empty when nothing was measured."""
    targets: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    """Metric -> the SLO target it was checked against."""
    predicted: dict[str, float] | None = Field(default=None, sa_type=JSON)
    """Metric -> what the planner predicts at the load observed (None: not computed)."""


class SloCheckError(ValueError):
    """A check that contradicts itself (numbers without a source)."""


def record_slo_check(
    *,
    session: Session,
    deployment_id: str,
    status: SloCheckStatus,
    detail: str = "",
    measurements: dict[str, float] | None = None,
    targets: dict[str, float] | None = None,
    predicted: dict[str, float] | None = None,
    at: dt.datetime | None = None,
) -> SloCheck:
    measured = dict(measurements or {})
    if status == "no_source" and measured:
        raise SloCheckError("a no_source check cannot carry measurements")
    check = SloCheck(
        deployment_id=deployment_id,
        status=status,
        detail=detail,
        measurements=measured,
        targets=dict(targets or {}),
        predicted=dict(predicted) if predicted else None,
        at=at or _now(),
    )
    session.add(check)
    session.flush()
    return check


def slo_checks(*, session: Session, deployment_id: str, limit: int = 100) -> list[SloCheck]:
    """The latest `limit` checks of one deployment, oldest first (a time series)."""
    query = (
        select(SloCheck)
        .where(SloCheck.deployment_id == deployment_id)
        .order_by(col(SloCheck.at).desc(), col(SloCheck.id).desc())
        .limit(limit)
    )
    return list(reversed(session.exec(query).all()))
