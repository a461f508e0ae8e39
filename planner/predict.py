"""One prediction: memory fit, steady state, percentiles, then what measurements say.

Order of trust: a measured row with the same configuration wins (source "measured"); with
measured rows at the same lengths on both sides of the asked load, the model is corrected
by the measured/model ratio interpolated in log(load) (source "interpolated"); otherwise
the calibrated model stands alone (source "modelled"). No answer is faster than the
roofline (peak FLOPs and bandwidth, no overheads).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

import numpy as np
from pydantic import model_validator

from planner.calibration import CalibrationSet, Residuals, ServingCalibration, StepCalibration
from planner.measured import MeasuredPoint
from planner.memory import MemoryFit, fit
from planner.percentiles import LatencyStats, samples, stats
from planner.serving import SteadyState, closed_loop, open_loop
from planner.simulate import SimulationInput, simulate
from planner.specs import Frozen, GpuSpec, ModelSpec, Precision, ServingConfig
from planner.steptime import StepCoefficients, calibrate, shape

Source = Literal["measured", "interpolated", "modelled"]
ROOFLINE = StepCalibration(
    compute_efficiency=1.0,
    moe_efficiency=1.0,
    memory_efficiency=1.0,
    link_efficiency=1.0,
    step_overhead_ms=0.0,
    kernel_overhead_us=0.0,
    eager_kernel_overhead_us=0.0,
    allreduce_latency_us=0.0,
    request_overhead_ms=0.0,
)


class PredictionQuery(Frozen):
    model_id: str
    gpu_id: str
    tp: int = 1
    precision: Precision | None = None
    """None: the checkpoint's own precision."""
    isl: int
    osl: int
    isl_p95: int | None = None
    osl_p95: int | None = None
    concurrency: int | None = None
    """Closed loop: requests always in flight."""
    qps: float | None = None
    """Open loop: arrivals per second."""
    arrival_cv2: float = 1.0
    """Squared coefficient of variation of inter-arrival times: 1 Poisson, > 1 bursty."""
    max_num_seqs: int = 1024
    max_num_batched_tokens: int = 8192
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"

    @model_validator(mode="after")
    def _one_load(self) -> PredictionQuery:
        if (self.concurrency is None) == (self.qps is None):
            raise ValueError("give exactly one of concurrency (closed loop) or qps (open loop)")
        for name in ("isl", "osl", "tp"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.qps is not None and self.qps <= 0:
            raise ValueError("qps must be > 0")
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


class Plan(NamedTuple):
    """One query with everything resolved for it."""

    query: PredictionQuery
    model: ModelSpec
    gpu: GpuSpec
    cfg: ServingConfig
    memory: MemoryFit


def _column(values: Sequence[float]) -> np.ndarray:
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

    def take(self, index: np.ndarray) -> Batch:
        """The same batch for a subset of its candidates."""
        return Batch(
            coefficients=StepCoefficients(
                **{
                    name: getattr(self.coefficients, name)[index]
                    for name in StepCoefficients.__dataclass_fields__
                }
            ),
            isl=self.isl[index],
            osl=self.osl[index],
            budget=self.budget[index],
            cap=self.cap[index],
            arrival_cv2=self.arrival_cv2[index],
            serving=self.serving,
            tpot_factor=self.tpot_factor[index],
            isl_p95=self.isl_p95[index],
            osl_p95=self.osl_p95[index],
        )

    def solve(self, closed: bool, load: np.ndarray) -> SteadyState:
        """Closed loop at `load` requests in flight, or open loop at `load` requests/s."""
        c = self.coefficients
        if closed:
            state = closed_loop(c, self.isl, self.osl, load, self.budget, self.cap, self.serving)
        else:
            state = open_loop(
                c, self.isl, self.osl, load, self.budget, self.cap, self.serving, self.arrival_cv2
            )
        if np.all(self.tpot_factor == 1.0):
            return state
        # The architecture's decode correction (calibration.model_factors), applied as in
        # the fit: to TPOT, and to what a closed loop's pace follows from it.
        tpot = state.tpot_s * self.tpot_factor
        rate = state.requests_per_s
        if closed:
            rate = state.running / (state.ttft_s + (self.osl - 1) * tpot)
        return replace(
            state,
            tpot_s=tpot,
            tpot_spread_s=state.tpot_spread_s * self.tpot_factor,
            requests_per_s=rate,
        )


@dataclass
class Planner:
    """The planner over one catalog: specs, measured points and a calibration."""

    models: dict[str, ModelSpec]
    gpus: dict[str, GpuSpec]
    calibration: CalibrationSet
    measured: Sequence[MeasuredPoint] = ()
    _by_config: dict[tuple[str, str, str, int, int, int], list[MeasuredPoint]] = field(
        default_factory=dict, init=False
    )

    def __post_init__(self) -> None:
        grouped: dict[tuple[str, str, str, int, int, int], list[MeasuredPoint]] = defaultdict(list)
        for p in self.measured:
            grouped[(p.model_id, p.gpu_id, p.precision, p.tp, p.isl, p.osl)].append(p)
        self._by_config = {k: sorted(v, key=lambda p: p.concurrency) for k, v in grouped.items()}

    def predict(self, query: PredictionQuery) -> Prediction:
        return self.predict_many([query])[0]

    def predict_many(self, queries: Sequence[PredictionQuery]) -> list[Prediction]:
        """Predictions in the order asked; unknown names raise KeyError naming them."""
        plans: list[Plan] = []
        for q in queries:
            model, gpu = self._model(q.model_id), self._gpu(q.gpu_id)
            cfg = ServingConfig(
                tp=q.tp,
                precision=q.precision or model.precision,
                max_num_seqs=q.max_num_seqs,
                max_num_batched_tokens=q.max_num_batched_tokens,
                gpu_memory_utilization=q.gpu_memory_utilization,
                kv_cache_dtype=q.kv_cache_dtype,
            )
            context = int(q.isl + self.calibration.serving.kv_output_share * q.osl)
            memory = fit(model, gpu, cfg, context)
            if memory.fits and not gpu.supports(cfg.precision):
                memory = memory.model_copy(
                    update={
                        "fits": False,
                        "reason": f"{gpu.id} cannot serve {cfg.precision} weights",
                    }
                )
            plans.append(Plan(q, model, gpu, cfg, memory))
        results: list[Prediction | None] = [None] * len(plans)
        for closed in (True, False):
            index = [
                i
                for i, (q, *_, m) in enumerate(plans)
                if m.fits and (q.concurrency is not None) == closed
            ]
            if index:
                for i, prediction in zip(
                    index, self._model_predictions([plans[i] for i in index], closed), strict=True
                ):
                    results[i] = prediction
        for i, (q, _, _, cfg, memory) in enumerate(plans):
            if results[i] is None:
                results[i] = Prediction(
                    query=q, precision=cfg.precision, fits=False, memory=memory, stable=False
                )
        return [self._with_measurements(p) for p in results if p is not None]

    def simulate(self, query: PredictionQuery, requests: int = 400, seed: int = 0) -> Prediction:
        """Play `requests` through a step-level simulation of one replica (simulate.py):
        slower than `predict`, but it sees bursts, length spread and preemption."""
        analytical = self.predict(query)
        if not analytical.fits:
            return analytical
        model, gpu = self._model(query.model_id), self._gpu(query.gpu_id)
        cfg = ServingConfig(
            tp=query.tp,
            precision=analytical.precision,
            max_num_seqs=query.max_num_seqs,
            max_num_batched_tokens=query.max_num_batched_tokens,
            gpu_memory_utilization=query.gpu_memory_utilization,
            kv_cache_dtype=query.kv_cache_dtype,
        )
        calibration, level = self.calibration.step(gpu.id, cfg.precision)
        coefficients = calibrate(shape([(model, gpu, cfg)]), [calibration])
        result = simulate(
            SimulationInput(
                coefficients=coefficients,
                kv_capacity_tokens=analytical.memory.kv_capacity_tokens,
                max_num_seqs=query.max_num_seqs,
                max_num_batched_tokens=query.max_num_batched_tokens,
                request_overhead_s=calibration.request_overhead_ms / 1e3,
                isl_mean=query.isl,
                osl_mean=query.osl,
                isl_p95=query.isl_p95,
                osl_p95=query.osl_p95,
                qps=query.qps,
                arrival_cv2=query.arrival_cv2,
                concurrency=query.concurrency,
                requests=requests,
                seed=seed,
            )
        )
        ttft, tpot, e2e = (
            stats(values[None, :])[0] for values in (result.ttft_s, result.tpot_s, result.e2e_s)
        )
        return analytical.model_copy(
            update={
                "ttft_ms": ttft,
                "tpot_ms": tpot,
                "e2e_ms": e2e,
                "stable": not result.saturated,
                "requests_per_s": result.requests_per_s,
                "output_tokens_per_s": result.requests_per_s * query.osl,
                "source": "modelled",
                "measured_references": [],
                "calibration": level,
                "method": "simulated",
            }
        )

    def _model(self, model_id: str) -> ModelSpec:
        if model_id not in self.models:
            raise KeyError(f"unknown model '{model_id}'")
        return self.models[model_id]

    def _gpu(self, gpu_id: str) -> GpuSpec:
        if gpu_id not in self.gpus:
            raise KeyError(f"unknown GPU '{gpu_id}'")
        return self.gpus[gpu_id]

    def batch(
        self, plans: Sequence[Plan], calibrations: Sequence[StepCalibration] | None = None
    ) -> Batch:
        """The candidates' step coefficients and lengths, ready to solve at any load.

        With explicit `calibrations` (the roofline bound) no architecture correction applies.
        """
        factors = [1.0] * len(plans)
        if calibrations is None:
            calibrations = [self.calibration.step(p.gpu.id, p.cfg.precision)[0] for p in plans]
            factors = [
                self.calibration.model_factors.get(p.model.architecture_key, 1.0) for p in plans
            ]
        return Batch(
            coefficients=calibrate(shape([(p.model, p.gpu, p.cfg) for p in plans]), calibrations),
            isl=_column([p.query.isl for p in plans]),
            osl=_column([p.query.osl for p in plans]),
            budget=_column([p.cfg.max_num_batched_tokens for p in plans]),
            cap=_column([max(p.memory.max_concurrent_sequences, 1) for p in plans]),
            arrival_cv2=_column([p.query.arrival_cv2 for p in plans]),
            serving=self.calibration.serving,
            isl_p95=_column([p.query.isl_p95 or p.query.isl for p in plans]),
            osl_p95=_column([p.query.osl_p95 or p.query.osl for p in plans]),
            tpot_factor=_column(factors),
        )

    def steady_states(
        self,
        plans: Sequence[Plan],
        closed: bool,
        calibrations: Sequence[StepCalibration] | None = None,
    ) -> SteadyState:
        load = [(p.query.concurrency if closed else p.query.qps) or 0.0 for p in plans]
        return self.batch(plans, calibrations).solve(closed, _column(load))

    def _model_predictions(
        self,
        plans: Sequence[Plan],
        closed: bool,
    ) -> list[Prediction]:
        state = self.steady_states(plans, closed)
        bound = self.steady_states(plans, closed, [ROOFLINE] * len(plans))
        osl = np.asarray([q.osl for q, *_ in plans], dtype=np.float64)
        isl = np.asarray([q.isl for q, *_ in plans], dtype=np.float64)
        isl_p95 = np.asarray([q.isl_p95 or q.isl for q, *_ in plans], dtype=np.float64)
        osl_p95 = np.asarray([q.osl_p95 or q.osl for q, *_ in plans], dtype=np.float64)
        ttft, tpot, e2e = samples(
            state, self.calibration.serving, osl, closed, isl, isl_p95, osl_p95
        )
        # Roofline floors: the model may be optimistic, physics may not be beaten.
        tpot_floor = bound.tpot_s
        ttft_floor = bound.own_prefill_s
        ttft_mean = np.maximum(state.ttft_s, ttft_floor)
        tpot_mean = np.maximum(state.tpot_s, tpot_floor)
        ttft_stats = stats(np.maximum(ttft, ttft_floor[:, None]), ttft_mean)
        tpot_stats = stats(np.maximum(tpot, tpot_floor[:, None]), tpot_mean)
        e2e_stats = stats(e2e, ttft_mean + (osl - 1) * tpot_mean)
        rate = np.minimum(state.requests_per_s, bound.requests_per_s if closed else np.inf)
        residuals = self.calibration.residuals
        predictions = []
        for i, (q, _, gpu, cfg, memory) in enumerate(plans):
            level = self.calibration.step(gpu.id, cfg.precision)[1]
            predictions.append(
                Prediction(
                    query=q,
                    precision=cfg.precision,
                    fits=True,
                    memory=memory,
                    stable=bool(state.stable[i]),
                    ttft_ms=ttft_stats[i],
                    tpot_ms=tpot_stats[i],
                    e2e_ms=e2e_stats[i],
                    requests_per_s=float(rate[i]),
                    output_tokens_per_s=float(rate[i] * q.osl),
                    uncertainty=_band(
                        ttft_stats[i].mean,
                        tpot_stats[i].mean,
                        residuals.get("ttft"),
                        residuals.get("tpot"),
                        "cross-validated residuals, held-out (model, GPU) pairs",
                    ),
                    calibration=level,
                )
            )
        return predictions

    def _with_measurements(self, prediction: Prediction) -> Prediction:
        q = prediction.query
        if not prediction.fits or q.concurrency is None or prediction.ttft_ms is None:
            return prediction
        assert prediction.tpot_ms is not None and prediction.e2e_ms is not None
        points = self._by_config.get(
            (q.model_id, q.gpu_id, prediction.precision, q.tp, q.isl, q.osl), []
        )
        exact = [p for p in points if p.concurrency == q.concurrency]
        if exact:
            ttft_ratio = float(np.mean([p.ttft_ms for p in exact])) / prediction.ttft_ms.mean
            tpot_ratio = float(np.mean([p.tpot_ms for p in exact])) / prediction.tpot_ms.mean
            source: Source = "measured"
            used = exact
        else:
            below = [p for p in points if p.concurrency < q.concurrency]
            above = [p for p in points if p.concurrency > q.concurrency]
            if not below or not above:
                return prediction
            used = [below[-1], above[0]]
            modelled = self.predict_many(
                [q.model_copy(update={"concurrency": p.concurrency}) for p in used]
            )
            weight = (math.log(q.concurrency) - math.log(used[0].concurrency)) / (
                math.log(used[1].concurrency) - math.log(used[0].concurrency)
            )

            def blend(measured: list[float], model: list[float]) -> float:
                logs = [math.log(a / b) for a, b in zip(measured, model, strict=True)]
                return math.exp(logs[0] + weight * (logs[1] - logs[0]))

            ttft_ratio = blend(
                [p.ttft_ms for p in used], [m.ttft_ms.mean for m in modelled if m.ttft_ms]
            )
            tpot_ratio = blend(
                [p.tpot_ms for p in used], [m.tpot_ms.mean for m in modelled if m.tpot_ms]
            )
            source = "interpolated"
        ttft = prediction.ttft_ms.scaled(ttft_ratio)
        tpot = prediction.tpot_ms.scaled(tpot_ratio)
        e2e_ratio = (ttft.mean + (q.osl - 1) * tpot.mean) / prediction.e2e_ms.mean
        band: Uncertainty | None
        if source == "measured":
            band = Uncertainty(
                ttft_low_ms=ttft.mean,
                ttft_high_ms=ttft.mean,
                tpot_low_ms=tpot.mean,
                tpot_high_ms=tpot.mean,
                basis="measured row(s) with this exact configuration",
            )
        else:
            band = _band(
                ttft.mean,
                tpot.mean,
                self.calibration.residuals.get("ttft_interpolated"),
                self.calibration.residuals.get("tpot_interpolated"),
                "interpolation residuals, each measured row left out in turn",
            )
        return prediction.model_copy(
            update={
                "ttft_ms": ttft,
                "tpot_ms": tpot,
                "e2e_ms": prediction.e2e_ms.scaled(e2e_ratio),
                "requests_per_s": (prediction.requests_per_s or 0) / e2e_ratio,
                "output_tokens_per_s": (prediction.output_tokens_per_s or 0) / e2e_ratio,
                "source": source,
                "measured_references": [p.reference for p in used],
                "uncertainty": band,
            }
        )


def _band(
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
