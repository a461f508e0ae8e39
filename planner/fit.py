"""Calibration: fit the model's free parameters to measured vLLM rows, and judge the fit by
cross-validation that holds out whole (model, GPU) pairs.

Fitting is hierarchical, each level pulled towards the one above by a prior:
  1. one pooled step calibration and the serving parameters, on every row;
  2. per GPU, step parameters only;
  3. per (GPU, precision), step parameters only;
  4. the serving parameters again, with the step parameters fixed;
  5. a shrunk TPOT correction per architecture, a level and a slope against the batch
     (other engines' rows stand in, offset, for the level of architectures vLLM was never
     measured on).
Residuals are log(predicted / measured) of mean TTFT and TPOT, with a robust loss so a few
pathological rows (hundreds of seconds of TTFT in an overloaded run) cannot dominate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from planner.calibration import (
    REFERENCE_BATCH,
    CalibrationSet,
    Residuals,
    ServingCalibration,
    StepCalibration,
    decode_correction,
)
from planner.measured import MeasuredPoint, in_flight
from planner.memory import fit as memory_fit
from planner.percentiles import held_tokens
from planner.serving import closed_loop, open_loop
from planner.specs import GpuSpec, ModelSpec, ServingConfig
from planner.steptime import Array, StepShape, apply, shape

PRIOR_SCALE = 0.1
"""Log-space distance from its parent fit that costs a group as much as one residual."""
KERNEL_PRIOR_SCALE = 0.05
"""The same, tighter, for what vLLM's kernels and NCCL decide more than the chip does: the
grouped-GEMM share and the all-reduce latency generalise better pooled across GPUs (chosen
by the cross-validation below: TPOT MdAPE 10.1 % with 0.1, 9.9 % from 0.03 to 0.07)."""
REQUEST_PRIOR_SCALE = 0.6
"""The same, looser, for the per-request path (HTTP, tokenisation, the benchmark client): it
depends on the host and the harness that measured a group's rows more than on the chip
(chosen by the cross-validation below: TTFT MdAPE 17.4 % with 0.3, 16.8 % with 0.6, 17.1 %
with 1.0; 18.0 % with 0.1)."""
FITTED_STEP: dict[str, tuple[float, float, float, float]] = {
    # name: (lower bound, upper bound, offset that keeps the log prior finite near zero,
    #        prior scale)
    # No engine reaches more than about 80 % of the dense peak (the data README's
    # plausibility rule): a fit past it is absorbing something else (with the first wave's
    # weight fitted, H100 rows were pushed to 94 %).
    "compute_efficiency": (0.05, 0.8, 0.0, PRIOR_SCALE),
    # HBM streams at 70 % of its datasheet rate or better; below that a fit is absorbing
    # what one architecture's kernels lose (the decode corrections' job), and a GPU fitted
    # on MoE rows alone would slow every dense model on it.
    "memory_efficiency": (0.7, 1.0, 0.0, PRIOR_SCALE),
    "moe_efficiency": (0.01, 1.0, 0.0, KERNEL_PRIOR_SCALE),
    "step_overhead_ms": (0.0, 20.0, 0.5, PRIOR_SCALE),
    "kernel_overhead_us": (0.0, 30.0, 0.5, PRIOR_SCALE),
    "eager_allreduce_overhead_us": (0.0, 1000.0, 2.0, PRIOR_SCALE),
    "allreduce_latency_us": (0.0, 60.0, 2.0, KERNEL_PRIOR_SCALE),
    "request_overhead_ms": (0.0, 200.0, 5.0, PRIOR_SCALE),
    "request_kernel_overhead_us": (0.0, 300.0, 2.0, REQUEST_PRIOR_SCALE),
}
"""The step parameters fitted per group; the rest keep their defaults."""
STEP_PARAMS = tuple(FITTED_STEP)
STEP_BOUNDS = tuple((low, high) for low, high, *_ in FITTED_STEP.values())
SERVING_PARAMS = ("wave_spread", "first_wave_weight", "fixed_wave_spread")
SERVING_BOUNDS = ((0.01, 1.0), (0.0, 0.5), (0.01, 1.0))
QUEUED_RUN_SHARE = 0.25
MAX_PLAUSIBLE_UTILISATION = 0.8
"""A closed loop's requests/s x 2 x active parameters x (isl + osl) over the replica's dense
peak (the data README's plausibility rule)."""
TRANSIENT_SPAN = 4.0
"""An open-loop run whose arrivals span fewer than this many times a request's measured time
in the system ends before its queue settles: its latencies describe no steady state."""
SHRINK_ROWS = 10
"""Rows of evidence an architecture's correction level needs before it counts half."""
SLOPE_SHRINK = 300.0
"""The same for its slope, in rows x (log batch)^2: a slope needs rows spread over a wide
range of batches. Both were chosen by the cross-validation below."""
ROBUST_SCALE = 0.3
"""Residuals (in log ratio) beyond which the loss grows linearly, not quadratically."""
OVERLOADED_RATIO = 10.0
"""A measured load the model calls overloaded counts as this many times too slow."""


@dataclass
class FitRows:
    """Measured points laid out as arrays, with the spec-only step shape precomputed."""

    points: list[MeasuredPoint]
    shape: StepShape
    isl: Array
    osl: Array
    concurrency: Array
    """Closed-loop requests in flight (NaN for open-loop rows)."""
    qps: Array
    """Open-loop arrivals per second (NaN for closed-loop rows)."""
    arrival_cv2: Array
    closed: np.ndarray
    fixed_lengths: np.ndarray
    budget: Array
    cap: Array
    ttft_s: Array
    tpot_s: Array
    gpu: np.ndarray
    group: np.ndarray
    pair: np.ndarray
    architecture: list[str]
    model_class: np.ndarray
    """`small dense`, `large dense` or `MoE` (`ModelSpec.size_class`): accuracy is reported per
    class, since a median over all rows hides a class the data is thin on."""
    excluded: list[tuple[MeasuredPoint, str]]


def transient(point: MeasuredPoint) -> str | None:
    """Why an open-loop run ended before its queue settled (`TRANSIENT_SPAN`), or None."""
    if point.closed or not point.num_prompts or not point.qps:
        return None
    span = point.num_prompts / point.qps
    if span >= TRANSIENT_SPAN * point.residence_s:
        return None
    return (
        f"a transient run: its {point.num_prompts} arrivals span {span:.0f} s, under "
        f"{TRANSIENT_SPAN:.0f} times a request's time in the system ({point.residence_s:.1f} s)"
    )


def prepare(
    points: Sequence[MeasuredPoint],
    models: Mapping[str, ModelSpec],
    gpus: Mapping[str, GpuSpec],
    serving: ServingCalibration | None = None,
) -> FitRows:
    """Lay out the rows; rows whose configuration cannot fit in memory are set aside."""
    serving = serving or ServingCalibration()
    kept: list[MeasuredPoint] = []
    candidates = []
    caps: list[float] = []
    excluded: list[tuple[MeasuredPoint, str]] = []
    for point in points:
        model, gpu = models[point.model_id], gpus[point.gpu_id]
        if point.dp != 1:
            # DP attention with expert parallelism: `dp` attention replicas share the experts
            # of tp x dp GPUs. The model has no such replica, and reading the row as TP-only
            # would credit tp GPUs with the work of tp x dp.
            excluded.append(
                (
                    point,
                    f"attention data parallel (dp {point.dp}, tp {point.tp}: "
                    f"{point.tp * point.dp} GPUs): a replica layout the model does not cover"
                    if point.dp
                    else "the replica's attention data-parallel degree is not stated",
                )
            )
            continue
        if point.tp not in (1, 2, 4, 8):
            excluded.append((point, f"tp {point.tp} is wider than one node (wide expert parallel)"))
            continue
        decoding = (point.osl - 1) * point.tpot_ms
        if point.closed and decoding < QUEUED_RUN_SHARE * (decoding + point.ttft_ms):
            # Little's law: the share of the client's requests decoding at any moment.
            excluded.append(
                (
                    point,
                    f"under {QUEUED_RUN_SHARE:.0%} of the {point.concurrency} requests decoded "
                    "at once: the server ran a smaller batch than the benchmark's concurrency "
                    "(a limit the data does not record)",
                )
            )
            continue
        # The requests/s a closed loop completes (an open loop's offered rate says nothing
        # here: an overloaded server serves less).
        served = (point.concurrency or 0) / point.residence_s
        flops = 2.0 * model.params_active_b * 1e9 * (point.isl + point.osl) * served
        utilisation = flops / (point.tp * gpu.tensor_tflops(point.precision) * 1e12)
        if utilisation > MAX_PLAUSIBLE_UTILISATION:
            excluded.append(
                (
                    point,
                    f"implies {utilisation:.0%} of the GPUs' dense {point.precision} peak, more "
                    "than any engine reaches: it ran under a condition the row does not state "
                    "(prefix-cache hits, another TPOT definition)",
                )
            )
            continue
        if reason := transient(point):
            excluded.append((point, reason))
            continue
        cfg = ServingConfig(tp=point.tp, precision=point.precision, **point.engine.on(gpu))
        context = int(held_tokens(point.isl, point.osl, None, serving.kv_output_share))
        memory = memory_fit(model, gpu, cfg, context)
        if not memory.fits:
            excluded.append((point, memory.reason or "does not fit"))
            continue
        kept.append(point)
        candidates.append((model, gpu, cfg))
        caps.append(float(memory.max_concurrent_sequences))

    def column(values: list[float]) -> Array:
        return np.asarray(values, dtype=np.float64)

    return FitRows(
        points=kept,
        shape=shape(candidates),
        isl=column([p.isl for p in kept]),
        osl=column([p.osl for p in kept]),
        concurrency=column([p.concurrency or np.nan for p in kept]),
        qps=column([p.qps or np.nan for p in kept]),
        arrival_cv2=column([p.arrival_cv2 for p in kept]),
        closed=np.array([p.closed for p in kept], dtype=bool),
        fixed_lengths=np.array([p.fixed_lengths for p in kept], dtype=bool),
        budget=column([cfg.max_num_batched_tokens for _, _, cfg in candidates]),
        cap=column(caps),
        ttft_s=column([p.ttft_ms / 1e3 for p in kept]),
        tpot_s=column([p.tpot_ms / 1e3 for p in kept]),
        gpu=np.array([p.gpu_id for p in kept]),
        group=np.array([f"{p.gpu_id}/{p.precision}" for p in kept]),
        pair=np.array([f"{p.model_id}|{p.gpu_id}" for p in kept]),
        architecture=[models[p.model_id].architecture_key for p in kept],
        model_class=np.array([models[p.model_id].size_class for p in kept]),
        excluded=excluded,
    )


def predict(
    rows: FitRows, index: np.ndarray, step: np.ndarray, serving: ServingCalibration
) -> tuple[Array, Array]:
    """Mean TTFT and TPOT (s) of the rows at `index`; `step` has one parameter row each."""
    defaults = StepCalibration()
    parameters = {
        name: np.full(len(index), getattr(defaults, name)) for name in StepCalibration.model_fields
    }
    parameters.update({name: step[:, i] for i, name in enumerate(STEP_PARAMS)})
    coefficients = apply(rows.shape.take(index), parameters)
    ttft, tpot = np.empty(len(index)), np.empty(len(index))
    closed = rows.closed[index]
    for loop, solve in ((closed, closed_loop), (~closed, open_loop)):
        at = np.flatnonzero(loop)
        if not len(at):
            continue
        rows_at = index[at]
        load = rows.concurrency[rows_at] if solve is closed_loop else rows.qps[rows_at]
        state = solve(
            coefficients.take(at),
            rows.isl[rows_at],
            rows.osl[rows_at],
            load,
            rows.budget[rows_at],
            np.maximum(rows.cap[rows_at], 1.0),
            serving,
            **(
                {"fixed_lengths": rows.fixed_lengths[rows_at]}
                if solve is closed_loop
                else {"arrival_cv2": rows.arrival_cv2[rows_at]}
            ),
        )
        # A load predicted past what the replica sustains has no steady-state latency.
        overloaded = ~state.stable.astype(bool)
        ttft[at] = np.where(overloaded, np.inf, state.ttft_s)
        tpot[at] = np.where(overloaded, np.inf, state.tpot_s)
    return ttft, tpot


def _log_residuals(
    rows: FitRows, index: np.ndarray, step: np.ndarray, serving: ServingCalibration
) -> Array:
    ttft, tpot = predict(rows, index, step, serving)
    ratios = np.concatenate([ttft / rows.ttft_s[index], tpot / rows.tpot_s[index]])
    residuals: Array = np.log(np.minimum(ratios, OVERLOADED_RATIO))
    return residuals


def _vector(calibration: StepCalibration) -> np.ndarray:
    return np.array([getattr(calibration, name) for name in STEP_PARAMS])


def _step(vector: np.ndarray) -> StepCalibration:
    return StepCalibration(**{name: float(v) for name, v in zip(STEP_PARAMS, vector, strict=True)})


def _serving(vector: np.ndarray, base: ServingCalibration) -> ServingCalibration:
    values = {name: float(v) for name, v in zip(SERVING_PARAMS, vector, strict=True)}
    return base.model_copy(update=values)


def _prior(vector: np.ndarray, prior: np.ndarray) -> Array:
    # Offsets keep the log finite for parameters whose fit may reach zero.
    offsets = np.array([offset for _, _, offset, _ in FITTED_STEP.values()])
    scales = np.array([scale for *_, scale in FITTED_STEP.values()])
    return np.asarray(np.log((vector + offsets) / (prior + offsets)) / scales)


def _least_squares(
    function: Callable[[np.ndarray], Array],
    start: np.ndarray,
    bounds: Sequence[tuple[float, float]],
) -> np.ndarray:
    lower, upper = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    start = np.clip(start, lower + 1e-6, upper - 1e-6)
    result = least_squares(
        function,
        start,
        bounds=(lower, upper),
        loss="soft_l1",
        f_scale=ROBUST_SCALE,
        max_nfev=200,
        x_scale="jac",
    )
    return np.asarray(result.x)


def fit_calibration(
    rows: FitRows,
    mask: np.ndarray | None = None,
    version: str = "dev",
    other_engines: FitRows | None = None,
) -> CalibrationSet:
    """Fit every level on the rows where `mask` is true (all rows by default).

    `other_engines` (SGLang, TensorRT-LLM rows) inform only the relative decode speed of
    architectures that have no vLLM rows at all.
    """
    mask = np.ones(len(rows.points), dtype=bool) if mask is None else mask
    index = np.flatnonzero(mask)
    serving = ServingCalibration()
    default = StepCalibration()
    start = np.concatenate([_vector(default), [getattr(serving, n) for n in SERVING_PARAMS]])

    n = len(STEP_PARAMS)

    def pooled(x: np.ndarray) -> Array:
        step = np.tile(x[:n], (len(index), 1))
        return _log_residuals(rows, index, step, _serving(x[n:], serving))

    x = _least_squares(pooled, start, (*STEP_BOUNDS, *SERVING_BOUNDS))
    default, serving = _step(x[:n]), _serving(x[n:], serving)

    def fit_groups(
        keys: np.ndarray, parent: Callable[[str], StepCalibration]
    ) -> dict[str, StepCalibration]:
        fitted: dict[str, StepCalibration] = {}
        for key in sorted(set(keys[index])):
            group_index = index[keys[index] == key]
            prior = _vector(parent(key))

            def residuals(
                v: np.ndarray, group_index: np.ndarray = group_index, prior: np.ndarray = prior
            ) -> Array:
                step = np.tile(v, (len(group_index), 1))
                return np.concatenate(
                    [_log_residuals(rows, group_index, step, serving), _prior(v, prior)]
                )

            fitted[key] = _step(_least_squares(residuals, prior, STEP_BOUNDS))
        return fitted

    by_gpu = fit_groups(rows.gpu, lambda _key: default)
    by_group = fit_groups(rows.group, lambda key: by_gpu[key.split("/")[0]])
    step_rows = np.array([_vector(by_group[rows.group[i]]) for i in index])

    def serving_only(v: np.ndarray) -> Array:
        return _log_residuals(rows, index, step_rows, _serving(v, serving))

    serving = _serving(
        _least_squares(
            serving_only, np.array([getattr(serving, n) for n in SERVING_PARAMS]), SERVING_BOUNDS
        ),
        serving,
    )
    calibration = CalibrationSet(
        version=version,
        fitted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        fitted_on=f"{len(index)} measured vLLM rows",
        default=default,
        by_gpu=by_gpu,
        by_gpu_precision=by_group,
        classes_by_gpu={
            gpu: sorted(set(rows.model_class[index][rows.gpu[index] == gpu]))
            for gpu in sorted(set(rows.gpu[index]))
        },
        widest_tp_by_gpu={
            gpu: max(rows.points[i].tp for i in index if rows.gpu[i] == gpu)
            for gpu in sorted(set(rows.gpu[index]))
        },
        serving=serving,
    )
    factors, slopes = _model_factors(rows, calibration, index, other_engines)
    return calibration.model_copy(update={"model_factors": factors, "model_slopes": slopes})


def _in_flight(rows: FitRows, index: np.ndarray) -> Array:
    """Requests in flight: a closed loop's concurrency, an open loop's by Little's law from
    what was measured; at most what the KV cache admits."""
    measured = rows.qps[index] * (rows.ttft_s[index] + (rows.osl[index] - 1) * rows.tpot_s[index])
    load = np.where(rows.closed[index], rows.concurrency[index], measured)
    return np.asarray(np.minimum(load, np.maximum(rows.cap[index], 1.0)))


def _tpot_log_residuals(
    rows: FitRows, calibration: CalibrationSet, index: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """log(measured / modelled) TPOT per architecture, before any correction, with each
    row's batch position."""
    plain = calibration.model_copy(update={"model_factors": {}, "model_slopes": {}})
    _, tpot = predict_with(rows, plain, index)
    index, tpot = index[np.isfinite(tpot)], tpot[np.isfinite(tpot)]  # none for an overload
    residual = np.clip(np.log(rows.tpot_s[index] / tpot), -1.0, 1.0)
    position = np.log(_in_flight(rows, index) / REFERENCE_BATCH)
    keys = np.array([rows.architecture[i] for i in index])
    return {key: (residual[keys == key], position[keys == key]) for key in sorted(set(keys))}


def _shrunk_line(residuals: np.ndarray, position: np.ndarray) -> tuple[float, float]:
    """Level and slope of the residuals against batch position, each shrunk towards zero
    (ridge regression)."""
    n, sx, sxx = len(residuals), position.sum(), (position**2).sum()
    normal = np.array([[n + SHRINK_ROWS, sx], [sx, sxx + SLOPE_SHRINK]])
    level, slope = np.linalg.solve(normal, [residuals.sum(), (position * residuals).sum()])
    return float(level), float(slope)


def _model_factors(
    rows: FitRows,
    calibration: CalibrationSet,
    index: np.ndarray,
    other_engines: FitRows | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """What the physics misses about an architecture's decode, seen on the GPUs it was
    measured on: a level and a slope against the batch (log TPOT residuals), shrunk
    towards zero for few rows.

    An architecture without vLLM rows borrows from other engines' rows: their residual
    plus the typical vLLM-over-other-engine offset on architectures measured with both.
    TTFT gets no such factor: cross-validation showed its architecture-specific part does
    not carry over from one GPU to another, and other engines' benchmarks time TTFT
    differently.
    """
    vllm = _tpot_log_residuals(rows, calibration, index)
    lines = {key: _shrunk_line(r, x) for key, (r, x) in vllm.items()}
    if other_engines is not None and other_engines.points:
        other = _tpot_log_residuals(
            other_engines, calibration, np.arange(len(other_engines.points))
        )
        both = [key for key in vllm if key in other]
        if both:
            offset = float(
                np.median([np.median(vllm[k][0]) - np.median(other[k][0]) for k in both])
            )
            for key, (r, x) in other.items():
                if key not in lines:
                    # A level only: other engines' batching differs from vLLM's.
                    lines[key] = (_shrunk_line(r + offset, 0 * x)[0], 0.0)
    return (
        {key: float(np.exp(level)) for key, (level, _) in lines.items()},
        {key: slope for key, (_, slope) in lines.items() if slope},
    )


def predict_with(
    rows: FitRows, calibration: CalibrationSet, index: np.ndarray | None = None
) -> tuple[Array, Array]:
    """Mean TTFT and TPOT (s) of rows under a stored calibration."""
    index = np.arange(len(rows.points)) if index is None else index
    if not len(index):
        return np.zeros(0), np.zeros(0)
    step = np.array(
        [
            _vector(calibration.step(rows.gpu[i], rows.points[i].precision, rows.model_class[i])[0])
            for i in index
        ]
    )
    ttft, tpot = predict(rows, index, step, calibration.serving)
    level, slope = np.array([calibration.correction(rows.architecture[i]) for i in index]).T
    return ttft, tpot * decode_correction(level, slope, _in_flight(rows, index))


def cross_validate(rows: FitRows, other_engines: FitRows | None = None) -> tuple[Array, Array]:
    """Held-out predictions: each (model, GPU) pair predicted by a fit whose vLLM rows never
    included it (other engines' rows, used only for relative decode speed, stay)."""
    ttft = np.zeros(len(rows.points))
    tpot = np.zeros(len(rows.points))
    for pair in sorted(set(rows.pair)):
        held_out = rows.pair == pair
        calibration = fit_calibration(rows, ~held_out, other_engines=other_engines)
        index = np.flatnonzero(held_out)
        ttft[index], tpot[index] = predict_with(rows, calibration, index)
    return ttft, tpot


def residual_summary(ratio: Array) -> Residuals:
    """Spread of predicted / measured ratios (runs predicted overloaded have none)."""
    ratio = ratio[np.isfinite(ratio)]
    return Residuals(
        count=len(ratio),
        mdape=float(np.median(np.abs(ratio - 1))),
        p10_ratio=float(np.quantile(ratio, 0.1)),
        p90_ratio=float(np.quantile(ratio, 0.9)),
    )


def interpolation_residuals(
    rows: FitRows,
    planner_predict: Callable[[MeasuredPoint, MeasuredPoint, MeasuredPoint], tuple[float, float]],
) -> tuple[Array, Array]:
    """Ratios interpolated / measured for every row with measured neighbours on both sides
    (same configuration and lengths), the row itself left out."""
    series: dict[tuple[str, str, str, int, int, int], list[MeasuredPoint]] = {}
    for p in rows.points:
        if p.closed:
            key = (p.model_id, p.gpu_id, p.precision, p.tp, p.isl, p.osl)
            series.setdefault(key, []).append(p)
    ttft, tpot = [], []
    for points in series.values():
        by_load = sorted({in_flight(p): p for p in points}.values(), key=in_flight)
        for below, middle, above in zip(by_load, by_load[1:], by_load[2:], strict=False):
            predicted_ttft, predicted_tpot = planner_predict(below, middle, above)
            ttft.append(predicted_ttft / middle.ttft_ms)
            tpot.append(predicted_tpot / middle.tpot_ms)
    return np.asarray(ttft), np.asarray(tpot)
