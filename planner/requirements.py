"""What a deployment must achieve: traffic, SLO targets and constraints on the search."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from planner.specs import ArrivalProcess, EngineSettings, Frozen, Precision

PricingKind = Literal["on_demand", "spot", "committed_1y", "committed_3y", "on_prem"]
Burstiness = Literal["low", "medium", "high"]
ARRIVAL_CV2: dict[str, float] = {"low": 1.0, "medium": 2.0, "high": 4.0}
"""Arrival variability (squared CV of inter-arrival gaps) assumed for each burstiness level:
Poisson for low, burstier above."""
ARRIVALS: dict[str, tuple[ArrivalProcess, float]] = {
    level: ("poisson", 1.0) if cv2 == 1.0 else ("gamma", 1.0 / cv2)
    for level, cv2 in ARRIVAL_CV2.items()
}
"""The same levels as an arrival process and vLLM's burstiness (gamma shape, 1 / cv2)."""


MAX_TOKENS = 10_000_000
"""Longer than any model's context: a request of more tokens is a mistake."""
MAX_QPS = 1e6
"""The most a person may ask for: a million requests a second, beyond any one deployment."""
MIN_QPS = 1e-6
"""The least request rate a person may ask for (one request in eleven and a half days):
below it a rate is no serving load, and what is derived from it (a steady rate below a peak,
a load curve's steps) underflows to zero."""


class TrafficProfile(Frozen):
    prompt_tokens_mean: int = Field(ge=1, le=MAX_TOKENS)
    prompt_tokens_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    output_tokens_mean: int = Field(ge=1, le=MAX_TOKENS)
    output_tokens_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    steady_qps: float = Field(gt=0)
    peak_qps: float = Field(gt=0)
    burstiness: Burstiness = "medium"


class SLOTargets(Frozen):
    ttft_p90_ms: float | None = Field(default=None, gt=0)
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)


class SearchConstraints(Frozen):
    models: list[str] | None = None
    """Only these catalog ids (None: the whole catalog)."""
    excluded_models: list[str] = []
    gpus: list[str] | None = None
    excluded_gpus: list[str] = []
    precisions: list[Precision] | None = None
    max_tp: int = Field(default=8, ge=1)
    pricing: PricingKind = "on_demand"
    provider: str | None = None
    max_monthly_cost_usd: float | None = Field(default=None, gt=0)


class CapacitySpec(Frozen):
    traffic: TrafficProfile
    slo: SLOTargets = SLOTargets()
    constraints: SearchConstraints = SearchConstraints()
    headroom: float = Field(default=0.2, ge=0, lt=1)
    """Share of per-replica capacity held back when sizing (0.2 sizes replicas to 80 %)."""
    min_replicas: int = Field(default=1, ge=1)
    """Fewest replicas whatever the load: 2 keeps serving through a node's loss."""
    engine: EngineSettings = EngineSettings()
    """The vLLM settings every option is predicted with, and deployed with."""
    prefix_routing: bool = False
    """Requests go to the replica holding their prefix (llm-d's scheduler); without it the
    engine's prefix-cache hit rate counts one time in the number of replicas."""
    simulate_top: int = Field(default=3, ge=0, le=20)
    """Check this many of the best options by discrete-event simulation at peak load."""
