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
    eager_allreduce_overhead_us: float = Field(default=250.0, ge=0)
    """Stall per tensor-parallel all-reduce of a step run eagerly (too large for a graph):
    each all-reduce waits for the slowest rank's Python launch of the layer before it. One
    GPU's eager launches run ahead of its kernels instead and cost no more than a graph's.
    Per all-reduce since 2026.12.06-3 (per kernel before, which made a single GPU's large
    steps 15 to 20 ms too slow for an 8B model)."""
    allreduce_latency_us: float = Field(default=12.0, ge=0)
    """Fixed cost of one tensor-parallel all-reduce."""
    request_overhead_ms: float = Field(default=20.0, ge=0)
    """Request path outside the engine steps: HTTP, tokenisation, first detokenisation."""
    request_kernel_overhead_us: float = Field(default=0.0, ge=0)
    """Per-request time per kernel of the model, on top of `request_overhead_ms`: measured
    TTFT at low load grows with the model's depth by more than its prefill steps explain,
    while the steps themselves, at load, do not. Fitted since 2026.12.06-2 (0 before)."""


class ServingCalibration(Frozen):
    first_wave_weight: float = Field(default=0.1, ge=0, le=1)
    """Weight of a closed-loop benchmark's first wave in its mean TTFT: the measured rows were
    taken with 10 x concurrency requests per run (InferenceX's benchmark_serving protocol),
    the first `concurrency` of them released at once, so 0.1 at least; fitted since
    2026.12.06-4 (the first wave's queue echoes into the next; fixed at 0.1, the fit explained
    those TTFTs with slower matmuls, and TPOT was 1 point worse)."""
    kv_output_share: float = Field(default=0.5, ge=0, le=1)
    """Share of the output a running sequence holds in KV cache on average, for admission."""
    wave_spread: float = Field(default=0.2, gt=0, le=1)
    """Share of the decode time over which a closed loop's wave of requests finishes (and
    its successors arrive): 0.2 for output lengths uniform in [0.8, 1] x OSL."""
    fixed_wave_spread: float = Field(default=0.05, gt=0, le=1)
    """The same for a benchmark of fixed lengths: its requests finish within the stagger of
    their prefills, and return as a wave."""


class Residuals(Frozen):
    """Cross-validated log-ratio residuals (predicted / measured) of one metric."""

    count: int
    mdape: float
    p10_ratio: float
    p90_ratio: float


BAND_ROWS = 30
"""Rows of a model class below which its residuals are too few to draw its own band."""


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
    classes_by_gpu: dict[str, list[str]] = {}
    """The model classes (`ModelSpec.size_class`) whose measured rows calibrated each GPU: a
    GPU fitted on MoE rows alone says little about a dense model's speed on it."""
    widest_tp_by_gpu: dict[str, int] = {}
    """The widest tensor-parallel degree measured on each GPU: runs on one GPU alone say
    nothing of its links, so a replica across several is costed from other GPUs' links."""
    model_factors: dict[str, float] = {}
    """TPOT correction per architecture (`ModelSpec.architecture_key`), learnt on the GPUs
    it was measured on; instruct and quantised variants share it."""
    model_slopes: dict[str, float] = {}
    """How that correction changes with the batch (`decode_correction`)."""
    residuals: dict[str, Residuals] = {}
    """Cross-validated residuals by metric (`ttft`, `tpot`), and by metric and model class
    (`ttft/MoE`, ... where a class has BAND_ROWS rows): the uncertainty bands."""

    def correction(self, architecture_key: str) -> tuple[float, float]:
        """The architecture's TPOT correction: level and slope."""
        return (
            self.model_factors.get(architecture_key, 1.0),
            self.model_slopes.get(architecture_key, 0.0),
        )

    def band_residuals(
        self, size_class: str, extrapolated: bool
    ) -> tuple[Residuals | None, Residuals | None, str]:
        """The residuals a modelled prediction's band is drawn from, and the band's basis:
        its class's where the class had enough rows; else (the data is thin there), and
        always when the prediction extrapolates, the widest band any class showed."""
        ttft, tpot = (
            self.residuals.get(f"ttft/{size_class}"),
            self.residuals.get(f"tpot/{size_class}"),
        )
        if ttft and tpot and not extrapolated:
            return ttft, tpot, f"cross-validated residuals of {size_class} models, held-out pairs"

        def widest(metric: str) -> Residuals | None:
            found = [r for k, r in self.residuals.items() if k.split("/")[0] == metric]
            return max(found, key=lambda r: r.p90_ratio / r.p10_ratio, default=None)

        why = "extrapolated" if extrapolated else f"few measured {size_class} rows"
        return widest("ttft"), widest("tpot"), f"{why}: the widest cross-validated band"

    def step(self, gpu_id: str, precision: str, size_class: str) -> tuple[StepCalibration, str]:
        """The most specific fit for this GPU and precision, and which level it came from.
        A GPU measured only with MoE models has a memory rate its rows cannot tell apart
        from how many experts a step reads (`moe_efficiency`): for a dense model, which
        reads all its weights each step, the memory rate fitted over every GPU stands in
        (level `pooled`)."""
        if size_class != "MoE" and self.classes_by_gpu.get(gpu_id) == ["MoE"]:
            found, _ = self._step(gpu_id, precision)
            pooled = self.default.memory_efficiency
            return found.model_copy(update={"memory_efficiency": pooled}), "pooled"
        return self._step(gpu_id, precision)

    def _step(self, gpu_id: str, precision: str) -> tuple[StepCalibration, str]:
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
