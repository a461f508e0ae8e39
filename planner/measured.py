"""Measured serving points, and how they override or correct the model's predictions.

Order of trust: a measured row with the same configuration wins (source "measured"); with
measured rows at the same lengths on both sides of the asked load, the model is corrected
by the measured/model ratio interpolated in log(load) (source "interpolated"); otherwise the
model's prediction stands (source "modelled").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from planner.calibration import Residuals
from planner.prediction import Prediction, PredictionQuery, Uncertainty, band
from planner.specs import EngineSettings, Frozen, Precision

ConfigKey = tuple[str, str, str, int, int, int]


class MeasuredPoint(Frozen):
    """One measurement of one replica under one load: closed loop (`concurrency` requests in
    flight) or open loop (`qps` arrivals per second)."""

    model_id: str
    gpu_id: str
    precision: Precision
    tp: int
    isl: int
    osl: int
    concurrency: int | None = None
    qps: float | None = None
    arrival_cv2: float = 1.0
    """Open loop: squared CV of the gaps between arrivals (1 Poisson, 0 constant)."""
    num_prompts: int | None = None
    """Requests in the run, where the source states it."""
    ttft_ms: float
    tpot_ms: float
    statistic: Literal["mean", "median"] = "mean"
    """What TTFT and TPOT are over the run's requests (the mean where the source gives it)."""
    ttft_p90_ms: float | None = None
    tpot_p50_ms: float | None = None
    """The percentiles an open loop is judged by, where the source prints them."""
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    """The run's engine settings where the source states them (else vLLM's defaults)."""
    reference: str
    """Where it came from (the benchmark row id)."""
    fixed_lengths: bool = False
    """Every request had exactly the stated lengths (a closed loop of them moves in waves)."""
    dp: int | None = 1
    """Attention data-parallel degree of the replica (None: not stated). Only dp 1 is a
    replica the planner models: the others are left out of fits and look-ups."""

    @property
    def closed(self) -> bool:
        return self.concurrency is not None

    @property
    def engine(self) -> EngineSettings:
        """The engine settings the run states; vLLM's defaults for the rest."""
        stated = {
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "gpu_memory_utilization": self.gpu_memory_utilization,
        }
        return EngineSettings(
            **{name: value for name, value in stated.items() if value is not None}
        )

    @property
    def residence_s(self) -> float:
        """A request's measured time in the system: its first token, then its decode."""
        return ((self.osl - 1) * self.tpot_ms + self.ttft_ms) / 1e3

    def query(self) -> PredictionQuery:
        """The prediction query this run answers: its configuration, load, arrivals and the
        engine settings it states."""
        arrival, burstiness = {0.0: ("constant", 1.0), 1.0: ("poisson", 1.0)}.get(
            self.arrival_cv2, ("gamma", 1.0 / self.arrival_cv2)
        )
        return PredictionQuery.model_validate(
            {
                "model_id": self.model_id,
                "gpu_id": self.gpu_id,
                "tp": self.tp,
                "precision": self.precision,
                "isl": self.isl,
                "osl": self.osl,
                "concurrency": self.concurrency,
                "fixed_lengths": self.fixed_lengths,
                "qps": self.qps,
                "arrival": "poisson" if self.closed else arrival,
                "burstiness": 1.0 if self.closed else burstiness,
            }
            | dict(self.engine)
        )


def in_flight(point: MeasuredPoint) -> int:
    """A closed-loop point's load (the index holds no others)."""
    assert point.concurrency is not None
    return point.concurrency


