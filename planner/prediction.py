"""What a prediction is asked and what it answers, with the source and uncertainty of each
number."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from planner.calibration import Residuals
from planner.memory import MemoryFit
from planner.percentiles import LatencyStats
from planner.specs import Frozen, Precision

Source = Literal["measured", "interpolated", "modelled", "observed"]


class PredictionQuery(Frozen):
    model_id: str
    gpu_id: str
    tp: int = Field(default=1, ge=1)
    precision: Precision | None = None
    """None: the checkpoint's own precision."""
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)
    isl_p95: int | None = Field(default=None, ge=1)
    osl_p95: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    """Closed loop: requests always in flight."""
    qps: float | None = Field(default=None, gt=0)
    """Open loop: arrivals per second."""
    arrival_cv2: float = Field(default=1.0, gt=0)
    """Squared coefficient of variation of inter-arrival times: 1 Poisson, > 1 bursty."""
    max_num_seqs: int = Field(default=1024, ge=1)
    max_num_batched_tokens: int = Field(default=8192, ge=16)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"

    @model_validator(mode="after")
    def _one_load(self) -> PredictionQuery:
        if (self.concurrency is None) == (self.qps is None):
            raise ValueError("give exactly one of concurrency (closed loop) or qps (open loop)")
        return self


class Uncertainty(Frozen):
    """Where the true mean likely lies (about an 80 % band), and what the band is based on."""

    ttft_low_ms: float
    ttft_high_ms: float
    tpot_low_ms: float
    tpot_high_ms: float
    basis: str


class Prediction(Frozen):
    query: PredictionQuery
    precision: Precision
    fits: bool
    memory: MemoryFit
    stable: bool
    """False when the load exceeds what one replica sustains (queues grow without bound)."""
    ttft_ms: LatencyStats | None = None
    tpot_ms: LatencyStats | None = None
    e2e_ms: LatencyStats | None = None
    output_tokens_per_s: float | None = None
    requests_per_s: float | None = None
    source: Source = "modelled"
    measured_references: list[str] = []
    uncertainty: Uncertainty | None = None
    calibration: str = ""
    """Which calibration level the model used (gpu+precision, gpu, default)."""
    method: Literal["analytical", "simulated"] = "analytical"
    observed: str | None = None
    """With source `observed`: what live deployments showed, and the model's numbers before."""


def band(
    ttft_ms: float, tpot_ms: float, ttft: Residuals | None, tpot: Residuals | None, basis: str
) -> Uncertainty | None:
    if ttft is None or tpot is None:
        return None
    # predicted / measured lies in [p10, p90], so the measured value lies in
    # [predicted / p90, predicted / p10].
    return Uncertainty(
        ttft_low_ms=ttft_ms / ttft.p90_ratio,
        ttft_high_ms=ttft_ms / ttft.p10_ratio,
        tpot_low_ms=tpot_ms / tpot.p90_ratio,
        tpot_high_ms=tpot_ms / tpot.p10_ratio,
        basis=basis,
    )
