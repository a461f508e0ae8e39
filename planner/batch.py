"""Candidates laid out as arrays: solve the same candidates at any load without rebuilding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from planner.calibration import ServingCalibration, decode_correction
from planner.percentiles import percentile, samples
from planner.requirements import SLOTargets
from planner.serving import (
    MAX_UTILISATION,
    SteadyState,
    closed_loop,
    open_loop,
    open_loop_at_decode,
)
from planner.steptime import StepCoefficients

TRICKLE = 1e-4
START = 0.05
GRID_POINTS = 12
"""Decode batches from a trickle to a full cache, a factor 2.3 apart, scanned for the first
turn of the served rate."""
GOLDEN = (np.sqrt(5.0) - 1) / 2
GOLDEN_STEPS = 10
"""Golden-section steps that narrow the first peak of the served rate to 1 % of a grid
interval."""
SEARCH_STEPS = 30
RESOLUTION = 0.005
"""Width of the final bracket in log(decoding sequences): the rate rises no faster than
the decode batch, so the largest rate is found within 0.5 %."""
NUDGE = 0.01
SEARCH_SAMPLES = 32
UNLIMITED = SLOTargets()


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
    fixed_lengths: np.ndarray
    """Closed loops of fixed lengths (`PredictionQuery.fixed_lengths`)."""

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
            fixed_lengths=self.fixed_lengths[index],
        )

    def solve(self, closed: bool, load: np.ndarray) -> SteadyState:
        """Closed loop at `load` requests in flight, or open loop at `load` requests/s."""
        shared = (self.coefficients, self.isl, self.osl, load, self.budget, self.cap, self.serving)
        state = (
            closed_loop(*shared, self.prefill_share, self.fixed_lengths)
            if closed
            else open_loop(*shared, self.arrival_cv2, self.prefill_share)
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

    def max_rates(self, slo: SLOTargets = UNLIMITED) -> tuple[np.ndarray, list[str]]:
        """The largest open-loop rate (requests/s) each candidate sustains with every target
        of `slo` met, and what binds there: `ttft`, `tpot`, `e2e` or `stability` (the
        prefill budget, the KV cache or the decode batch cannot keep up, and the queue grows
        without bound). With no targets that is the most a replica sustains at all. Rate 0
        where even a trickle misses; what binds is then what it misses.

        Searched over the decode batch, each evaluation explicit: the root of the margin in
        log(decoding), by false position (Illinois), between a trickle and where the served
        rate first stops growing (`_first_turn`)."""
        full, n = self._first_turn(), len(self.cap)  # at or past it, every limit is missed
        # The answer is rarely far below that turn: bracket it between the turn and a
        # twentieth of it, or between a trickle and that twentieth where that misses.
        m, reasons, rates = self._margins(
            slo, np.tile(np.arange(n), 3), np.concatenate([full * TRICKLE, full, full * START])
        )
        m_trickle, m_full, m_start = m[:n], m[n : 2 * n], m[2 * n :]
        why, binding, start_binding = reasons[:n], reasons[n : 2 * n], reasons[2 * n :]
        rate_trickle, rate_start = rates[:n], rates[2 * n :]
        near = m_start >= 0
        low = np.log(np.where(near, full * START, full * TRICKLE))
        high = np.log(np.where(near, full, full * START))
        m_low = np.where(near, m_start, m_trickle)
        m_high = np.where(near, np.minimum(m_full, -1e-3), m_start)
        rate_low = np.where(near, rate_start, rate_trickle)
        binding = [b if n else sb for b, sb, n in zip(binding, start_binding, near, strict=True)]
        last_low = np.zeros(len(low), dtype=bool)
        active = np.flatnonzero(m_trickle >= 0)
        for _ in range(SEARCH_STEPS):
            if len(active) == 0:
                break
            lo, hi, m_lo, m_hi = low[active], high[active], m_low[active], m_high[active]
            guess = lo - m_lo * (hi - lo) / (m_hi - m_lo)
            # Every step takes at least a twentieth of the bracket off, whatever the shape.
            width = hi - lo
            x = np.clip(guess, lo + width / 20, hi - width / 20)
            m, reasons, rates = self._margins(slo, active, np.exp(x))
            ok = m >= 0
            again = ok == last_low[active]
            m_high[active[ok & again]] /= 2
            m_low[active[~ok & again]] /= 2
            last_low[active] = ok
            low[active[ok]], m_low[active[ok]], rate_low[active[ok]] = x[ok], m[ok], rates[ok]
            high[active[~ok]], m_high[active[~ok]] = x[~ok], m[~ok]
            for j in np.flatnonzero(~ok):
                binding[active[j]] = reasons[j]
            active = active[high[active] - low[active] > RESOLUTION]
        missed = m_trickle < 0
        return np.where(missed, 0.0, rate_low), [
            w if m else b for w, b, m in zip(why, binding, missed, strict=True)
        ]

    def _first_turn(self) -> np.ndarray:
        """Just past the first decode batch at which the served rate stops growing, or a full
        cache. The rate is not monotonic in the batch (steps too large for a CUDA graph grow
        faster, then no faster again): searched up to a full cache, the search could settle on
        a later turn, a rate no queue below it ever reaches. Scanned on a coarse grid (one
        evaluation for all), then the peak narrowed by golden section."""
        n = len(self.cap)
        grid = self.cap * np.logspace(np.log10(TRICKLE), 0.0, GRID_POINTS)[:, None]
        rates = self.take(np.tile(np.arange(n), GRID_POINTS)).at_decode(grid.ravel())
        falling = np.diff(rates.requests_per_s.reshape(GRID_POINTS, n), axis=0) < 0
        turn = self.cap.copy()
        turning = np.flatnonzero(falling.any(axis=0))
        if not len(turning):
            return turn
        # The peak lies between the grid points either side of the last one still rising.
        peak = np.argmax(falling[:, turning], axis=0)
        low = np.log(grid[np.maximum(peak - 1, 0), turning])
        high = np.log(grid[peak + 1, turning])
        batch = self.take(turning)
        for _ in range(GOLDEN_STEPS):
            a, b = high - (high - low) * GOLDEN, low + (high - low) * GOLDEN
            served = batch.take(np.tile(np.arange(len(turning)), 2)).at_decode(
                np.exp(np.concatenate([a, b]))
            )
            left = served.requests_per_s[: len(turning)] >= served.requests_per_s[len(turning) :]
            high, low = np.where(left, b, high), np.where(left, low, a)
        turn[turning] = np.exp(high)
        return turn

    def _margins(
        self, slo: SLOTargets, index: np.ndarray, decoding: np.ndarray
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """How far inside its limits each candidate of `index` runs with `decoding` sequences
        decoding: limit / value - 1 for every SLO percentile and for stability (prefill
        budget, KV cache), and how much more load a few more decoding sequences would carry
        (none past the most a replica sustains); the worst of them (negative when missed),
        which one that is, and the arrival rate."""
        k = len(index)
        # The state and its nudge in one call: each call costs mostly its fixed overhead.
        both = self.take(np.concatenate([index, index])).at_decode(
            np.concatenate([decoding, decoding * (1 + NUDGE)])
        )
        state, more = both.take(slice(0, k)), both.requests_per_s[k:]
        margin = np.minimum(
            MAX_UTILISATION / np.maximum(state.prefill_utilisation, 1e-12),
            self.cap[index] / np.maximum(state.running, 1e-12),
        )
        # Elasticity of the rate to the decode batch: 1 while steps barely grow, 0 at the
        # most a replica sustains (a saddle: past it the same rate has a smaller solution).
        margin = np.minimum(margin, 1 + np.log(more / state.requests_per_s) / np.log1p(NUDGE))
        worst = np.full(k, "stability", dtype=object)
        targets = (
            ("ttft", 90, slo.ttft_p90_ms),
            ("tpot", 90, slo.tpot_p90_ms),
            ("e2e", 95, slo.e2e_p95_ms),
        )
        if any(target is not None for *_, target in targets):
            ttft, tpot, e2e = samples(
                state,
                self.serving,
                self.osl[index],
                False,
                self.isl[index],
                self.isl_p95[index],
                self.osl_p95[index],
                n_samples=SEARCH_SAMPLES,
            )
            for (name, q, target), values in zip(targets, (ttft, tpot, e2e), strict=True):
                if target is None:
                    continue
                value = percentile(values, q, ordered=name == "tpot")
                m = target / np.maximum(value * 1e3, 1e-12)
                worst = np.where(m < margin, name, worst)
                margin = np.minimum(margin, m)
        return np.nan_to_num(margin, nan=0.0) - 1, list(worst), state.requests_per_s
