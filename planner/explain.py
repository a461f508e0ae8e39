"""Recommendations in words: why each option, how far its numbers can be trusted, and why a
model or GPU the user named is not among the options."""

from __future__ import annotations

from collections.abc import Mapping

from planner.capacity import CapacityOption, CapacityResult
from planner.intent import DeploymentSpecification
from planner.predict import Planner
from planner.prediction import Prediction
from planner.ranking import Ranked
from planner.recommendation import (
    Band,
    LeftOut,
    ModelCard,
    Recommendation,
    option_id,
)

HIGH_AVAILABILITY = 0.99
"""From this availability target on, plans keep a spare replica (one node may fail)."""


def band(prediction: Prediction) -> Band | None:
    """The prediction's band around its mean, as factors that also fit the p90 shown."""
    u, ttft, tpot = prediction.uncertainty, prediction.ttft_ms, prediction.tpot_ms
    if u is None or ttft is None or tpot is None or ttft.mean <= 0 or tpot.mean <= 0:
        return None
    return Band(
        ttft_low=u.ttft_low_ms / ttft.mean,
        ttft_high=u.ttft_high_ms / ttft.mean,
        tpot_low=u.tpot_low_ms / tpot.mean,
        tpot_high=u.tpot_high_ms / tpot.mean,
        basis=u.basis,
    )


def accuracy(planner: Planner) -> str:
    """Where the latencies come from, and how far off such numbers typically are."""
    residuals = planner.calibration.residuals
    errors = ", ".join(
        f"{name.upper()} {residuals[name].mdape:.0%}"
        for name in ("ttft", "tpot")
        if name in residuals
    )
    typical = f" (median error on unseen model/GPU pairs: {errors})" if errors else ""
    return f"Latencies are modelled from measured vLLM runs{typical}."


def recommendation(
    o: CapacityOption,
    prediction: Prediction,
    spec: DeploymentSpecification,
    cards: Mapping[str, ModelCard],
    accuracy: str,
) -> Recommendation:
    card = cards[o.model_id]
    slo = spec.slo
    margin = {
        name: round(1 - value / target, 3)
        for name, value, target in (
            ("ttft_p90", o.ttft_ms.p90, slo.ttft_p90_ms),
            ("tpot_p90", o.tpot_ms.p90, slo.tpot_p90_ms),
            ("e2e_p95", o.e2e_ms.p95, slo.e2e_p95_ms),
        )
        if target
    }
    shape = f"{o.replicas_for_peak} x {o.tp} x {o.gpu_id} ({o.precision})"
    if spec.reliability_target is not None and spec.reliability_target >= HIGH_AVAILABILITY:
        shape += f", at least 2 replicas for {spec.reliability_target:.2%} availability"
    if o.usd_per_month is not None and o.price is not None:
        cost = (
            f"${o.usd_per_month:,.0f}/month at peak replicas (${o.usd_per_month_steady or 0:,.0f} "
            f"autoscaled to steady load; {o.price.provider} {o.price.pricing}, "
            f"${o.price.usd_per_gpu_hour:.2f}/GPU-hour on {o.price.instance_type} as of "
            f"{o.price.as_of})"
        )
    else:
        cost = "price unknown (no quote for this GPU)"
    latency = "; ".join(
        f"{name.replace('_', ' ').upper()} {value:,.0f} ms vs {target:,.0f} ms "
        f"({margin[name]:.0%} margin)"
        for name, value, target in (
            ("ttft_p90", o.ttft_ms.p90, slo.ttft_p90_ms),
            ("tpot_p90", o.tpot_ms.p90, slo.tpot_p90_ms),
            ("e2e_p95", o.e2e_ms.p95, slo.e2e_p95_ms),
        )
        if target
    )
    quality = (
        f"MMLU-Pro {card.quality_score:g}" if card.quality_score is not None else "MMLU-Pro unknown"
    )
    why = {
        "cost": "the cheapest option that meets every SLO",
        "latency": "the most headroom under the latency SLOs",
        "accuracy": "the highest-quality model that meets every SLO",
        "balanced": "a balance of cost, latency headroom and quality",
    }[spec.priority]
    rationale = (
        f"{card.display_name} on {shape}: {why}. Cost: {cost}. At the peak of "
        f"{spec.traffic.peak_qps:.1f} QPS: {latency}; one replica sustains "
        f"{o.max_qps_per_replica:.2f} QPS (limited by {o.binding_slo}){_hits(o, spec)}. "
        f"Quality: {quality}. {accuracy}"
    )
    return Recommendation(
        id=option_id(o),
        option=o,
        display_name=card.display_name,
        quality_score=card.quality_score,
        slo_margin=margin,
        rationale=rationale,
        source=prediction.source,
        uncertainty=band(prediction),
        references=prediction.measured_references,
        observed=prediction.observed,
    )


def _hits(o: CapacityOption, spec: DeploymentSpecification) -> str:
    """The prefix-cache hits the option counts on, and what routing by prefix would add."""
    wanted = spec.engine.prefix_cache_hit_rate
    if not wanted:
        return ""
    if o.prefix_cache_hit_rate >= wanted:
        return f" with {wanted:.0%} of prompt tokens from the prefix cache"
    return (
        f" with {o.prefix_cache_hit_rate:.0%} of prompt tokens from the prefix cache: routing "
        f"blind to prefixes finds the {wanted:.0%} reused on one replica in "
        f"{o.replicas_for_peak}; prefix-aware routing (llm-d) would find it all"
    )


def left_out(
    spec: DeploymentSpecification,
    planner: Planner,
    result: CapacityResult,
    ranked: Ranked,
    options: list[Recommendation],
    filtered: Mapping[str, str],
) -> list[LeftOut]:
    shown = {r.option.model_id for r in options}
    shown_gpus = {r.option.gpu_id for r in options}
    left: list[LeftOut] = []
    for model in spec.preferred_models:
        if model in shown:
            continue
        if model not in planner.models:
            left.append(LeftOut(name=model, kind="model", reason="not in the catalog"))
        elif model in filtered:
            left.append(LeftOut(name=model, kind="model", reason=filtered[model]))
        else:
            left.append(
                LeftOut(name=model, kind="model", reason=why_not(model, None, result, ranked))
            )
    for gpu in spec.constraints.gpus or ():
        if gpu not in shown_gpus:
            left.append(LeftOut(name=gpu, kind="gpu", reason=why_not(None, gpu, result, ranked)))
    return left


def why_not(model: str | None, gpu: str | None, result: CapacityResult, ranked: Ranked) -> str:
    def matches(model_id: str, gpu_id: str) -> bool:
        return (model is None or model_id == model) and (gpu is None or gpu_id == gpu)

    found = result.columns.candidates
    feasible = (i for i in ranked.order if matches(found[i].model_id, found[i].gpu_id))
    first = next(feasible, None)
    if first is not None:
        best = result.options[first]
        cost = (
            f"${best.usd_per_month:,.0f}/month"
            if best.usd_per_month is not None
            else "price unknown"
        )
        return (
            f"feasible but ranked lower: its best option is {best.replicas_for_peak} x "
            f"{best.tp} x {best.gpu_id} with {best.model_id} ({cost})"
        )
    reasons = [i.reason for i in result.infeasible if matches(i.model_id, i.gpu_id)]
    if not reasons:
        return "no feasible configuration within the constraints"
    # The reason most configurations share says the most.
    return max(set(reasons), key=reasons.count)
