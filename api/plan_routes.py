"""Stateless planning over HTTP: `POST /plan`, `POST /whatif` and `POST /predict`, the
counterparts of `preflight plan --json`, `preflight whatif --json` and `preflight predict
--json`, and `POST /load-curve` for a chart of one replica's latency against load. Nothing
is stored; a conversation that remembers and deploys is a session (the session routes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.dependencies import Planning
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from kb.repository import NotLoadedError
from planner.catalog_index import Candidate
from planner.conversation import Question
from planner.intent import DeploymentIntent, DeploymentSpecification
from planner.loadcurve import LoadCurve, load_curve
from planner.prediction import PredictionQuery
from planner.recommendation import Recommendations
from planner.requirements import MAX_QPS, MIN_QPS, TrafficProfile
from planner.service import PlanningError, PlanningService
from planner.specs import Precision
from planner.whatif import CHANGEABLE, ScenarioRow, WhatIfError

MAX_MESSAGE = 4000
"""Characters of one plain-words message (a description, not a document)."""
MAX_SCENARIOS = 8
"""What-if scenarios per request: each is a full search of the catalog."""
BASELINE = "as specified"
"""The name of the intent as sent, first among the what-if rows."""
Requester = Annotated[Caller, Depends(require("requester"))]
"""Planning is the requester's job (an admin may do it too)."""


class PlanRequest(BaseModel):
    """Plain words or a DeploymentIntent: exactly one of them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "A support chatbot for 2,000 employees"}]},
    )
    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE)
    """What the deployment is for, in plain words."""
    intent: DeploymentIntent | None = None
    """What is wanted, field by field; unset fields take the use case's defaults."""

    @model_validator(mode="after")
    def _one_of(self) -> PlanRequest:
        if (self.message is None) == (self.intent is None):
            raise ValueError("send either `message` (plain words) or `intent`, not both")
        return self


class PlanResponse(BaseModel):
    intent: DeploymentIntent
    """What the words said (or the intent as sent, names resolved to catalog ids)."""
    specification: DeploymentSpecification
    """The intent completed from its use case's template; `defaults` lists what was filled."""
    reply: str
    """The assistant's answer in words: the specification and what it still asks."""
    questions: list[Question]
    """Clarifying questions (at most two); the options below assume the defaults."""
    recommendations: Recommendations


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    changes: dict[str, Any] = Field(json_schema_extra={"propertyNames": {"enum": list(CHANGEABLE)}})
    """Dotted intent fields and their new values (`traffic.peak_qps`, `target_ttft_p90_ms`);
    `model` and `gpu` pin one; null clears a field."""


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "intent": {"use_case": "chatbot", "concurrent_users": 2000},
                    "scenarios": [{"name": "on A100", "changes": {"gpu": "a100"}}],
                }
            ]
        },
    )
    intent: DeploymentIntent
    scenarios: list[Scenario] = Field(min_length=1, max_length=MAX_SCENARIOS)

    @field_validator("scenarios")
    @classmethod
    def _distinct_names(cls, scenarios: list[Scenario]) -> list[Scenario]:
        seen = {BASELINE}
        for i, scenario in enumerate(scenarios):
            if scenario.name in seen:
                raise ValueError(f"{i}.name {scenario.name!r} is taken; names must differ")
            seen.add(scenario.name)
        return scenarios


class WhatIfResponse(BaseModel):
    scenarios: list[ScenarioRow]
    """The best option of the intent as sent (first, named "as specified") and of each
    scenario, with how each differs from the first."""


class LoadCurveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_id": "Qwen/Qwen3-8B",
                    "gpu_id": "H100-SXM-80GB",
                    "tp": 1,
                    "precision": "fp8",
                    "traffic": {
                        "prompt_tokens_mean": 1000,
                        "output_tokens_mean": 300,
                        "steady_qps": 2,
                        "peak_qps": 5,
                    },
                    "up_to_qps": 12.5,
                }
            ]
        },
    )
    model_id: str = Field(min_length=1, max_length=200)
    gpu_id: str = Field(min_length=1, max_length=200)
    tp: Literal[1, 2, 4, 8]
    """Tensor-parallel degree: a power of two, as vLLM shards attention heads."""
    precision: Precision
    traffic: TrafficProfile
    """The request lengths and burstiness; its rates are not used (the loads are)."""
    up_to_qps: float = Field(ge=MIN_QPS, le=MAX_QPS)
    """Load of one replica to chart up to, typically an option's `max_qps_per_replica`; the
    curve runs a quarter past it."""
    points: int = Field(default=16, ge=4, le=64)


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


