"""From steady-state means to percentiles (p50/p90/p95/p99) of TTFT, TPOT and E2E.

Each request's TTFT is its fixed part (overhead, step phase, its own prefill) plus a wait
for the prefill budget: zero with probability 1 - utilisation, else exponential (the M/D/1
shape). In a closed-loop benchmark a share of requests belongs to the synchronised first
wave, whose TTFT is spread uniformly up to twice its mean. Per-request TPOT is normal
around the mean step with the prefill-interference spread. Lengths vary lognormally when a
p95 is given. Quantiles come from a fixed stratified grid, so results are deterministic.
"""

from __future__ import annotations

from functools import cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

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


@cache
def _grids(n: int) -> tuple[Array, ...]:
    """Six stratified uniform grids in (0, 1): phase, wait, TPOT, wave, prompt and output
    length. Each is shifted and, but the first, shuffled once with a fixed seed, so that the
    variables pair up without correlation (a fixed pairing, not randomness). The samples are
    then put in the TPOT grid's order: a request's TPOT grows with its grid value, so every
    candidate's TPOT samples come out sorted, and its percentiles need no sort."""
    order = np.random.default_rng(7)
    grids = []
    for k in range(6):
        grid = ((np.arange(n) + 0.5) / n + k / 7) % 1.0
        if k:
            order.shuffle(grid)
        grids.append(grid)
    by_tpot = np.argsort(grids[2], kind="stable")
    ordered = []
    for grid in grids:
        grid = grid[by_tpot]
        grid.setflags(write=False)
        ordered.append(grid)
    return tuple(ordered)


@cache
def _normal_grids(n: int) -> tuple[Array, Array, Array]:
    """The standard normal's quantiles on the TPOT, prompt-length and output-length grids, once
    per grid size: the standard library's inverse CDF, as exact as SciPy's, without its import
    (a quarter of a second of every command's start)."""
    normal = NormalDist()
    _, _, u_tpot, _, u_isl, u_osl = _grids(n)
    quantiles = []
    for u in (u_tpot, u_isl, u_osl):
        z = np.array([normal.inv_cdf(float(x)) for x in np.clip(u, 1e-6, 1 - 1e-6)])
        z.setflags(write=False)
        quantiles.append(z)
    return quantiles[0], quantiles[1], quantiles[2]


@cache
def _exponential_grid(n: int) -> Array:
    """-ln(1 - u) on the wait grid: a unit exponential's quantiles, once per grid size."""
    _, u_wait, *_ = _grids(n)
    tail = -np.log1p(-u_wait)
    tail.setflags(write=False)
    return tail


def held_tokens(isl: float, osl: float, osl_p95: float | None, output_share: float) -> float:
    """Tokens of KV cache a decoding sequence holds on average while it decodes: its prompt
    and `output_share` of its output. Outputs of varied length (lognormal, with this p95)
    hold the cache in proportion to how long they last, so the long ones weigh most:
    E[o^2] / E[o] = exp(sigma^2) E[o], and fewer sequences fit at once than the mean says."""
    weight = float(np.exp(lognormal_sigma(osl_p95 / osl) ** 2)) if osl_p95 else 1.0
    return isl + output_share * osl * weight


def lognormal_sigma(p95_over_mean: ArrayLike) -> Array:
    """The spread of a lognormal with mean 1 whose p95 is `p95_over_mean`.

    With mu = -sigma^2 / 2 (mean 1), p95 = exp(mu + Z95 sigma) gives
    sigma^2 - 2 Z95 sigma + 2 ln(p95) = 0; the smaller root is the light-tailed one. A p95
    above exp(Z95^2 / 2) (3.87 x the mean) is beyond every lognormal with that mean: the
    spread stops at Z95, where the p95 is largest.
    """
    log_ratio = np.log(np.maximum(np.asarray(p95_over_mean, dtype=np.float64), 1.0))
    return np.asarray(Z95 - np.sqrt(np.maximum(Z95**2 - 2 * log_ratio, 0.0)))


