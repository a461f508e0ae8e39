"""Learning from live deployments: what was observed against what was predicted.

Each SLO check of a deployment gives an outcome: the observed TTFT and TPOT p90 at the load
it served, and the model's prediction at that same load. Their ratio, pooled per (model,
GPU, precision), corrects later predictions of that configuration (their source becomes
`observed`); pooled over everything, it is the model's systematic bias.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from planner.prediction import Prediction
from planner.specs import Frozen

MIN_OUTCOMES = 3
"""Checks a configuration needs before its observations correct a prediction."""
MAX_FACTOR = 4.0
"""A correction beyond x4 either way says the deployment is broken, not the model."""


@dataclass(frozen=True)
class Outcome:
    """One check's observed and predicted p90s (ms) for one configuration."""

    deployment_id: str
    model_id: str
    gpu_id: str
    precision: str
    ttft_observed: float
    ttft_predicted: float
    tpot_observed: float
    tpot_predicted: float


def key(model_id: str, gpu_id: str, precision: str) -> str:
    return f"{model_id}|{gpu_id}|{precision}"


class ObservedFactor(Frozen):
    """Observed / predicted, the median over a configuration's outcomes."""

    ttft: float
    tpot: float
    outcomes: int
    deployments: int

    def describe(self) -> str:
        return (
            f"observed on {self.deployments} deployment(s), {self.outcomes} checks: "
            f"TTFT x{self.ttft:.2f}, TPOT x{self.tpot:.2f} of the model's prediction"
        )


def _factor(outcomes: list[Outcome]) -> ObservedFactor:
    def median(ratios: list[float]) -> float:
        return float(np.clip(np.median(ratios), 1 / MAX_FACTOR, MAX_FACTOR))

    return ObservedFactor(
        ttft=median([o.ttft_observed / o.ttft_predicted for o in outcomes]),
        tpot=median([o.tpot_observed / o.tpot_predicted for o in outcomes]),
        outcomes=len(outcomes),
        deployments=len({o.deployment_id for o in outcomes}),
    )


def factors(outcomes: Iterable[Outcome]) -> dict[str, ObservedFactor]:
    """Per configuration with at least MIN_OUTCOMES outcomes."""
    grouped: dict[str, list[Outcome]] = {}
    for o in outcomes:
        grouped.setdefault(key(o.model_id, o.gpu_id, o.precision), []).append(o)
    return {k: _factor(group) for k, group in grouped.items() if len(group) >= MIN_OUTCOMES}


def bias(outcomes: Iterable[Outcome]) -> ObservedFactor | None:
    """The systematic bias over every outcome (None without any)."""
    found = list(outcomes)
    return _factor(found) if found else None


def adjusted(prediction: Prediction, observed: Mapping[str, ObservedFactor]) -> Prediction:
    """The prediction corrected by what its configuration did live, when it has been
    observed enough; an exact measured row stays as measured."""
    q = prediction.query
    factor = observed.get(key(q.model_id, q.gpu_id, prediction.precision))
    if factor is None or prediction.source == "measured" or prediction.ttft_ms is None:
        return prediction
    ttft, tpot, e2e = prediction.ttft_ms, prediction.tpot_ms, prediction.e2e_ms
    assert tpot is not None and e2e is not None
    # E2E is TTFT plus the decode: each part scales by its own factor.
    decode = e2e.mean - ttft.mean
    e2e_factor = (ttft.mean * factor.ttft + decode * factor.tpot) / e2e.mean
    return prediction.model_copy(
        update={
            "ttft_ms": ttft.scaled(factor.ttft),
            "tpot_ms": tpot.scaled(factor.tpot),
            "e2e_ms": e2e.scaled(e2e_factor),
            "source": "observed",
            "observed": factor.describe() + f" (modelled TTFT p90 {ttft.p90:,.0f} ms, "
            f"TPOT p90 {tpot.p90:,.1f} ms)",
        }
    )
