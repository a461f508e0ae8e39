"""From an intent (what was said) to a specification (what to plan for), with every gap
filled from the use case's template and marked as a default.

The traffic model lives here, in one place, and its arithmetic is shown to the user:

    active users  = users x active share
    steady QPS    = active users x requests per active user per minute / 60
    peak QPS      = steady QPS x peak factor
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from planner.capacity import HOURS_PER_MONTH
from planner.intent import (
    BudgetConstraint,
    DeploymentIntent,
    DeploymentSpecification,
    GpuConstraints,
    TrafficIntent,
    UseCaseProfile,
)
from planner.requirements import SearchConstraints, SLOTargets, TrafficProfile
from planner.specs import EngineSettings

T = TypeVar("T")
DEFAULT_USE_CASE = "chatbot"
DEFAULT_USERS = 100
"""Users assumed when nothing says how many (a team's pilot)."""


class SpecificationError(ValueError):
    """The intent names something the catalog does not know."""


def traffic_from_users(users: int, use_case: UseCaseProfile) -> tuple[float, float, str]:
    """Steady and peak QPS for `users` people, and the arithmetic in words."""
    active = users * use_case.active_user_ratio
    steady = active * use_case.requests_per_active_user_per_min / 60
    peak = steady * use_case.peak_factor
    formula = (
        f"{users:,} users x {use_case.active_user_ratio:g} active = {active:,.0f} active users; "
        f"x {use_case.requests_per_active_user_per_min:g} requests/min / 60 = {steady:.2f} QPS "
        f"steady; x {use_case.peak_factor:g} peak factor ({use_case.burstiness} burstiness) = "
        f"{peak:.2f} QPS at peak"
    )
    return steady, peak, formula


def specify(
    intent: DeploymentIntent,
    use_cases: Mapping[str, UseCaseProfile],
    gpu_vendors: Mapping[str, str] | None = None,
) -> DeploymentSpecification:
    """Fill every gap of `intent`; `defaults` lists what was not the user's."""
    defaults: list[str] = []

    def pick(name: str, given: T | None, fallback: T) -> T:
        if given is not None:
            return given
        defaults.append(name)
        return fallback

    use_case_id = pick("use_case", intent.use_case, DEFAULT_USE_CASE)
    if use_case_id not in use_cases:
        known = ", ".join(sorted(use_cases))
        raise SpecificationError(f"unknown use case '{use_case_id}'; known: {known}")
    template = use_cases[use_case_id]
    t = intent.traffic or TrafficIntent()
    prompt_mean = pick(
        "traffic.prompt_tokens_mean", t.prompt_tokens_mean, template.prompt_tokens_mean
    )
    output_mean = pick(
        "traffic.output_tokens_mean", t.output_tokens_mean, template.output_tokens_mean
    )
    prompt_p95 = pick("traffic.prompt_tokens_p95", t.prompt_tokens_p95, template.prompt_tokens_p95)
    output_p95 = pick("traffic.output_tokens_p95", t.output_tokens_p95, template.output_tokens_p95)
    prompt_p95, output_p95 = max(prompt_p95, prompt_mean), max(output_p95, output_mean)
    burstiness = pick("traffic.burstiness", t.burstiness, template.burstiness)
    steady, peak, formula = _load(intent, t, template, defaults)
    slo = SLOTargets(
        ttft_p90_ms=pick("slo.ttft_p90_ms", intent.target_ttft_p90_ms, template.ttft_p90_ms),
        tpot_p90_ms=pick("slo.tpot_p90_ms", intent.target_tpot_p90_ms, template.tpot_p90_ms),
        e2e_p95_ms=pick("slo.e2e_p95_ms", intent.target_e2e_latency_p95_ms, template.e2e_p95_ms),
    )
    budget = intent.budget or BudgetConstraint()
    monthly_caps = [
        cap
        for cap in (
            budget.max_monthly_cost_usd,
            budget.max_hourly_cost_usd * HOURS_PER_MONTH if budget.max_hourly_cost_usd else None,
        )
        if cap is not None
    ]
    gpu = intent.gpu_constraints or GpuConstraints()
    excluded_gpus = set(intent.excluded_gpus or ())
    allowed_gpus = set(intent.available_gpus) if intent.available_gpus else None
    if gpu_vendors is not None and (gpu.vendors or gpu.excluded_vendors):
        for gpu_id, vendor in gpu_vendors.items():
            if (gpu.vendors and vendor not in gpu.vendors) or vendor in (
                gpu.excluded_vendors or ()
            ):
                excluded_gpus.add(gpu_id)
    constraints = SearchConstraints(
        models=sorted(intent.pinned_models) if intent.pinned_models else None,
        excluded_models=sorted(intent.excluded_models or ()),
        gpus=sorted(allowed_gpus) if allowed_gpus is not None else None,
        excluded_gpus=sorted(excluded_gpus),
        max_tp=gpu.max_gpus_per_replica or 8,
        max_monthly_cost_usd=min(monthly_caps) if monthly_caps else None,
    )
    context = pick(
        "max_context_tokens",
        intent.max_context_tokens,
        max(template.min_context_tokens, prompt_p95 + output_p95),
    )
    return DeploymentSpecification(
        use_case=use_case_id,
        use_case_description=intent.use_case_description,
        subject_matter=intent.subject_matter,
        priority=pick("priority", intent.priority, "balanced"),
        concurrent_users=intent.concurrent_users,
        traffic=TrafficProfile(
            prompt_tokens_mean=prompt_mean,
            prompt_tokens_p95=prompt_p95,
            output_tokens_mean=output_mean,
            output_tokens_p95=output_p95,
            steady_qps=steady,
            peak_qps=peak,
            burstiness=burstiness,
        ),
        traffic_formula=formula,
        slo=slo,
        target_throughput_rps=intent.target_throughput_rps,
        budget=budget,
        constraints=constraints,
        preferred_models=sorted(intent.preferred_models or ()),
        pinned_models=intent.pinned_models,
        quality_threshold=intent.quality_threshold,
        reliability_target=intent.reliability_target,
        max_context_tokens=context,
        languages=sorted(intent.languages or ()),
        licenses=intent.licenses,
        gpu_constraints=gpu,
        engine=intent.engine or EngineSettings(),
        prefix_routing=bool(intent.prefix_routing),
        defaults=sorted(defaults),
    )


def _load(
    intent: DeploymentIntent, t: TrafficIntent, template: UseCaseProfile, defaults: list[str]
) -> tuple[float, float, str]:
    """Steady and peak QPS from what was said, most direct first, and how."""
    factor = template.peak_factor
    throughput = intent.target_throughput_rps
    if t.steady_qps and t.peak_qps:
        return t.steady_qps, max(t.peak_qps, t.steady_qps), "steady and peak QPS as given"
    if t.peak_qps:
        steady = t.peak_qps / factor
        return (
            steady,
            t.peak_qps,
            (
                f"peak {t.peak_qps:g} QPS as given; steady = peak / {factor:g} peak factor "
                f"= {steady:.2f} QPS"
            ),
        )
    rate = intent.expected_qps or t.steady_qps
    if rate:
        peak = rate * factor
        return (
            rate,
            peak,
            (
                f"{rate:g} QPS as given; peak = x {factor:g} peak factor "
                f"({template.burstiness} burstiness) = {peak:.2f} QPS"
            ),
        )
    if throughput:
        return throughput, throughput, f"the throughput target, {throughput:g} requests/s"
    if t.concurrency:
        # Little's law: requests in flight = rate x time each spends in the system.
        seconds = template.e2e_p95_ms / 1000
        steady = t.concurrency / seconds
        return (
            steady,
            steady * factor,
            (
                f"{t.concurrency} requests in flight / {seconds:g} s each (the E2E target) = "
                f"{steady:.2f} QPS steady; x {factor:g} peak factor = {steady * factor:.2f} QPS"
            ),
        )
    users = intent.concurrent_users
    if users is None:
        users = DEFAULT_USERS
        defaults.append("concurrent_users")
    steady, peak, formula = traffic_from_users(users, template)
    defaults.extend(["traffic.steady_qps", "traffic.peak_qps"])
    return steady, peak, formula
