"""The assistant's own numbers: `GET /insights` (admins) with the design's targets beside them,
and `GET /metrics` for Prometheus (kb.insights_metrics). Both are computed from the sessions'
recorded events at each request, so every API process answers alike and a restart loses
nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from api.dependencies import AppSettings
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from kb.insights import TARGETS, Insights, insights_at
from kb.insights_metrics import exposition

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
    return view(await run_in_threadpool(insights_at, settings.resolved_database_url))


@router.get(
    "/metrics",
    summary="The assistant's metrics for Prometheus",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics_route(settings: AppSettings) -> Response:
    """Prometheus text format, from the sessions' recorded events. Needs no key (counts only,
    no names), like /health."""
    text = await run_in_threadpool(exposition, settings.resolved_database_url)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