@contextmanager
def _answers() -> Iterator[None]:
    """The service's refusals as HTTP: bad input 422, an empty knowledge base 503."""
    try:
        yield
    except PlanningError as error:
        raise unprocessable(str(error)) from None
    except NotLoadedError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None


def plan(planning: PlanningService, request: PlanRequest) -> PlanResponse:
    with _answers():
        planned = planning.plan(request.message, request.intent)
    return PlanResponse.model_validate(planned, from_attributes=True)


def what_if(planning: PlanningService, request: WhatIfRequest) -> WhatIfResponse:
    scenarios = [(s.name, s.changes) for s in request.scenarios]
    with _answers():
        return WhatIfResponse(scenarios=planning.compare(request.intent, scenarios, BASELINE))


def predict(planning: PlanningService, request: PredictionQuery) -> dict[str, object]:
    with _answers():
        helper = planning.assistant()
    names = {}
    for field, kind in (("model_id", "model"), ("gpu_id", "gpu")):
        try:
            found = helper.resolved(kind, getattr(request, field))
        except WhatIfError as error:
            raise unprocessable(f"{field}: {str(error).split(': ', 1)[-1]}") from None
        if len(found) != 1:
            named = getattr(request, field)
            raise unprocessable(f"{field}: '{named}' names {', '.join(found)}; pick one")
        names[field] = found[0]
    return helper.planner.predict(request.model_copy(update=names)).report()


def curve(planning: PlanningService, request: LoadCurveRequest) -> LoadCurve:
    with _answers():
        planner = planning.assistant().planner
    if request.model_id not in planner.models:
        raise unprocessable(f"model_id: unknown model {request.model_id!r}")
    if request.gpu_id not in planner.gpus:
        raise unprocessable(f"gpu_id: unknown GPU {request.gpu_id!r}")
    candidate = Candidate.model_validate(request, from_attributes=True)
    return load_curve(planner, candidate, request.traffic, request.up_to_qps, request.points)


router = APIRouter(tags=["planning"], route_class=ReadableValidation)


@router.post(
    "/plan",
    summary="Plan a deployment from plain words or an intent",
    response_description="The specification, any clarifying questions, and ranked options.",
    responses=problems(401, 403, 422, 503),
)
async def plan_route(request: PlanRequest, planning: Planning, _caller: Requester) -> PlanResponse:
    """Read the words (or take the intent), complete the specification from the use
    case's template, ask what is still open and recommend model + GPU + parallelism +
    replicas with predicted latency and cost. Stateless: nothing is stored. Needs the
    requester role."""
    return await run_in_threadpool(plan, planning, request)


@router.post(
    "/whatif",
    summary="Compare what-if scenarios of an intent",
    response_description="The best option of the intent and of each scenario, side by side.",
    responses=problems(401, 403, 422, 503),
)
async def what_if_route(
    request: WhatIfRequest, planning: Planning, _caller: Requester
) -> WhatIfResponse:
    """Change fields of the intent per scenario (tighter latency, more traffic, a pinned
    model or GPU) and re-plan each; the first row is the intent as sent. Stateless.
    Needs the requester role."""
    return await run_in_threadpool(what_if, planning, request)


@router.post(
    "/predict",
    summary="Predict one replica of one configuration under one load",
    response_description="TTFT, TPOT and E2E percentiles, throughput, memory and sources.",
    responses=problems(401, 403, 422, 503),
)
async def predict_route(
    request: PredictionQuery, planning: Planning, _caller: Requester
) -> dict[str, object]:
    """Predict (model, GPU, TP, precision) at a closed-loop concurrency or an open-loop
    request rate (Poisson, constant or gamma arrivals), run with the vLLM engine settings
    given (`max_num_seqs`, `max_num_batched_tokens`, `max_model_len`,
    `gpu_memory_utilization`, `kv_cache_dtype`, `enable_prefix_caching`,
    `prefix_cache_hit_rate`); the same answer as `preflight predict --json`. Model and
    GPU may be catalog ids or names. Needs the requester role."""
    return await run_in_threadpool(predict, planning, request)


@router.post(
    "/load-curve",
    summary="Latency against load for one replica of one configuration",
    response_description="Predicted latency percentiles at evenly spaced loads.",
    responses=problems(401, 403, 422, 503),
)
async def load_curve_route(
    request: LoadCurveRequest, planning: Planning, _caller: Requester
) -> LoadCurve:
    """Predict one replica of (model, GPU, TP, precision) serving `traffic`'s request
    lengths at `points` loads from `up_to_qps / points` to 1.25 x `up_to_qps`, so a
    chart shows the SLO limit and the knee past it. Latencies are null where the
    replica cannot keep up. Stateless. Needs the requester role."""
    return await run_in_threadpool(curve, planning, request)
