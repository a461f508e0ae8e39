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
    return np.max(uses, axis=0) if uses else np.zeros(len(columns.model_ids))


def rank(
    columns: OptionColumns, spec: DeploymentSpecification, quality: Mapping[str, float | None]
) -> Ranked:
    """`quality`: each model's score (higher is better; None: unknown, ranked as 0)."""
    cost = np.nan_to_num(columns.usd_per_month, nan=np.inf)
    candidates = np.arange(len(cost))
    if spec.constraints.max_monthly_cost_usd is not None:
        # Under a budget, an unknown bill cannot be shown to fit it.
        candidates = candidates[np.isfinite(cost)]
    models = [columns.model_ids[i] for i in candidates]
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
    """Per row: whether no other row beats it on every metric (all minimised)."""
    on_front = np.zeros(len(metrics), dtype=bool)
    best = np.empty((0, metrics.shape[1]))
    for i in np.lexsort(metrics.T[::-1]):
        row = metrics[i]
        beaten = np.all(best <= row, axis=1) & np.any(best != row, axis=1)
        if not beaten.any():
            on_front[i] = True
            best = np.vstack([best, row])
    return on_front


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
