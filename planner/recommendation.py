"""What a recommendation is: the options shown with their numbers and reasons, the chart's
landscape, what was left out, and the model cards they draw on."""

from __future__ import annotations

from pydantic import Field

from planner.capacity import CapacityOption
from planner.catalog_index import Candidate
from planner.intent import DeploymentSpecification
from planner.prediction import Source
from planner.specs import Frozen


class ModelCard(Frozen):
    """What recommending needs to know about a model beyond its architecture."""

    id: str
    display_name: str
    license: str
    license_permissive: bool
    tasks: list[str]
    domains: list[str]
    languages: list[str]
    max_context_tokens: int
    quality_score: float | None = None
    """MMLU-Pro, 0-100 (None: not published)."""


class Band(Frozen):
    """Where the true latency likely lies (about an 80 % band), as factors of the predicted
    value (0.8 and 1.3: from 20 % below to 30 % above), so it applies to any percentile."""

    ttft_low: float
    ttft_high: float
    tpot_low: float
    tpot_high: float
    basis: str


class Recommendation(Frozen):
    id: str
    """Names the option across re-evaluations: `model@gpu:tpN:precision`."""
    option: CapacityOption
    display_name: str
    quality_score: float | None
    slo_margin: dict[str, float]
    """Share of each SLO target left unused at peak load (0.25: 25 % under target)."""
    rationale: str
    source: Source = "modelled"
    """Where the latencies at the per-replica peak load come from."""
    uncertainty: Band | None = None
    """None when the planner has no residuals to base a band on."""
    references: list[str] = []
    """The measured runs the numbers rest on (measured or interpolated)."""
    observed: str | None = None
    """With source `observed`: what live deployments of this configuration showed."""


class LandscapePoint(Frozen):
    """One feasible option on the cost/latency/quality chart."""

    id: str
    """As `Recommendation.id`: `model@gpu:tpN:precision`."""
    model: str
    """The model's display name."""
    gpu_id: str
    tp: int
    replicas: int
    """Replicas for peak load."""
    usd_per_month: float | None
    ttft_p90_ms: float
    tpot_p90_ms: float
    e2e_p95_ms: float
    quality: float | None
    """MMLU-Pro (None: not published)."""
    pareto: bool
    """On the Pareto front of cost, latency (share of the SLOs used) and quality."""


class LeftOut(Frozen):
    name: str
    kind: str
    """`model` or `gpu`."""
    reason: str


class Recommendations(Frozen):
    specification: DeploymentSpecification
    options: list[Recommendation]
    feasible: int = Field(ge=0)
    """Feasible (model, GPU, TP, precision) options in all."""
    left_out: list[LeftOut] = []
    """Models and GPUs the user named that are not among the options, and why."""
    relax: list[str] = []
    """When nothing is feasible: what to relax, and by how much."""
    filtered: dict[str, str] = {}
    """Catalog models ruled out before sizing, and why."""
    cluster: list[str] = []
    """What the target cluster has free, and what that did to the options (empty without a
    cluster)."""
    landscape: list[LandscapePoint] = []
    """Feasible options to chart: the recommended ones, the Pareto front and the best of each
    (model, GPU), at most LANDSCAPE_MAX, in rank order."""


def option_id(o: Candidate) -> str:
    return f"{o.model_id}@{o.gpu_id}:tp{o.tp}:{o.precision}"
