"""Latency against load for one replica of one configuration: the curve a chart draws to show
where the SLO limit sits and how steeply latency rises past it (the knee)."""

from __future__ import annotations

import numpy as np

from planner.capacity import option_query
from planner.catalog_index import Candidate
from planner.predict import Planner
from planner.prediction import Prediction, Source
from planner.requirements import TrafficProfile
from planner.specs import Frozen

PAST_LIMIT = 1.25
"""The curve runs this far past the load asked for, so the knee beyond the limit shows."""


class LoadPoint(Frozen):
    qps: float
    """Requests per second arriving at the one replica."""
    ttft_p90_ms: float | None
    tpot_p90_ms: float | None
    e2e_p95_ms: float | None
    """None where the replica cannot keep up (queues grow without bound) or does not fit."""
    stable: bool
    source: Source


class LoadCurve(Frozen):
    candidate: Candidate
    traffic: TrafficProfile
    up_to_qps: float
    """The load the curve was asked up to (typically the SLO limit of one replica)."""
    fits: bool
    reason: str | None = None
    """Why the configuration does not fit in memory, when it does not."""
    points: list[LoadPoint]
    """Ascending load, evenly spaced from up_to_qps / len(points) to PAST_LIMIT x up_to_qps."""


def load_curve(
    planner: Planner,
    candidate: Candidate,
    traffic: TrafficProfile,
    up_to_qps: float,
    points: int = 16,
) -> LoadCurve:
    """One replica of `candidate` predicted at `points` loads of `traffic`, in one batch.
    Unknown model or GPU names raise KeyError naming them."""
    if up_to_qps <= 0 or points < 2:
        raise ValueError("a load curve needs up_to_qps > 0 and at least 2 points")
    loads = np.linspace(up_to_qps / points, up_to_qps * PAST_LIMIT, points)
    predictions = planner.predict_many(
        [option_query(candidate, traffic, float(qps)) for qps in loads]
    )
    memory = predictions[0].memory
    return LoadCurve(
        candidate=candidate,
        traffic=traffic,
        up_to_qps=up_to_qps,
        fits=memory.fits,
        reason=None if memory.fits else memory.reason,
        points=[_point(float(qps), p) for qps, p in zip(loads, predictions, strict=True)],
    )


def _point(qps: float, prediction: Prediction) -> LoadPoint:
    p = prediction
    # An unstable replica's percentiles describe no steady state: none are shown.
    ttft, tpot, e2e = (p.ttft_ms, p.tpot_ms, p.e2e_ms) if p.stable else (None, None, None)
    return LoadPoint(
        qps=qps,
        ttft_p90_ms=ttft.p90 if ttft else None,
        tpot_p90_ms=tpot.p90 if tpot else None,
        e2e_p95_ms=e2e.p95 if e2e else None,
        stable=p.stable,
        source=p.source,
    )