def _lognormal_factor(mean: Array, p95: Array | None, z: Array) -> Array:
    """Multiplicative spread of a length around its mean, matching its p95, at the normal
    quantiles `z`."""
    if p95 is None or not len(mean):
        return np.ones((len(mean), len(z)))
    ratio = np.maximum(np.asarray(p95) / np.asarray(mean), 1.0)
    # Candidates of one search share their lengths: compute each distinct spread once.
    if np.all(ratio == ratio[0]):
        distinct, index = ratio[:1], np.zeros(len(ratio), dtype=np.intp)
    else:
        distinct, index = np.unique(ratio, return_inverse=True)
    sigma = lognormal_sigma(distinct)
    factors = np.exp(-(sigma[:, None] ** 2) / 2 + sigma[:, None] * z[None, :])
    if len(distinct) == 1:
        return np.asarray(factors)  # one row broadcasts over every candidate
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
    u_phase, _, _, u_wave, _, _ = _grids(n_samples)
    z_tpot, z_isl, z_osl = _normal_grids(n_samples)
    step, overhead = state.tpot_s, state.request_overhead_s
    ones = np.ones((1, n_samples))
    isl_factor = _lognormal_factor(isl, isl_p95, z_isl) if isl is not None else ones
    # The fixed part, the wait for the step boundary and the request's own prefill (longer
    # for a longer prompt), all at once.
    ttft = _outer_sum(
        [overhead + state.admission_wait_s, step, state.own_prefill_s],
        [ones, u_phase[None, :], isl_factor],
    )
    # A closed loop's requests come in waves, and each waits for the others in its wave; an
    # open loop's wait only the share of them that find the budget busy.
    busy = np.ones_like(step) if closed else np.clip(state.prefill_utilisation, 1e-3, 1.0)
    wait_if_waiting = np.maximum(state.prefill_wait_s / busy, 0.0)
    # Zero wait below the utilisation, exponential above: a request at grid value u waits
    # ln(busy / (1 - u)) in units of the mean wait of those who wait, when that is positive.
    # In place, since this runs on every candidate at every step of a search.
    wait = np.add(_exponential_grid(n_samples)[None, :], np.log(busy)[:, None])
    np.maximum(wait, 0.0, out=wait)
    wait *= wait_if_waiting[:, None]
    ttft += wait
    if closed and serving.first_wave_weight > 0:
        # The synchronised first wave: its requests' first tokens come one after another,
        # uniformly up to twice the wave's mean.
        in_wave = u_wave < serving.first_wave_weight
        position = 2.0 * u_wave[in_wave] / serving.first_wave_weight
        ttft[:, in_wave] = overhead[:, None] + state.first_wave_s[:, None] * position[None, :]
    tpot = _outer_sum([step, state.tpot_spread_s], [ones, z_tpot[None, :]])
    np.maximum(tpot, 0.5 * step[:, None], out=tpot)
    osl_factor = _lognormal_factor(osl, osl_p95, z_osl)
    decodes = _outer_sum([osl, -np.ones_like(osl)], [osl_factor, ones])
    np.maximum(decodes, 0, out=decodes)
    decodes *= tpot
    e2e = decodes
    e2e += ttft
    return ttft, tpot, e2e


def _outer_sum(coefficients: list[Array], grids: list[Array]) -> Array:
    """The sum over k of coefficients[k] (one per candidate) times grids[k] (one row per
    sample, or one per candidate and sample): where every grid is a single row, one matrix
    product writes the (candidates, samples) array in a single pass. By `einsum`, not BLAS,
    whose threads spin against the other worker processes for the same two cores."""
    if all(grid.shape[0] == 1 for grid in grids):
        return np.asarray(np.einsum("ck,ks->cs", np.column_stack(coefficients), np.vstack(grids)))
    total = np.zeros((len(coefficients[0]), grids[0].shape[1]))
    for coefficient, grid in zip(coefficients, grids, strict=True):
        total += coefficient[:, None] * grid
    return total


def percentile(values: Array, q: float, ordered: bool = False) -> Array:
    """The q-th percentile of each row, by selection (nearest rank) rather than sorting;
    `ordered`: the rows are sorted already (TPOT samples)."""
    k = min(round(q / 100 * (values.shape[1] - 1)), values.shape[1] - 1)
    return np.asarray((values if ordered else np.partition(values, k, axis=1))[:, k])


def quantile(values_s: Array, q: float, ordered: bool = False) -> Array:
    """The q-th percentile of each row in ms, as `quantiles` gives it, by selection: the
    order statistic below its position, and the least of those above it. The selection
    reorders each row of `values_s` in place (a copy of thousands of rows costs as much)."""
    k = values_s.shape[1]
    position = q / 100 * (k - 1)
    below = min(int(np.floor(position)), k - 2)
    weight = position - below
    if ordered:
        low, high = values_s[:, below], values_s[:, below + 1]
    else:
        values_s.partition(below, axis=1)
        low, high = values_s[:, below], values_s[:, below + 1 :].min(axis=1)
    # The same arithmetic as `quantiles`, so that both give the same number to the last bit.
    return np.asarray(low * 1e3 * (1 - weight) + high * 1e3 * weight)


def quantiles(values_s: Array, mean_s: Array | None = None, ordered: bool = False) -> Array:
    """Per candidate, in ms: the mean then PERCENTILES, shape (candidates, 5); `mean_s`
    overrides the sample mean (the model's); `ordered`: the rows are sorted already."""
    # Linear interpolation between order statistics (NumPy's default), at fixed positions.
    k = values_s.shape[1]
    position = np.asarray(PERCENTILES) / 100 * (k - 1)
    below = np.minimum(np.floor(position).astype(int), k - 2)
    weight = position - below
    ordered_ms = (values_s if ordered else np.sort(values_s, axis=1)) * 1e3
    means = (mean_s if mean_s is not None else values_s.mean(axis=1)) * 1e3
    return np.column_stack(
        [means, ordered_ms[:, below] * (1 - weight) + ordered_ms[:, below + 1] * weight]
    )


def latency_stats(row: Array) -> LatencyStats:
    """One row of `quantiles` as LatencyStats."""
    mean, p50, p90, p95, p99 = (float(v) for v in row)
    return LatencyStats.model_construct(mean=mean, p50=p50, p90=p90, p95=p95, p99=p99)


def stats(
    values_s: Array, mean_s: Array | None = None, ordered: bool = False
) -> list[LatencyStats]:
    """Per-candidate LatencyStats in ms (`quantiles`, one object each)."""
    return [latency_stats(row) for row in quantiles(values_s, mean_s, ordered)]
