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

from planner.capacity import (
    CapacityOption,
    CapacityResult,
    CapacitySpec,
    GpuPrice,
    replica_query,
    search,
)
from planner.explain import HIGH_AVAILABILITY, accuracy, left_out, recommendation
from planner.intent import DeploymentSpecification, UseCaseProfile
from planner.predict import Planner
from planner.prediction import Prediction
from planner.ranking import Ranked, diverse, rank
from planner.recommendation import (
    LandscapePoint,
    ModelCard,
    Recommendations,
    option_id,
)

TOP = 3
WIDE_TOP = 5
"""Options shown when the user left essentials open ("I don't know")."""
RELAX_STEPS = (1.25, 1.5, 2.0, 3.0, 5.0)
LANDSCAPE_MAX = 60
"""Points of the cost/latency/quality chart: enough to see the front, small enough for every
session state that carries it."""


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
    found = result.columns.candidates
    models = [found[i].model_id for i in ranked.order]
    shown = diverse(models, top)
    chosen = [result.options[ranked.order[k]] for k in shown]
    trust = accuracy(planner)
    predictions = _at_peak(planner, chosen, spec)
    options = [
        recommendation(o, p, spec, cards, trust) for o, p in zip(chosen, predictions, strict=True)
    ]
    return Recommendations(
        specification=spec,
        options=options,
        feasible=len(ranked.order),
        left_out=left_out(spec, planner, result, ranked, options, filtered),
        relax=[] if options else _relax(spec, planner, eligible, prices, filtered),
        filtered=filtered,
        landscape=_landscape(result, ranked, shown, cards),
    )


def _at_peak(
    planner: Planner, chosen: list[CapacityOption], spec: DeploymentSpecification
) -> list[Prediction]:
    """The full prediction (source, band, references) of each option at its per-replica peak
    load, in one batch: the capacity search keeps only the numbers."""
    if not chosen:
        return []
    return planner.predict_many([replica_query(o, spec.traffic, spec.engine) for o in chosen])


def _landscape(
    result: CapacityResult, ranked: Ranked, shown: list[int], cards: Mapping[str, ModelCard]
) -> list[LandscapePoint]:
    """The recommended options first (so the cap never drops them), then the front, then the
    best-ranked option of each (model, GPU); kept in rank order. Beyond the recommended
    ones only priced options: a chart with a cost axis cannot place an unknown bill."""
    columns = result.columns
    found = columns.candidates
    best_of_pair: dict[tuple[str, str], int] = {}
    for k, i in enumerate(ranked.order):
        best_of_pair.setdefault((found[i].model_id, found[i].gpu_id), k)
    priced = np.isfinite(columns.usd_per_month[ranked.order])
    wanted = shown + [
        k for k in [*np.flatnonzero(ranked.front), *best_of_pair.values()] if priced[k]
    ]
    picked = list(dict.fromkeys(int(k) for k in wanted))[:LANDSCAPE_MAX]
    points = []
    for k in sorted(picked):
        i = ranked.order[k]
        o, card, cost = found[i], cards[found[i].model_id], columns.usd_per_month[i]
        points.append(
            LandscapePoint(
                id=option_id(o),
                model=card.display_name,
                gpu_id=o.gpu_id,
                tp=o.tp,
                replicas=int(columns.replicas_for_peak[i]),
                usd_per_month=None if np.isnan(cost) else float(cost),
                ttft_p90_ms=float(columns.ttft_p90_ms[i]),
                tpot_p90_ms=float(columns.tpot_p90_ms[i]),
                e2e_p95_ms=float(columns.e2e_p95_ms[i]),
                quality=card.quality_score,
                pareto=bool(ranked.front[k]),
            )
        )
    return points


def _capacity(spec: DeploymentSpecification, models: list[str]) -> CapacitySpec:
    spare = spec.reliability_target is not None and spec.reliability_target >= HIGH_AVAILABILITY
    return CapacitySpec(
        traffic=spec.traffic,
        slo=spec.slo,
        constraints=spec.constraints.model_copy(update={"models": models}),
        min_replicas=2 if spare else 1,
        engine=spec.engine,
        prefix_routing=spec.prefix_routing,
        simulate_top=0,
    )


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
