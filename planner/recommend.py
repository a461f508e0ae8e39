"""From a specification to a short list of options Preflight can defend.

Models are filtered by what the use case and the user require (task, context, licence,
languages, quality, exclusions); the capacity search sizes and prices every feasible
(model, GPU, TP, precision); the options on the Pareto front of cost, latency and quality
are ranked by the user's priority; and each comes with its reasons in words. A model or
GPU the user named that did not make it is explained, and when nothing is feasible the
answer says what to relax, and by how much.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from planner.capacity import (
    CapacityOption,
    CapacityResult,
    CapacitySpec,
    GpuPrice,
    option_query,
    search,
)
from planner.intent import DeploymentSpecification, UseCaseProfile
from planner.predict import Planner
from planner.prediction import Prediction, Source
from planner.ranking import Ranked, diverse, rank
from planner.specs import Frozen

TOP = 3
WIDE_TOP = 5
"""Options shown when the user left essentials open ("I don't know")."""
RELAX_STEPS = (1.25, 1.5, 2.0, 3.0, 5.0)
LANDSCAPE_MAX = 60
"""Points of the cost/latency/quality chart: enough to see the front, small enough for every
session state that carries it."""


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
    landscape: list[LandscapePoint] = []
    """Feasible options to chart: the recommended ones, the Pareto front and the best of each
    (model, GPU), at most LANDSCAPE_MAX, in rank order."""


def eligibility(
    card: ModelCard,
    spec: DeploymentSpecification,
    use_case: UseCaseProfile,
    approved: frozenset[str] | None = None,
) -> str | None:
    """Why `card` cannot serve `spec` (None: it can). `approved`: the models a cluster
    admin allows (None: all)."""
    if approved is not None and card.id not in approved:
        return "not on the approved-models list of your cluster admins"
    missing = sorted(set(use_case.tasks) - set(card.tasks))
    if missing:
        return f"not made for {', '.join(missing)} (its tasks: {', '.join(card.tasks)})"
    if card.max_context_tokens < spec.max_context_tokens:
        return (
            f"context window {card.max_context_tokens:,} tokens, below the "
            f"{spec.max_context_tokens:,} needed"
        )
    if spec.licenses is not None:
        permissive = "permissive" in spec.licenses and card.license_permissive
        if not permissive and card.license not in spec.licenses:
            return f"licence {card.license} is not one of {', '.join(spec.licenses)}"
    languages = sorted(set(spec.languages) - set(card.languages))
    if languages:
        return f"does not support {', '.join(languages)}"
    if spec.quality_threshold is not None:
        if card.quality_score is None:
            return "no published MMLU-Pro score to check the quality threshold against"
        if card.quality_score < spec.quality_threshold:
            return (
                f"MMLU-Pro {card.quality_score:g} is below the threshold {spec.quality_threshold:g}"
            )
    if card.id in spec.constraints.excluded_models:
        return "excluded by you"
    return None


def recommend(
    spec: DeploymentSpecification,
    planner: Planner,
    cards: Mapping[str, ModelCard],
    use_cases: Mapping[str, UseCaseProfile],
    prices: Sequence[GpuPrice],
    top: int = TOP,
    approved: frozenset[str] | None = None,
) -> Recommendations:
    use_case = use_cases[spec.use_case]
    filtered = {
        card.id: reason
        for card in cards.values()
        if card.id in planner.models and (reason := eligibility(card, spec, use_case, approved))
    }
    pinned = spec.constraints.models
    eligible = sorted(
        m
        for m in planner.models
        if m in cards and m not in filtered and (pinned is None or m in pinned)
    )
    result = search(planner, _capacity(spec, eligible), prices)
    ranked = rank(result.columns, spec, {m: c.quality_score for m, c in cards.items()})
    models = [result.columns.model_ids[i] for i in ranked.order]
    shown = diverse(models, top)
    chosen = [result.options[ranked.order[k]] for k in shown]
    accuracy = _accuracy(planner)
    predictions = _at_peak(planner, chosen, spec)
    options = [
        _recommendation(o, p, spec, cards, accuracy)
        for o, p in zip(chosen, predictions, strict=True)
    ]
    return Recommendations(
        specification=spec,
        options=options,
        feasible=len(ranked.order),
        left_out=_left_out(spec, planner, result, ranked, options, filtered),
        relax=[] if options else _relax(spec, planner, eligible, prices, filtered),
        filtered=filtered,
        landscape=_landscape(result, ranked, shown, cards),
    )


def option_id(o: CapacityOption) -> str:
    return f"{o.model_id}@{o.gpu_id}:tp{o.tp}:{o.precision}"


def _at_peak(
    planner: Planner, chosen: list[CapacityOption], spec: DeploymentSpecification
) -> list[Prediction]:
    """The full prediction (source, band, references) of each option at its per-replica peak
    load, in one batch: the capacity search keeps only the numbers."""
    if not chosen:
        return []
    t = spec.traffic
    return planner.predict_many(
        [option_query(o, t, t.peak_qps / o.replicas_for_peak, spec.engine) for o in chosen]
    )


def _band(prediction: Prediction) -> Band | None:
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


def _landscape(
    result: CapacityResult, ranked: Ranked, shown: list[int], cards: Mapping[str, ModelCard]
) -> list[LandscapePoint]:
    """The recommended options first (so the cap never drops them), then the front, then the
    best-ranked option of each (model, GPU); kept in rank order. Beyond the recommended
    ones only priced options: a chart with a cost axis cannot place an unknown bill."""
    columns = result.columns
    best_of_pair: dict[tuple[str, str], int] = {}
    for k, i in enumerate(ranked.order):
        best_of_pair.setdefault((columns.model_ids[i], columns.gpu_ids[i]), k)
    priced = np.isfinite(columns.usd_per_month[ranked.order])
    wanted = shown + [
        k for k in [*np.flatnonzero(ranked.front), *best_of_pair.values()] if priced[k]
    ]
    picked = list(dict.fromkeys(int(k) for k in wanted))[:LANDSCAPE_MAX]
    return [
        _point(result.options[ranked.order[k]], bool(ranked.front[k]), cards)
        for k in sorted(picked)
    ]


def _point(o: CapacityOption, pareto: bool, cards: Mapping[str, ModelCard]) -> LandscapePoint:
    card = cards[o.model_id]
    return LandscapePoint(
        id=option_id(o),
        model=card.display_name,
        gpu_id=o.gpu_id,
        tp=o.tp,
        replicas=o.replicas_for_peak,
        usd_per_month=o.usd_per_month,
        ttft_p90_ms=o.ttft_ms.p90,
        tpot_p90_ms=o.tpot_ms.p90,
        e2e_p95_ms=o.e2e_ms.p95,
        quality=card.quality_score,
        pareto=pareto,
    )


HIGH_AVAILABILITY = 0.99
"""From this availability target on, plans keep a spare replica (one node may fail)."""


def _capacity(spec: DeploymentSpecification, models: list[str]) -> CapacitySpec:
    spare = spec.reliability_target is not None and spec.reliability_target >= HIGH_AVAILABILITY
    return CapacitySpec(
        traffic=spec.traffic,
        slo=spec.slo,
        constraints=spec.constraints.model_copy(update={"models": models}),
        min_replicas=2 if spare else 1,
        engine=spec.engine,
        simulate_top=0,
    )


def _accuracy(planner: Planner) -> str:
    """Where the latencies come from, and how far off such numbers typically are."""
    residuals = planner.calibration.residuals
    errors = ", ".join(
        f"{name.upper()} {residuals[name].mdape:.0%}"
        for name in ("ttft", "tpot")
        if name in residuals
    )
    typical = f" (median error on unseen model/GPU pairs: {errors})" if errors else ""
    return f"Latencies are modelled from measured vLLM runs{typical}."


def _recommendation(
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
        f"{o.max_qps_per_replica:.2f} QPS (limited by {o.binding_slo}). Quality: {quality}. "
        f"{accuracy}"
    )
    return Recommendation(
        id=option_id(o),
        option=o,
        display_name=card.display_name,
        quality_score=card.quality_score,
        slo_margin=margin,
        rationale=rationale,
        source=prediction.source,
        uncertainty=_band(prediction),
        references=prediction.measured_references,
        observed=prediction.observed,
    )


def _left_out(
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
                LeftOut(name=model, kind="model", reason=_why_not(model, None, result, ranked))
            )
    for gpu in spec.constraints.gpus or ():
        if gpu not in shown_gpus:
            left.append(LeftOut(name=gpu, kind="gpu", reason=_why_not(None, gpu, result, ranked)))
    return left


def _why_not(model: str | None, gpu: str | None, result: CapacityResult, ranked: Ranked) -> str:
    def matches(model_id: str, gpu_id: str) -> bool:
        return (model is None or model_id == model) and (gpu is None or gpu_id == gpu)

    columns = result.columns
    feasible = (i for i in ranked.order if matches(columns.model_ids[i], columns.gpu_ids[i]))
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


def _relax(
    spec: DeploymentSpecification,
    planner: Planner,
    eligible: list[str],
    prices: Sequence[GpuPrice],
    filtered: Mapping[str, str],
) -> list[str]:
    """The smallest single relaxation that makes something feasible, per kind."""
    advice: list[str] = []
    if not eligible:
        advice.append(
            "no model passes the requirements: "
            + "; ".join(sorted({reason.split(" (")[0] for reason in filtered.values()})[:4])
        )
        return advice

    def feasible(candidate: DeploymentSpecification) -> CapacityResult:
        return search(planner, _capacity(candidate, eligible), prices)

    c = spec.constraints
    if c.max_monthly_cost_usd is not None:
        unbudgeted = feasible(
            spec.model_copy(
                update={"constraints": c.model_copy(update={"max_monthly_cost_usd": None})}
            )
        )
        costs = unbudgeted.columns.usd_per_month
        if np.isfinite(costs).any():
            budget = c.max_monthly_cost_usd
            advice.append(
                f"raise the budget to ${np.nanmin(costs):,.0f}/month (from ${budget:,.0f})"
            )
    for factor in RELAX_STEPS:
        slo = spec.slo.model_copy(
            update={
                name: value * factor
                for name, value in spec.slo.model_dump().items()
                if value is not None
            }
        )
        if feasible(spec.model_copy(update={"slo": slo})).options:
            advice.append(
                f"relax the latency targets by {factor:g}x: TTFT p90 {slo.ttft_p90_ms:,.0f} ms, "
                f"TPOT p90 {slo.tpot_p90_ms:,.0f} ms, E2E p95 {slo.e2e_p95_ms:,.0f} ms"
            )
            break
    if c.gpus is not None or c.excluded_gpus or c.max_tp < 8:
        wider = c.model_copy(update={"gpus": None, "excluded_gpus": [], "max_tp": 8})
        options = feasible(spec.model_copy(update={"constraints": wider})).options
        if options:
            best = options[0]
            advice.append(f"allow other GPUs: {best.tp} x {best.gpu_id} would serve it")
    for factor in (0.5, 0.25, 0.1):
        traffic = spec.traffic.model_copy(
            update={
                "steady_qps": spec.traffic.steady_qps * factor,
                "peak_qps": spec.traffic.peak_qps * factor,
            }
        )
        if feasible(spec.model_copy(update={"traffic": traffic})).options:
            advice.append(f"plan for less load: {traffic.peak_qps:.1f} QPS at peak fits")
            break
    return advice or ["nothing in the catalog meets these requirements, even relaxed"]
