"""Measured serving points, as the planner uses them (fitting, lookup, interpolation)."""

from __future__ import annotations

from planner.specs import Frozen, Precision


class MeasuredPoint(Frozen):
    """One closed-loop measurement at fixed lengths."""

    model_id: str
    gpu_id: str
    precision: Precision
    tp: int
    isl: int
    osl: int
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    reference: str
    """Where it came from (the benchmark row id)."""

    @property
    def pair(self) -> tuple[str, str]:
        return self.model_id, self.gpu_id
