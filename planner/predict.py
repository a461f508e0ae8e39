"""The planner: memory fit, steady state and percentiles for a query, then what the
measurements say (measured.py). No answer is faster than the roofline (peak FLOPs and
bandwidth, no overheads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from planner.batch import Batch, column
from planner.calibration import CalibrationSet, StepCalibration, decode_correction
from planner.measured import MeasuredIndex, MeasuredPoint
from planner.memory import MemoryFit, fit
from planner.observed import ObservedFactor, adjusted
from planner.percentiles import held_tokens, samples, stats
from planner.prediction import Prediction, PredictionQuery, band
from planner.serving import SteadyState
from planner.simulate import SimulationInput, simulate
from planner.specs import GpuSpec, ModelSpec, ServingConfig
from planner.steptime import calibrate, shape

ROOFLINE = StepCalibration(
    compute_efficiency=1.0,
    moe_efficiency=1.0,
    memory_efficiency=1.0,
    link_efficiency=1.0,
    step_overhead_ms=0.0,
    kernel_overhead_us=0.0,
    eager_allreduce_overhead_us=0.0,
    allreduce_latency_us=0.0,
    request_overhead_ms=0.0,
    request_kernel_overhead_us=0.0,
)


class Plan(NamedTuple):
    """One query with everything resolved for it."""

    query: PredictionQuery
    model: ModelSpec
    gpu: GpuSpec
    cfg: ServingConfig
    memory: MemoryFit


@dataclass
class Planner:
    """The planner over one catalog: specs, measured points and a calibration."""

    models: dict[str, ModelSpec]
    gpus: dict[str, GpuSpec]
    calibration: CalibrationSet
    measured: Sequence[MeasuredPoint] = ()
    observed: Mapping[str, ObservedFactor] = field(default_factory=dict)
    """Live deployments' observed / predicted, per `planner.observed.key`."""
    _measured_index: MeasuredIndex = field(init=False)

    def __post_init__(self) -> None:
        self._measured_index = MeasuredIndex(self.measured)

    def predict(self, query: PredictionQuery) -> Prediction:
        return self.predict_many([query])[0]

    def predict_many(self, queries: Sequence[PredictionQuery]) -> list[Prediction]:
        """Predictions in the order asked; unknown names raise KeyError naming them."""
        plans = [self.plan(q) for q in queries]
        # The model at the measured loads around each query, solved in the same batch, so
        # that measurements can correct it (measured.py).
        brackets = [
            b for p in plans for b in self._measured_index.brackets(p.query, p.cfg.precision)
        ]
        modelled = self._modelled([*plans, *(self.plan(q) for q in brackets)])
        at_load = dict(zip(brackets, modelled[len(plans) :], strict=True))
        return [
            adjusted(
                self._measured_index.apply(prediction, at_load, self.calibration.residuals),
                self.observed,
            )
            for prediction in modelled[: len(plans)]
        ]

    def plan(self, q: PredictionQuery) -> Plan:
        """Everything a query resolves to: model, GPU, engine config and memory fit."""
        model, gpu = self._model(q.model_id), self._gpu(q.gpu_id)
        cfg = ServingConfig(tp=q.tp, precision=q.precision or model.precision, **q.engine.on(gpu))
        if q.max_num_seqs is None or q.max_num_batched_tokens is None:
            # The query as predicted: batch limits left to vLLM are stated as vLLM sets them.
            resolved = cfg.model_dump(include={"max_num_seqs", "max_num_batched_tokens"})
            q = q.model_copy(update=resolved)
        share = self.calibration.serving.kv_output_share
        held = held_tokens(q.isl, q.osl, q.osl_p95, share)
        memory = fit(model, gpu, cfg, int(q.isl + share * q.osl), held_tokens=held)
        if memory.fits and not gpu.supports(cfg.precision):
            memory = memory.model_copy(
                update={"fits": False, "reason": f"{gpu.id} cannot serve {cfg.precision} weights"}
            )
        return Plan(q, model, gpu, cfg, memory)

    def _modelled(self, plans: Sequence[Plan]) -> list[Prediction]:
        """The model's predictions alone, before any measurement."""
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
        return [
            result
            or Prediction(query=q, precision=cfg.precision, fits=False, memory=memory, stable=False)
            for result, (q, _, _, cfg, memory) in zip(results, plans, strict=True)
        ]

    def simulate(self, query: PredictionQuery, requests: int = 400, seed: int = 0) -> Prediction:
        """Play `requests` through a step-level simulation of one replica (simulate.py):
        slower than `predict`, but it sees bursts, length spread and preemption."""
        analytical = self.predict(query)
        if not analytical.fits:
            return analytical
        _, model, gpu, cfg, _ = self.plan(query)
        calibration, level = self.calibration.step(gpu.id, cfg.precision, model.size_class)
        coefficients = calibrate(shape([(model, gpu, cfg)]), [calibration])
        result = simulate(
            SimulationInput(
                coefficients=coefficients,
                kv_capacity_tokens=analytical.memory.kv_capacity_tokens,
                max_num_seqs=cfg.max_num_seqs,
                max_num_batched_tokens=cfg.max_num_batched_tokens,
                prefix_cache_hit_rate=query.prefix_cache_hit_rate,
                request_overhead_s=float(coefficients.request_overhead_s[0]),
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
        # The architecture's decode correction, applied as `predict` applies it.
        in_flight = result.requests_per_s * float(np.mean(result.e2e_s))
        factor = float(
            decode_correction(*self.calibration.correction(model.architecture_key), in_flight)
        )
        decode_s = (result.e2e_s - result.ttft_s) * factor
        ttft, tpot, e2e = (
            stats(values[None, :])[0]
            for values in (result.ttft_s, result.tpot_s * factor, result.ttft_s + decode_s)
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

    def extrapolation(self, model: ModelSpec, gpu: GpuSpec, tp: int, level: str) -> str | None:
        """What the calibration never saw measured for this configuration, in words (None
        when it saw the GPU, with models of this kind and this many GPUs, and the model's
        architecture)."""
        unseen = []
        if level == "default":
            unseen.append(f"no measured vLLM runs on {gpu.id}: its rates come from the datasheet")
        elif level == "pooled":
            unseen.append(
                f"no measured dense runs on {gpu.id} (only MoE): its memory rate comes from "
                "the fit over every GPU"
            )
        elif model.is_moe and "MoE" not in self.calibration.classes_by_gpu.get(gpu.id, ["MoE"]):
            unseen.append(f"no measured MoE runs on {gpu.id}: its rates come from dense models")
        if tp > 1 and level != "default" and self.calibration.widest_tp_by_gpu.get(gpu.id, 1) == 1:
            unseen.append(
                f"no measured multi-GPU runs on {gpu.id}: its all-reduces are costed from "
                "other GPUs' links"
            )
        if model.architecture_key not in self.calibration.model_factors:
            unseen.append(f"no measured runs of {model.id}'s architecture")
        return "; ".join(unseen) or None

    def _model(self, model_id: str) -> ModelSpec:
        if model_id not in self.models:
            raise KeyError(f"unknown model '{model_id}'")
        return self.models[model_id]

    def _gpu(self, gpu_id: str) -> GpuSpec:
        if gpu_id not in self.gpus:
            raise KeyError(f"unknown GPU '{gpu_id}'")
        return self.gpus[gpu_id]

    def batch(self, plans: Sequence[Plan], roofline: Sequence[bool] | None = None) -> Batch:
        """The candidates' step coefficients and lengths, ready to solve at any load.

        Where `roofline` is true a candidate gets the roofline bound (peak rates, no
        overheads, no correction) instead of its calibration.
        """
        bound = roofline or [False] * len(plans)
        calibrations = [
            ROOFLINE
            if b
            else self.calibration.step(p.gpu.id, p.cfg.precision, p.model.size_class)[0]
            for p, b in zip(plans, bound, strict=True)
        ]
        corrections = [
            (1.0, 0.0) if b else self.calibration.correction(p.model.architecture_key)
            for p, b in zip(plans, bound, strict=True)
        ]
        return Batch(
            coefficients=calibrate(shape([(p.model, p.gpu, p.cfg) for p in plans]), calibrations),
            isl=column([p.query.isl for p in plans]),
            osl=column([p.query.osl for p in plans]),
            budget=column([p.cfg.max_num_batched_tokens for p in plans]),
            cap=column([max(p.memory.max_concurrent_sequences, 1) for p in plans]),
            arrival_cv2=column([p.query.arrival_cv2 for p in plans]),
            serving=self.calibration.serving,
            isl_p95=column([p.query.isl_p95 or p.query.isl for p in plans]),
            osl_p95=column([p.query.osl_p95 or p.query.osl for p in plans]),
            tpot_factor=column([level for level, _ in corrections]),
            tpot_slope=column([slope for _, slope in corrections]),
            prefill_share=column([p.cfg.prefill_share for p in plans]),
            fixed_lengths=np.array([p.query.fixed_lengths for p in plans], dtype=bool),
        )

    def steady_states(
        self, plans: Sequence[Plan], closed: bool, roofline: Sequence[bool] | None = None
    ) -> SteadyState:
        load = [(p.query.concurrency if closed else p.query.qps) or 0.0 for p in plans]
        return self.batch(plans, roofline).solve(closed, column(load))

    def _model_predictions(
        self,
        plans: Sequence[Plan],
        closed: bool,
    ) -> list[Prediction]:
        # The model and its roofline bound, solved together.
        n = len(plans)
        batch = self.batch([*plans, *plans], [False] * n + [True] * n)
        load = [(p.query.concurrency if closed else p.query.qps) or 0.0 for p in plans]
        both = batch.solve(closed, column([*load, *load]))
        state, bound = both.take(slice(0, n)), both.take(slice(n, 2 * n))
        # The most an open loop sustains: past it the queue grows without bound, and no
        # latency describes a steady state. (A closed loop limits itself.)
        limit = np.full(n, np.nan) if closed else batch.take(np.arange(n)).max_rates()[0]
        stable = (
            np.ones(n, dtype=bool)
            if closed
            else state.stable.astype(bool) & (column(load) <= limit)
        )
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
        tpot_stats = stats(np.maximum(tpot, tpot_floor[:, None]), tpot_mean, ordered=True)
        e2e_stats = stats(e2e, ttft_mean + (osl - 1) * tpot_mean)
        rate = np.minimum(state.requests_per_s, bound.requests_per_s if closed else limit)
        predictions = []
        for i, (q, model, gpu, cfg, memory) in enumerate(plans):
            level = self.calibration.step(gpu.id, cfg.precision, model.size_class)[1]
            extrapolated = self.extrapolation(model, gpu, cfg.tp, level)
            ttft_residuals, tpot_residuals, basis = self.calibration.band_residuals(
                model.size_class, extrapolated is not None
            )
            latency = (
                {
                    "ttft_ms": ttft_stats[i],
                    "tpot_ms": tpot_stats[i],
                    "e2e_ms": e2e_stats[i],
                    "uncertainty": band(
                        ttft_stats[i].mean,
                        tpot_stats[i].mean,
                        ttft_residuals,
                        tpot_residuals,
                        basis,
                    ),
                }
                if stable[i]
                else {}
            )
            predictions.append(
                Prediction(
                    query=q,
                    precision=cfg.precision,
                    fits=True,
                    memory=memory,
                    stable=bool(stable[i]),
                    max_sustainable_qps=None if closed else float(limit[i]),
                    requests_per_s=float(rate[i]),
                    output_tokens_per_s=float(rate[i] * q.osl),
                    calibration=level,
                    extrapolated=extrapolated,
                    **latency,
                )
            )
        return predictions
