"""The scheduled SLO check of a live deployment.

Without a metrics source it says so and measures nothing: a check never invents numbers.
Every check is written to the knowledge base (`kb.slo_checks`), which the dashboard reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from temporalio import activity

from kb.db import session_scope
from kb.slo_checks import record_slo_check
from settings import Settings

SloCheckStatus = Literal["no_source", "ok", "breach", "error"]


class SloCheckRequest(BaseModel):
    deployment_id: str
    targets: dict[str, float]
    """SLO name (`ttft_p90_ms`, `tpot_p90_ms`, `e2e_p95_ms`) to its target."""


class SloReport(BaseModel):
    status: SloCheckStatus
    detail: str
    measurements: dict[str, float] = {}
    breached: list[str] = []
    """Names of the targets the measurements exceed."""


class SloActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn
    def check_slo(self, request: SloCheckRequest) -> SloReport:
        report = SloReport(
            status="no_source",
            detail="no metrics source configured: nothing measured, nothing compared",
        )
        with session_scope(self._settings.resolved_database_url) as session:
            record_slo_check(
                session=session,
                deployment_id=request.deployment_id,
                status=report.status,
                detail=report.detail,
                measurements=report.measurements,
                targets=request.targets,
            )
        return report
