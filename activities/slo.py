"""The scheduled SLO check of a live deployment: vLLM's metrics from Prometheus
(`activities.slo_queries`) against the specification's targets.

Without a metrics source it says so and measures nothing: a check never invents numbers.
Every check is written to the knowledge base (`kb.slo_checks`), which the dashboard reads.
"""

from __future__ import annotations

from typing import Literal

from prometheus_api_client import PrometheusConnect
from pydantic import BaseModel
from temporalio import activity

from activities.slo_queries import PrometheusError, SloQueries, breached, measure
from kb.db import session_scope
from kb.slo_checks import record_slo_check
from settings import Settings

SloCheckStatus = Literal["no_source", "ok", "breach", "error"]


class SloCheckRequest(BaseModel):
    deployment_id: str
    targets: dict[str, float]
    """SLO name (`ttft_p90_ms`, `tpot_p90_ms`, `e2e_p95_ms`) to its target."""
    model_name: str | None = None
    """vLLM's served model name, the `model_name` label of its metrics."""


class SloReport(BaseModel):
    status: SloCheckStatus
    detail: str
    measurements: dict[str, float] = {}
    breached: list[str] = []
    """Names of the targets the measurements exceed."""


class SloActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def report(self, request: SloCheckRequest) -> SloReport:
        url = self._settings.prometheus_url
        if url is None or request.model_name is None:
            return SloReport(
                status="no_source",
                detail="no metrics source configured: nothing measured, nothing compared",
            )
        queries = SloQueries(request.model_name, self._settings.slo_window)
        try:
            measured = measure(PrometheusConnect(url=url, disable_ssl=True), queries)
        except PrometheusError as error:
            return SloReport(status="error", detail=f"Prometheus at {url}: {error}")
        over = breached(measured, request.targets)
        unmeasured = [name for name in request.targets if name not in measured]
        detail = (
            ", ".join(
                f"{name} {measured[name]:,.0f} vs {request.targets[name]:,.0f}" for name in over
            )
            if over
            else "every measured SLO within target"
        )
        if unmeasured:
            detail += f"; no data for {', '.join(unmeasured)} (no traffic in {queries.window}?)"
        return SloReport(
            status="breach" if over else "ok",
            detail=detail,
            measurements=measured,
            breached=over,
        )

    @activity.defn
    def check_slo(self, request: SloCheckRequest) -> SloReport:
        report = self.report(request)
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
