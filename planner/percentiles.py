"""From steady-state means to percentiles (p50/p90/p95/p99) of TTFT, TPOT and E2E.

Each request's TTFT is its fixed part (overhead, step phase, its own prefill) plus a wait
for the prefill budget: zero with probability 1 - utilisation, else exponential (the M/D/1
shape). In a closed-loop benchmark a share of requests belongs to the synchronised first
wave, whose TTFT is spread uniformly up to twice its mean. Per-request TPOT is normal
around the mean step with the prefill-interference spread. Lengths vary lognormally when a
p95 is given. Quantiles come from a fixed stratified grid, so results are deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from planner.calibration import ServingCalibration
from planner.serving import SteadyState
from planner.specs import Frozen
from planner.steptime import Array

SAMPLES = 256
PERCENTILES = (50, 90, 95, 99)
Z95 = 1.6449


class LatencyStats(Frozen):
    """One latency metric, milliseconds."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float

    def scaled(self, factor: float) -> LatencyStats:
        return LatencyStats(**{k: v * factor for k, v in self.model_dump().items()})


def _grid(offset: float, n: int) -> Array:
    """Stratified uniforms in (0, 1), decorrelated between variables by a fixed shift."""
    return np.asarray(((np.arange(n) + 0.5) / n + offset) % 1.0)


def _lognormal_factor(mean: Array, p95: Array | None, u: Array) -> Array:
    """Multiplicative spread of a length around its mean, matching its p95."""
    if p95 is None:
        return np.ones((len(mean), len(u)))
    ratio = np.maximum(np.asarray(p95) / np.asarray(mean), 1.0)
    # Candidates of one search share their lengths: compute each distinct spread once.
    distinct, index = np.unique(ratio, return_inverse=True)
    # Lognormal with E = 1 and p95 = ratio: sigma solves mu + 1.645 sigma = ln(ratio).
    sigma = np.maximum(-Z95 + np.sqrt(Z95**2 + 2 * np.log(distinct)), 0.0)
    z = ndtri(np.clip(u, 1e-6, 1 - 1e-6))
    factors = np.exp(-(sigma[:, None] ** 2) / 2 + sigma[:, None] * z[None, :])
    return np.asarray(factors[index.reshape(-1)])


def samples(
    state: SteadyState,
    serving: ServingCalibration,
    osl: Array,
    closed: bool,
    isl: Array | None = None,
    isl_p95: Array | None = None,
    osl_p95: Array | None = None,
    n_samples: int = SAMPLES,
) -> tuple[Array, Array, Array]:
    """TTFT, TPOT and E2E samples in seconds, shape (candidates, SAMPLES)."""
    u_phase, u_wait, u_tpot, u_wave, u_isl, u_osl = (_grid(k / 7, n_samples) for k in range(6))
    order = np.random.default_rng(7)  # a fixed pairing of the strata, not randomness
    for grid in (u_wait, u_tpot, u_wave, u_isl, u_osl):
        order.shuffle(grid)
    step = state.tpot_s[:, None]
    overhead = state.request_overhead_s[:, None]
    prefill = state.own_prefill_s[:, None] * (
        _lognormal_factor(isl, isl_p95, u_isl) if isl is not None else 1.0
    )
    busy = np.clip(state.prefill_utilisation, 1e-3, 1.0)[:, None]
    wait_if_waiting = np.maximum(state.prefill_wait_s[:, None] / busy, 0.0)
    tail = np.clip((u_wait[None, :] - (1 - busy)) / busy, 0.0, 1.0 - 1e-9)
    wait = np.where(u_wait[None, :] > 1 - busy, -np.log1p(-tail) * wait_if_waiting, 0.0)
    ttft = overhead + u_phase[None, :] * step + prefill + wait + state.admission_wait_s[:, None]
    if closed and serving.first_wave_weight > 0:
        # The synchronised first wave: its requests' first tokens come one after another,
        # uniformly up to twice the wave's mean.
        in_wave = u_wave < serving.first_wave_weight
        position = 2.0 * u_wave[in_wave] / serving.first_wave_weight
        ttft[:, in_wave] = overhead + state.first_wave_s[:, None] * position[None, :]
    z = ndtri(np.clip(u_tpot, 1e-6, 1 - 1e-6))
    tpot = np.maximum(step + state.tpot_spread_s[:, None] * z[None, :], 0.5 * step)
    outputs = osl[:, None] * _lognormal_factor(osl, osl_p95, u_osl)
    e2e = ttft + np.maximum(outputs - 1, 0) * tpot
    return ttft, tpot, e2e


def percentile(values: Array, q: float) -> Array:
    """The q-th percentile of each row, by selection (nearest rank) rather than sorting."""
    k = min(round(q / 100 * (values.shape[1] - 1)), values.shape[1] - 1)
    return np.asarray(np.partition(values, k, axis=1)[:, k])


def stats(values_s: Array, mean_s: Array | None = None) -> list[LatencyStats]:
    """Per-candidate LatencyStats in ms; `mean_s` overrides the sample mean (the model's)."""
    quantiles = np.percentile(values_s, PERCENTILES, axis=1) * 1e3
    means = (mean_s if mean_s is not None else values_s.mean(axis=1)) * 1e3
    return [
        LatencyStats.model_construct(
            mean=float(means[i]),
            p50=float(quantiles[0, i]),
            p90=float(quantiles[1, i]),
            p95=float(quantiles[2, i]),
            p99=float(quantiles[3, i]),
        )
        for i in range(values_s.shape[0])
    ]
