"""The assistant's own numbers: `GET /insights` (admins) with the design's targets beside them,
and `GET /metrics` for Prometheus. Both are computed from the sessions' recorded events at
each request, so every API process answers alike and a restart loses nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from pydantic import BaseModel

from api.dependencies import AppSettings
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from kb.db import session_scope
from kb.insights import TARGETS, Insights, Spread, insights

TIME_TO_DEPLOY_BUCKETS = (60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
REPLY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

router = APIRouter(tags=["operations"], route_class=ReadableValidation)


class Measure(BaseModel):
    value: float | None
    target: float | None
    met: bool | None
    """None while nothing was measured."""


class InsightsView(BaseModel):
    sessions: int
    acceptance_rate: Measure
    """Sessions that selected one of the options they got."""
    spec_edit_rate: Measure
    """Sessions whose person edited the generated specification: lower is better defaults."""
    reply_latency_p90_s: Measure
    time_to_deploy_p90_s: Measure
    """From the first message to the first deploy that passed its checks."""
    deploy_success_rate: Measure
    counts: Insights


def _measure(value: float | None, target: float | None, above: bool = False) -> Measure:
    met = (
        None if value is None or target is None else (value >= target if above else value <= target)
    )
    return Measure(value=value, target=target, met=met)


def view(found: Insights) -> InsightsView:
    return InsightsView(
        sessions=found.sessions,
        acceptance_rate=_measure(found.acceptance_rate, None),
        spec_edit_rate=_measure(found.spec_edit_rate, None),
        reply_latency_p90_s=_measure(found.reply_latency_s.p90, TARGETS["reply_latency_s"]),
        time_to_deploy_p90_s=_measure(found.time_to_deploy_s.p90, TARGETS["time_to_deploy_s"]),
        deploy_success_rate=_measure(
            found.deploy_success_rate, TARGETS["deploy_success_rate"], above=True
        ),
        counts=found,
    )


def read(url: str) -> Insights:
    with session_scope(url) as session:
        return insights(session=session)


@router.get(
    "/insights",
    summary="How well the assistant does, against its targets",
    response_description="Acceptance, specification edits, reply latency, time to deploy, deploy "
    "success, each with its target where the design sets one.",
    responses=problems(401, 403),
)
async def insights_route(
    settings: AppSettings, _caller: Annotated[Caller, Depends(require("admin"))]
) -> InsightsView:
    """From every session's recorded events. Needs the admin role."""
    return view(await run_in_threadpool(read, settings.resolved_database_url))


class _Assistant(Collector):
    def __init__(self, found: Insights) -> None:
        self._found = found

    def collect(self) -> Iterator[Metric]:
        found = self._found
        yield CounterMetricFamily(
            "preflight_sessions", "Assistant sessions started.", value=found.sessions
        )
        by_case = {
            "recommended": ("preflight_sessions_recommended", "Sessions that got options."),
            "accepted": ("preflight_sessions_accepted", "Sessions that selected an option."),
            "spec_edited": (
                "preflight_sessions_spec_edited",
                "Sessions whose generated specification was edited.",
            ),
        }
        for field, (name, text) in by_case.items():
            family = CounterMetricFamily(name, text, labels=["use_case"])
            for case, counts in found.use_cases.items():
                family.add_metric([case], getattr(counts, field))
            yield family
        stages = GaugeMetricFamily(
            "preflight_sessions_in_stage", "Sessions in each stage now.", labels=["stage"]
        )
        for stage, count in found.stages.items():
            stages.add_metric([stage], count)
        yield stages
        deploys = CounterMetricFamily(
            "preflight_deploys", "Deploys by use case and outcome.", labels=["use_case", "outcome"]
        )
        for case, counts in found.use_cases.items():
            deploys.add_metric([case, "succeeded"], counts.deploys_succeeded)
            deploys.add_metric([case, "failed"], counts.deploys_failed)
        yield deploys
        yield _histogram(
            "preflight_time_to_deploy_seconds",
            "First message to the first deploy that passed its checks, per session.",
            found.time_to_deploy_s,
            TIME_TO_DEPLOY_BUCKETS,
        )
        yield _histogram(
            "preflight_reply_latency_seconds",
            "A chat message to its reply.",
            found.reply_latency_s,
            REPLY_BUCKETS,
        )


def _histogram(name: str, text: str, spread: Spread, bounds: Sequence[float]) -> Metric:
    buckets = [(f"{b:g}", sum(v <= b for v in spread.values)) for b in bounds]
    return HistogramMetricFamily(
        name, text, buckets=[*buckets, ("+Inf", spread.count)], sum_value=sum(spread.values)
    )


@router.get(
    "/metrics",
    summary="The assistant's metrics for Prometheus",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics_route(settings: AppSettings) -> Response:
    """Prometheus text format, from the sessions' recorded events. Needs no key (counts only,
    no names), like /health."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Assistant(await run_in_threadpool(read, settings.resolved_database_url)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
