"""The performance model's free parameters, and the stored fit they come from.

Step parameters are fitted per GPU and per (GPU, precision) on measured vLLM rows; a
query takes the most specific fit there is, then the GPU's, then the pooled default.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from planner.specs import Frozen

CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "calibration.json"
REFERENCE_BATCH = 32.0
"""Requests in flight at which an architecture's TPOT correction is its level alone."""


def decode_correction(
    level: ArrayLike, slope: ArrayLike, in_flight: ArrayLike
) -> NDArray[np.float64]:
    """An architecture's TPOT multiplier with `in_flight` requests: level x (in flight / 32)
    ^ slope (see `CalibrationSet.model_factors` and `model_slopes`)."""
    return np.asarray(level * (np.maximum(in_flight, 1.0) / REFERENCE_BATCH) ** np.asarray(slope))


class StepCalibration(Frozen):
    compute_efficiency: float = Field(default=0.55, gt=0, le=1)
    """Achieved share of the datasheet matmul peak."""
    moe_efficiency: float = Field(default=0.3, gt=0, le=1)
    """Share of the dense matmul rate that grouped MoE expert GEMMs reach."""
    memory_efficiency: float = Field(default=0.75, gt=0, le=1)
    """Achieved share of the datasheet HBM bandwidth."""
    link_efficiency: float = Field(default=0.7, gt=0, le=1)
    """Achieved share of the GPU-to-GPU link bandwidth in all-reduces."""
    step_overhead_ms: float = Field(default=2.0, ge=0)
    """Scheduler and sampling time per engine step."""
    kernel_overhead_us: float = Field(default=5.0, ge=0)
    """Cost per kernel of a step that replays a CUDA graph (launch gaps, tiny kernels)."""
    eager_kernel_overhead_us: float = Field(default=60.0, ge=0)
    """Launch and Python cost per kernel of a step run eagerly (too large for a graph)."""
    allreduce_latency_us: float = Field(default=12.0, ge=0)
    """Fixed cost of one tensor-parallel all-reduce."""
    request_overhead_ms: float = Field(default=20.0, ge=0)
    """Request path outside the engine steps: HTTP, tokenisation, first detokenisation."""


class ServingCalibration(Frozen):
    first_wave_weight: float = Field(default=0.1, ge=0, le=1)
    """Share of a closed-loop benchmark's requests that start together in its first wave:
    the measured rows were taken with 10 x concurrency requests per run (InferenceX's
    benchmark_serving protocol), the first `concurrency` of them released at once."""
    kv_output_share: float = Field(default=0.5, ge=0, le=1)
    """Share of the output a running sequence holds in KV cache on average, for admission."""
    wave_spread: float = Field(default=0.2, gt=0, le=1)
    """Share of the decode time over which a closed loop's wave of requests finishes (and
    its successors arrive): 0.2 for output lengths uniform in [0.8, 1] x OSL."""


class Residuals(Frozen):
    """Cross-validated log-ratio residuals (predicted / measured) of one metric."""

    count: int
    mdape: float
    p10_ratio: float
    p90_ratio: float


class CalibrationSet(Frozen):
    version: str
    fitted_at: str
    fitted_on: str
    """What the parameters were fitted to (file, rows, engine)."""
    default: StepCalibration = StepCalibration()
    by_gpu: dict[str, StepCalibration] = {}
    by_gpu_precision: dict[str, StepCalibration] = {}
    """Keyed `GPU/precision`."""
    serving: ServingCalibration = ServingCalibration()
    model_factors: dict[str, float] = {}
    """TPOT correction per architecture (`ModelSpec.architecture_key`), learnt on the GPUs
    it was measured on; instruct and quantised variants share it."""
    model_slopes: dict[str, float] = {}
    """How that correction changes with the batch (`decode_correction`)."""
    residuals: dict[str, Residuals] = {}
    """Cross-validated residuals by metric (`ttft`, `tpot`): the uncertainty bands."""

    def correction(self, architecture_key: str) -> tuple[float, float]:
        """The architecture's TPOT correction: level and slope."""
        return (
            self.model_factors.get(architecture_key, 1.0),
            self.model_slopes.get(architecture_key, 0.0),
        )

    def step(self, gpu_id: str, precision: str) -> tuple[StepCalibration, str]:
        """The most specific fit for this GPU and precision, and which level it came from."""
        key = f"{gpu_id}/{precision}"
        if key in self.by_gpu_precision:
            return self.by_gpu_precision[key], "gpu+precision"
        if gpu_id in self.by_gpu:
            return self.by_gpu[gpu_id], "gpu"
        return self.default, "default"


@cache
def stored_calibration(path: Path = CALIBRATION_FILE) -> CalibrationSet:
    if not path.exists():
        return CalibrationSet(version="uncalibrated", fitted_at="", fitted_on="nothing")
    return CalibrationSet.model_validate(json.loads(path.read_text()))