class MeasuredIndex:
    """Measured points by configuration and lengths, sorted by load."""

    def __init__(self, points: Sequence[MeasuredPoint]) -> None:
        grouped: dict[ConfigKey, list[MeasuredPoint]] = defaultdict(list)
        for p in points:
            if p.dp != 1 or p.concurrency is None:
                continue  # a wider replica than the key names, or an open loop
            grouped[(p.model_id, p.gpu_id, p.precision, p.tp, p.isl, p.osl)].append(p)
        self._by_config = {k: sorted(v, key=in_flight) for k, v in grouped.items()}

    def _nearby(
        self, q: PredictionQuery, precision: str
    ) -> tuple[list[MeasuredPoint], list[MeasuredPoint]]:
        """Rows at exactly this load, else the nearest rows below and above it."""
        if q.concurrency is None:
            return [], []
        points = self._by_config.get((q.model_id, q.gpu_id, precision, q.tp, q.isl, q.osl), [])
        exact = [p for p in points if in_flight(p) == q.concurrency]
        if exact:
            return exact, []
        below = [p for p in points if in_flight(p) < q.concurrency]
        above = [p for p in points if in_flight(p) > q.concurrency]
        return [], [below[-1], above[0]] if below and above else []

    def brackets(self, q: PredictionQuery, precision: str) -> list[PredictionQuery]:
        """The queries at the measured loads that interpolating `q` needs the model at."""
        _, around = self._nearby(q, precision)
        return [q.model_copy(update={"concurrency": p.concurrency}) for p in around]

    def apply(
        self,
        prediction: Prediction,
        modelled_at: Mapping[PredictionQuery, Prediction],
        residuals: dict[str, Residuals],
    ) -> Prediction:
        """The prediction, replaced or corrected by what was measured nearby; `modelled_at`
        holds the model's predictions at the queries `brackets` asked for."""
        q = prediction.query
        if not prediction.fits or prediction.ttft_ms is None:
            return prediction
        assert prediction.tpot_ms is not None and prediction.e2e_ms is not None
        exact, around = self._nearby(q, prediction.precision)
        if exact:
            used = exact
            ttft_ratio = float(np.mean([p.ttft_ms for p in exact])) / prediction.ttft_ms.mean
            tpot_ratio = float(np.mean([p.tpot_ms for p in exact])) / prediction.tpot_ms.mean
        else:
            if not around or q.concurrency is None:
                return prediction
            used = around
            modelled = [modelled_at[b] for b in self.brackets(q, prediction.precision)]
            low, high = math.log(in_flight(used[0])), math.log(in_flight(used[1]))
            weight = (math.log(q.concurrency) - low) / (high - low)

            def blend(measured: list[float], model: list[float]) -> float:
                logs = [math.log(a / b) for a, b in zip(measured, model, strict=True)]
                return math.exp(logs[0] + weight * (logs[1] - logs[0]))

            ttft_ratio = blend(
                [p.ttft_ms for p in used], [m.ttft_ms.mean for m in modelled if m.ttft_ms]
            )
            tpot_ratio = blend(
                [p.tpot_ms for p in used], [m.tpot_ms.mean for m in modelled if m.tpot_ms]
            )
        ttft = prediction.ttft_ms.scaled(ttft_ratio)
        tpot = prediction.tpot_ms.scaled(tpot_ratio)
        e2e_ratio = (ttft.mean + (q.osl - 1) * tpot.mean) / prediction.e2e_ms.mean
        uncertainty: Uncertainty | None
        if exact:
            uncertainty = Uncertainty(
                ttft_low_ms=ttft.mean,
                ttft_high_ms=ttft.mean,
                tpot_low_ms=tpot.mean,
                tpot_high_ms=tpot.mean,
                basis="measured row(s) with this exact configuration",
            )
        else:
            uncertainty = band(
                ttft.mean,
                tpot.mean,
                residuals.get("ttft_interpolated"),
                residuals.get("tpot_interpolated"),
                "interpolation residuals, each measured row left out in turn",
            )
        return prediction.model_copy(
            update={
                "ttft_ms": ttft,
                "tpot_ms": tpot,
                "e2e_ms": prediction.e2e_ms.scaled(e2e_ratio),
                "requests_per_s": (prediction.requests_per_s or 0) / e2e_ratio,
                "output_tokens_per_s": (prediction.output_tokens_per_s or 0) / e2e_ratio,
                "source": "measured" if exact else "interpolated",
                "measured_references": [p.reference for p in used],
                "uncertainty": uncertainty,
                "extrapolated": None,
            }
        )
