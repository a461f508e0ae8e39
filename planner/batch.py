"""Candidates laid out as arrays: solve the same candidates at any load without rebuilding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from planner.calibration import ServingCalibration, decode_correction
from planner.serving import SteadyState, closed_loop, open_loop, open_loop_at_decode
from planner.steptime import StepCoefficients


def column(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Batch:
    """Candidates laid out as arrays; solving at another load needs no rebuilding."""

    coefficients: StepCoefficients
    isl: np.ndarray
    osl: np.ndarray
    budget: np.ndarray
    cap: np.ndarray
    arrival_cv2: np.ndarray
    serving: ServingCalibration
    isl_p95: np.ndarray
    osl_p95: np.ndarray
    tpot_factor: np.ndarray
    tpot_slope: np.ndarray
    """The calibration's decode correction per candidate (`decode_correction`)."""
    prefill_share: np.ndarray
    """Share of each prompt prefill computes (the rest is found in the prefix cache)."""

    def take(self, index: np.ndarray) -> Batch:
        """The same batch for a subset of its candidates."""
        return Batch(
            coefficients=self.coefficients.take(index),
            isl=self.isl[index],
            osl=self.osl[index],
            budget=self.budget[index],
            cap=self.cap[index],
            arrival_cv2=self.arrival_cv2[index],
            serving=self.serving,
            tpot_factor=self.tpot_factor[index],
            tpot_slope=self.tpot_slope[index],
            isl_p95=self.isl_p95[index],
            osl_p95=self.osl_p95[index],
            prefill_share=self.prefill_share[index],
        )

    def solve(self, closed: bool, load: np.ndarray) -> SteadyState:
        """Closed loop at `load` requests in flight, or open loop at `load` requests/s."""
        c = self.coefficients
        if closed:
            state = closed_loop(
                c, self.isl, self.osl, load, self.budget, self.cap, self.serving, self.prefill_share
            )
        else:
            state = open_loop(
                c,
                self.isl,
                self.osl,
                load,
                self.budget,
                self.cap,
                self.serving,
                self.arrival_cv2,
                self.prefill_share,
            )
        return self._corrected(state, closed)

    def at_decode(self, decoding: np.ndarray) -> SteadyState:
        """The open loop at the arrival rate that keeps `decoding` sequences decoding."""
        state = open_loop_at_decode(
            self.coefficients,
            self.isl,
            self.osl,
            decoding,
            self.budget,
            self.cap,
            self.serving,
            self.arrival_cv2,
            self.prefill_share,
        )
        return self._corrected(state, closed=False)

    def _corrected(self, state: SteadyState, closed: bool) -> SteadyState:
        if np.all(self.tpot_factor == 1.0) and np.all(self.tpot_slope == 0.0):
            return state
        # The architecture's decode correction, applied as in the fit: to TPOT, and to what
        # a closed loop's pace follows from it.
        factor = decode_correction(self.tpot_factor, self.tpot_slope, state.running)
        tpot = state.tpot_s * factor
        rate = state.requests_per_s
        if closed:
            # A closed loop's requests take as much longer (or shorter) as their decode does;
            # uncorrected candidates keep the solver's own rate.
            decode_s = (self.osl - 1) * state.tpot_s
            slower = (state.ttft_s + decode_s * factor) / (state.ttft_s + decode_s)
            rate = state.requests_per_s / slower
        return replace(
            state,
            tpot_s=tpot,
            tpot_spread_s=state.tpot_spread_s * factor,
            requests_per_s=rate,
        )
