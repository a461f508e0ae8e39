"""Ranking the feasible options, on arrays: the Pareto front of cost, latency and quality
first, ordered by the user's priority, preferred models leading; then the rest in the same
order. A search yields thousands of options; ranking reads their columns and the caller
builds only the options it shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from planner.capacity import OptionColumns
from planner.intent import DeploymentSpecification


class Ranked(NamedTuple):
    order: np.ndarray
    """Positions in the search's options, best first (only those that may be shown)."""
    front: np.ndarray
    """Per ranked position: on the Pareto front of cost, latency and quality."""


def latency_use(columns: OptionColumns, spec: DeploymentSpecification) -> np.ndarray:
    """The largest share of an SLO target each option uses at peak (1.0: exactly at it)."""
    slo = spec.slo
    uses = [
        values / target
        for values, target in (
            (columns.ttft_p90_ms, slo.ttft_p90_ms),
            (columns.tpot_p90_ms, slo.tpot_p90_ms),
            (columns.e2e_p95_ms, slo.e2e_p95_ms),
        )
        if target
    ]
    return np.max(uses, axis=0) if uses else np.zeros(len(columns.candidates))


def rank(
    columns: OptionColumns, spec: DeploymentSpecification, quality: Mapping[str, float | None]
) -> Ranked:
    """`quality`: each model's score (higher is better; None: unknown, ranked as 0)."""
    cost = np.nan_to_num(columns.usd_per_month, nan=np.inf)
    candidates = np.arange(len(cost))
    if spec.constraints.max_monthly_cost_usd is not None:
        # Under a budget, an unknown bill cannot be shown to fit it.
        candidates = candidates[np.isfinite(cost)]
    models = [columns.candidates[i].model_id for i in candidates]
    metrics = np.column_stack(
        [
            cost[candidates],
            latency_use(columns, spec)[candidates],
            -np.asarray([quality.get(m) or 0.0 for m in models], dtype=float),
        ]
    )
    front = pareto(metrics)
    c, latency, q = metrics.T
    share = [np.unique(column, return_inverse=True) for column in metrics.T]
    balanced = sum(inverse.reshape(-1) / len(values) for values, inverse in share)
    by = {
        "cost": (c, latency, q),
        "latency": (latency, c, q),
        "accuracy": (q, c, latency),
        "balanced": (balanced, c),
    }[spec.priority]
    preferred = np.asarray([m in spec.preferred_models for m in models], dtype=bool)
    # Unpriced options last whatever the priority: nobody can approve an unknown bill.
    keys = (~preferred, np.isinf(c), ~front, *by)
    order = np.lexsort(keys[::-1])  # stable: ties keep the search's order
    return Ranked(candidates[order], front[order])


def pareto(metrics: np.ndarray) -> np.ndarray:
    """Per row of (cost, latency, quality), all minimised: whether no other row is at least as
    good on all three and better on one.

    Quality takes a few values (one per model), so the rows are swept a quality level at a
    time: a row is beaten by a row as good or better in quality whose cost is at most its own
    and whose latency is lower, or whose latency is at most its own and whose cost or quality
    is strictly better. Each test is the least latency among rows up to a cost (a prefix
    minimum), so the front costs a few sorts, not a comparison of every pair.
    """
    cost, latency, quality = metrics.T
    on_front = np.ones(len(metrics), dtype=bool)
    for level in np.unique(quality):
        here = np.flatnonzero(quality == level)
        c, lat = cost[here], latency[here]
        as_good, better = quality <= level, quality < level
        beaten = _least_latency(cost[as_good], latency[as_good], c, cheaper=False) < lat
        beaten |= _least_latency(cost[as_good], latency[as_good], c, cheaper=True) <= lat
        beaten |= _least_latency(cost[better], latency[better], c, cheaper=False) <= lat
        on_front[here] = ~beaten
    return on_front


def _least_latency(
    cost: np.ndarray, latency: np.ndarray, at: np.ndarray, cheaper: bool
) -> np.ndarray:
    """Per value of `at`: the least latency among the rows costing at most it (less than it,
    `cheaper`); NaN where there is none, which no comparison holds for."""
    if len(cost) == 0:
        return np.full(len(at), np.nan)
    order = np.argsort(cost, kind="stable")
    least = np.minimum.accumulate(latency[order])
    k = np.searchsorted(cost[order], at, side="left" if cheaper else "right")
    return np.where(k > 0, least[np.maximum(k - 1, 0)], np.nan)


def diverse(models: Sequence[str], top: int) -> list[int]:
    """Ranked positions to show: the best of each model first (a list of one model in five
    GPU shapes says less than five models), then the next best."""
    chosen: list[int] = []
    seen: set[str] = set()
    for i, model in enumerate(models):
        if model not in seen:
            chosen.append(i)
            seen.add(model)
        if len(chosen) == top:
            return chosen
    rest = [i for i in range(len(models)) if i not in chosen]
    return chosen + rest[: top - len(chosen)]
