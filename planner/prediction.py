"""What a prediction is asked and what it answers, with the source and uncertainty of each
number."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from planner.calibration import Residuals
from planner.memory import MemoryFit
from planner.percentiles import LatencyStats
from planner.requirements import MAX_TOKENS
from planner.specs import ArrivalProcess, EngineSettings, Frozen, Precision, power_of_two_tp

Source = Literal["measured", "interpolated", "modelled", "observed"]


ARRIVALS: tuple[ArrivalProcess, ...] = ("poisson", "constant", "gamma")


MAX_IN_FLIGHT = 1_000_000
"""More requests in flight than any one replica could hold."""


class PredictionQuery(EngineSettings):
    """One replica of a configuration under one load, with the engine settings it runs."""

    model_id: str
    gpu_id: str
    tp: int = Field(default=1, ge=1)
    precision: Precision | None = None
    """None: the checkpoint's own precision."""
    isl: int = Field(ge=1, le=MAX_TOKENS)
    osl: int = Field(ge=1, le=MAX_TOKENS)
    isl_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    osl_p95: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    concurrency: int | None = Field(default=None, ge=1, le=MAX_IN_FLIGHT)
    """Closed loop: requests always in flight."""
    fixed_lengths: bool = False
    """Closed loop: every request has exactly `isl` and `osl` tokens (a benchmark's fixed
    lengths), so requests that start together finish together and return as a wave."""
    qps: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Open loop: arrivals per second."""
    arrival: ArrivalProcess = "poisson"
    """How open-loop requests arrive: `poisson`, `constant` (evenly spaced) or `gamma`
    (gaps gamma-distributed with shape `burstiness`, as vLLM's benchmark draws them)."""
    burstiness: float = Field(default=1.0, gt=0)
    """Gamma shape of the gaps (vLLM's `--burstiness`): 1 is Poisson, below 1 burstier,
    above 1 more even. Only with arrival `gamma`."""

    @field_validator("tp")
    @classmethod
    def _tp(cls, tp: int) -> int:
        return power_of_two_tp(tp)

    @model_validator(mode="after")
    def _one_load(self) -> PredictionQuery:
        if (self.concurrency is None) == (self.qps is None):
            raise ValueError("give exactly one of concurrency (closed loop) or qps (open loop)")
        if self.burstiness != 1.0 and self.arrival != "gamma":
            raise ValueError("burstiness shapes gamma arrivals: set arrival to gamma")
        return self

    @property
    def arrival_cv2(self) -> float:
        """Squared coefficient of variation of the gaps between arrivals."""
        return {"poisson": 1.0, "constant": 0.0, "gamma": 1.0 / self.burstiness}[self.arrival]


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
    """False when the load exceeds what one replica sustains: the queue grows without bound,
    and no latency is predicted (there is no steady state to describe)."""
    max_sustainable_qps: float | None = None
    """Open loop: the largest arrival rate one replica of this configuration sustains at
    these lengths and arrivals (whatever the latency)."""
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
    extrapolated: str | None = None
    """Why the prediction lies far from any measured neighbour (a GPU or an architecture
    the calibration never saw measured); its band is then the widest one."""
    method: Literal["analytical", "simulated"] = "analytical"
    observed: str | None = None
    """With source `observed`: what live deployments showed, and the model's numbers before."""

    def report(self) -> dict[str, object]:
        """The documented JSON shape of one prediction (CLI `--json` and `POST /predict`)."""
        memory, q = self.memory, self.query
        return {
            "model": q.model_id,
            "gpu": q.gpu_id,
            "tp": q.tp,
            "precision": self.precision,
            "isl": q.isl,
            "osl": q.osl,
            "concurrency": q.concurrency,
            "fixed_lengths": q.fixed_lengths,
            "qps": q.qps,
            "arrival": q.arrival,
            "burstiness": q.burstiness,
            "engine": q.engine.model_dump(),
            "fits": self.fits,
            "stable": self.stable,
            "max_sustainable_qps": self.max_sustainable_qps,
            "ttft_ms": self.ttft_ms.model_dump() if self.ttft_ms else None,
            "tpot_ms": self.tpot_ms.model_dump() if self.tpot_ms else None,
            "e2e_ms": self.e2e_ms.model_dump() if self.e2e_ms else None,
            "output_tokens_per_s": self.output_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "memory": {
                "weights_gb_per_gpu": memory.weights_gb_per_gpu,
                "weights_basis": memory.weights_basis,
                "kv_cache_gb_per_gpu": memory.kv_cache_gb_per_gpu,
                "kv_bytes_per_token_per_gpu": memory.kv_bytes_per_token_per_gpu,
                "state_bytes_per_sequence_per_gpu": memory.state_bytes_per_sequence_per_gpu,
                "kv_capacity_tokens": memory.kv_capacity_tokens,
                "max_concurrent_sequences": memory.max_concurrent_sequences,
                "reason": memory.reason,
            },
            "source": self.source,
            "measured_references": self.measured_references,
            "observed": self.observed,
            "uncertainty": self.uncertainty.model_dump() if self.uncertainty else None,
            "calibration": self.calibration,
            "extrapolated": self.extrapolated,
            "method": self.method,
        }


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
