"""The scheduled SLO check of a live deployment: vLLM's metrics from Prometheus
(`activities.slo_queries`) against the specification's targets.

Without a metrics source it says so and measures nothing: a check never invents numbers.
Every check is written to the knowledge base (`kb.slo_checks`), which the dashboard reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect
from temporalio import activity

from activities.slo_queries import PrometheusError, SloQueries, breached, measure
from kb.catalog import planner
from kb.db import session_scope
from kb.slo_checks import record_slo_check
from kb.tables import Outcome
from planner.capacity import option_query
from planner.prediction import Prediction, PredictionQuery
from planner.requirements import TrafficProfile
from planner.rightsizing import advise
from planner.routing import plausible_hit_rate
from settings import Settings
from workflows.calls import SloCalls
from workflows.payloads import REHEARSAL, Configuration, SloCheckRequest, SloReport


class SloActivities(SloCalls):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def report(self, request: SloCheckRequest) -> SloReport:
        url = request.prometheus_url or self._settings.prometheus_url
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
        c = request.configuration
        if c is not None and c.usd_per_replica_hour is not None and "replicas" in measured:
            measured["usd_per_hour"] = measured["replicas"] * c.usd_per_replica_hour
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
            advice=advise(measured, request.targets, request.configuration)
            if request.configuration
            else [],
        )

    @activity.defn
    def check_slo(self, request: SloCheckRequest) -> SloReport:
        """One check: measure, compare, advise; recorded with what the planner predicts at
        the load observed (the dashboard's predicted against actual), and, for a real
        deployment, kept as an outcome the planner learns from."""
        report = self.report(request)
        if request.rehearsal:
            report = report.model_copy(update={"detail": f"{REHEARSAL}: {report.detail}"})
        with session_scope(self._settings.resolved_database_url) as session:
            served = served_at(report.measurements, request.configuration)
            prediction = planner(session=session).predict(served.query) if served else None
            predicted = _predicted(prediction, request.configuration)
            if served and prediction and predicted and not request.rehearsal:
                session.add(_outcome(report, request, served, predicted, self._settings.slo_window))
            record_slo_check(
                session=session,
                deployment_id=request.deployment_id,
                status=report.status,
                detail=report.detail,
                measurements=report.measurements,
                targets=request.targets,
                predicted=predicted,
            )
        return report


@dataclass(frozen=True)
class Served:
    """The load a deployment served, as a question for the planner."""

    query: PredictionQuery
    rate: float
    replicas: int


def served_at(measured: dict[str, float], c: Configuration | None) -> Served | None:
    """Per replica, with the observed lengths (the spec's where unmeasured); None without
    traffic to compare at."""
    rate = measured.get("requests_per_s", 0.0)
    if c is None or rate <= 0:
        return None
    replicas = max(round(measured.get("replicas", c.replicas)), 1)
    prompt = measured.get("prompt_tokens_per_s", rate * c.prompt_tokens) / rate
    output = measured.get("output_tokens_per_s", rate * c.output_tokens) / rate
    isl, osl = max(round(prompt), 1), max(round(output), 1)
    observed = TrafficProfile(
        prompt_tokens_mean=isl,
        output_tokens_mean=osl,
        # The spec's spread, scaled to the observed means: without it the planner would
        # predict the tail (E2E p95) of equal-length requests.
        prompt_tokens_p95=_tail(c.prompt_tokens_p95, isl / c.prompt_tokens, isl),
        output_tokens_p95=_tail(c.output_tokens_p95, osl / c.output_tokens, osl),
        steady_qps=rate,
        peak_qps=rate,
        burstiness="low",  # Poisson: the shape of the observed arrivals is not measured
    )
    hits = plausible_hit_rate(c.engine.prefix_cache_hit_rate, replicas, c.prefix_routing)
    engine = c.engine.model_copy(update={"prefix_cache_hit_rate": float(hits)})
    query = option_query(c, observed, rate / replicas, engine)
    return Served(query=query, rate=rate, replicas=replicas)


def _tail(p95: int | None, scale: float, mean: int) -> int | None:
    return None if p95 is None else max(round(p95 * scale), mean)


def _predicted(prediction: Prediction | None, c: Configuration | None) -> dict[str, float]:
    if prediction is None or c is None or not prediction.ttft_ms or not prediction.tpot_ms:
        return {}
    assert prediction.e2e_ms is not None
    found = {
        "ttft_p90_ms": prediction.ttft_ms.p90,
        "tpot_p90_ms": prediction.tpot_ms.p90,
        "e2e_p95_ms": prediction.e2e_ms.p95,
        "ttft_mean_ms": prediction.ttft_ms.mean,
        "tpot_mean_ms": prediction.tpot_ms.mean,
    }
    if c.usd_per_replica_hour is not None:
        found["usd_per_hour"] = c.replicas * c.usd_per_replica_hour  # as planned, at peak
    return found


def _outcome(
    report: SloReport,
    request: SloCheckRequest,
    served: Served,
    predicted: dict[str, float],
    window: str,
) -> Outcome:
    m, c, q = report.measurements, request.configuration, served.query
    assert c is not None
    return Outcome(
        deployment_id=request.deployment_id,
        model_id=c.model_id,
        gpu_id=c.gpu_id,
        precision=c.precision,
        tp=c.tp,
        replicas=served.replicas,
        observed_at=dt.datetime.now(dt.UTC),
        window_s=_seconds(window),
        observed_qps=served.rate,
        observed_prompt_tokens_mean=q.isl,
        observed_output_tokens_mean=q.osl,
        predicted_ttft_p90_ms=predicted["ttft_p90_ms"],
        observed_ttft_p90_ms=m.get("ttft_p90_ms"),
        predicted_tpot_p90_ms=predicted["tpot_p90_ms"],
        observed_tpot_p90_ms=m.get("tpot_p90_ms"),
        predicted_e2e_p95_ms=predicted["e2e_p95_ms"],
        observed_e2e_p95_ms=m.get("e2e_p95_ms"),
        error_rate=min(max(m.get("error_ratio", 0.0), 0.0), 1.0),
        slo_met=report.status == "ok",
        source=f"observed: SLO check over {window}",
    )


def _seconds(window: str) -> float:
    return float(window[:-1]) * {"s": 1, "m": 60, "h": 3600}[window[-1]]
