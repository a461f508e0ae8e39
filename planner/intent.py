"""What the person asked for (the intent) and what Preflight will plan for (the
specification).

The intent holds only what the words said: every field the user did not give stays null.
The specification fills the rest from the use case's template and says which fields are
defaults. Field names are fixed: the API, the LLM's JSON schema and the workflow rely on
them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.requirements import (
    MAX_QPS,
    MAX_TOKENS,
    MIN_QPS,
    Burstiness,
    SearchConstraints,
    SLOTargets,
    TrafficProfile,
)
from planner.specs import EngineSettings, Frozen

Priority = Literal["latency", "cost", "accuracy", "balanced"]
Vendor = Literal["nvidia", "amd", "intel"]


class Partial(BaseModel):
    """Every field optional and null unless stated; unknown fields are refused, so that
    nothing outside the schema can be filled (by a person or by an LLM)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BudgetConstraint(Partial):
    max_monthly_cost_usd: float | None = Field(default=None, gt=0)
    max_hourly_cost_usd: float | None = Field(default=None, gt=0)
    cost_per_1k_tokens: float | None = Field(default=None, gt=0)
    """Most the user will pay per 1,000 tokens (prompt plus output)."""


class GpuConstraints(Partial):
    vendors: list[Vendor] | None = None
    """Only these vendors ("NVIDIA only")."""
    excluded_vendors: list[Vendor] | None = None
    """Not these vendors ("no AMD")."""
    max_gpus_per_replica: int | None = Field(default=None, ge=1, le=8)


class TrafficIntent(Partial):
    """What the user said about the traffic's shape."""

    prompt_tokens_mean: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    prompt_tokens_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    output_tokens_mean: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    output_tokens_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    steady_qps: float | None = Field(default=None, ge=MIN_QPS, le=MAX_QPS)
    peak_qps: float | None = Field(default=None, ge=MIN_QPS, le=MAX_QPS)
    concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight at once."""
    burstiness: Burstiness | None = None


class DeploymentIntent(Partial):
    use_case: str | None = None
    """A use-case template id from the knowledge base, e.g. `chatbot`, `rag_qa`."""
    use_case_description: str | None = Field(default=None, max_length=500)
    subject_matter: str | None = Field(default=None, max_length=100)
    """The domain, e.g. `legal`, `medical`, `finance`, `code`."""
    concurrent_users: int | None = Field(default=None, ge=1)
    """People using it (not requests in flight: see `traffic.concurrency`)."""
    expected_qps: float | None = Field(default=None, ge=MIN_QPS, le=MAX_QPS)
    priority: Priority | None = None
    budget: BudgetConstraint | None = None
    target_ttft_p90_ms: float | None = Field(default=None, gt=0)
    target_tpot_p90_ms: float | None = Field(default=None, gt=0)
    target_e2e_latency_p95_ms: float | None = Field(default=None, gt=0)
    target_throughput_rps: float | None = Field(default=None, ge=MIN_QPS, le=MAX_QPS)
    quality_threshold: float | None = Field(default=None, ge=0, le=100)
    """Least MMLU-Pro score (the catalog's quality signal) a model must have."""
    reliability_target: float | None = Field(default=None, gt=0, lt=1)
    """Availability, e.g. 0.999."""
    preferred_models: list[str] | None = None
    excluded_models: list[str] | None = None
    pinned_models: list[str] | None = None
    """Only these models (a what-if pin); `preferred_models` only ranks first."""
    available_gpus: list[str] | None = None
    """The only accelerators to plan on ("we only have A100s")."""
    excluded_gpus: list[str] | None = None
    gpu_constraints: GpuConstraints | None = None
    max_context_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    """Longest prompt plus output one request needs."""
    languages: list[str] | None = None
    """ISO 639-1 codes, e.g. `en`, `es`."""
    licenses: list[str] | None = None
    """Acceptable model licences (SPDX ids, or `permissive` for any OSI-style licence)."""
    traffic: TrafficIntent | None = None
    engine: EngineSettings | None = None
    """vLLM engine settings to plan and deploy with (None: vLLM's defaults); set through the
    API, the specification card or a what-if, not read from chat."""
    prefix_routing: bool | None = None
    """Route each request to the replica holding its prefix (llm-d's inference scheduler,
    served through an LLMInferenceService); None: no."""


def merged(base: DeploymentIntent, update: DeploymentIntent) -> DeploymentIntent:
    """`base` with every field `update` gives (non-null) taking its place; nested parts
    merge field by field."""
    values = base.model_dump()
    for name, value in update.model_dump(exclude_none=True).items():
        if isinstance(value, dict) and isinstance(values.get(name), dict):
            values[name] = {**values[name], **value}
        else:
            values[name] = value
    return DeploymentIntent.model_validate(values)


def changes(before: DeploymentIntent, after: DeploymentIntent) -> list[str]:
    """Dotted names of the fields whose value differs."""
    return sorted(_diff(before.model_dump(), after.model_dump(), ""))


def _diff(a: dict[str, object], b: dict[str, object], prefix: str) -> set[str]:
    found: set[str] = set()
    for name in a.keys() | b.keys():
        x, y = a.get(name), b.get(name)
        if isinstance(x, dict) or isinstance(y, dict):
            found |= _diff(
                x if isinstance(x, dict) else {}, y if isinstance(y, dict) else {}, f"{name}."
            )
        elif x != y:
            found.add(prefix + name)
    return found


class UseCaseProfile(Frozen):
    """One use-case template: its SLOs and traffic shape (from the knowledge base)."""

    id: str
    display_name: str
    description: str
    tasks: list[str]
    ttft_p90_ms: float
    tpot_p90_ms: float
    e2e_p95_ms: float
    prompt_tokens_mean: int
    prompt_tokens_p95: int
    output_tokens_mean: int
    output_tokens_p95: int
    active_user_ratio: float
    requests_per_active_user_per_min: float
    burstiness: Burstiness
    peak_factor: float
    min_context_tokens: int


class DeploymentSpecification(Frozen):
    """The intent with every gap filled: what the planner searches with."""

    use_case: str
    use_case_description: str | None = None
    subject_matter: str | None = None
    priority: Priority
    concurrent_users: int | None = None
    traffic: TrafficProfile
    traffic_formula: str
    """How the load follows from the users, with the numbers (shown to the user)."""
    slo: SLOTargets
    target_throughput_rps: float | None = None
    budget: BudgetConstraint
    constraints: SearchConstraints
    """Models, GPUs and budget the search may use (names resolved to catalog ids)."""
    preferred_models: list[str] = []
    pinned_models: list[str] | None = None
    quality_threshold: float | None = None
    reliability_target: float | None = None
    max_context_tokens: int
    languages: list[str] = []
    licenses: list[str] | None = None
    gpu_constraints: GpuConstraints = GpuConstraints()
    engine: EngineSettings = EngineSettings()
    """The vLLM settings every option is predicted with and the deployment renders."""
    prefix_routing: bool = False
    """llm-d's prefix-cache-aware routing: predicted with the engine's whole prefix-cache hit
    rate, rendered as the LLMInferenceService's router (`planner.routing`)."""
    defaults: list[str] = []
    """Fields filled from the use case's template or Preflight's defaults, not from the
    user (dotted names, e.g. `slo.ttft_p90_ms`)."""
