"""Every candidate deployment of a catalog, laid out as arrays for fast searches."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from planner.batch import Batch
from planner.calibration import StepCalibration
from planner.memory import (
    kv_bytes_per_token_per_gpu,
    overhead_bytes,
    recurrent_state_bytes,
    sequence_bytes,
    usable_bytes,
    weight_bytes_per_gpu,
    window_kv_bytes_per_token_per_gpu,
)
from planner.predict import Planner
from planner.requirements import ARRIVAL_CV2, SearchConstraints, TrafficProfile
from planner.specs import EngineSettings, Frozen, GpuSpec, ModelSpec, Precision, ServingConfig
from planner.steptime import StepShape, apply, shape

TENSOR_PARALLEL = (1, 2, 4, 8)
MAX_INDEXES = 8
"""Indexes kept (one per planner and engine settings); the oldest goes first."""


class Candidate(Frozen):
    model_id: str
    gpu_id: str
    tp: int
    precision: Precision


def precisions_for(model: ModelSpec, gpu: GpuSpec) -> list[Precision]:
    """The checkpoint's own precision, plus online FP8 for 16-bit checkpoints where the GPU
    has FP8 tensor cores (vLLM `--quantization fp8`)."""
    options: list[Precision] = [model.precision]
    if model.precision in ("bf16", "fp16") and gpu.fp8_tflops is not None:
        options.append("fp8")
    return options


REMEMBERED_RATES = 128
"""Capacity searches an index remembers (each about 50 kB)."""


def candidates(planner: Planner, c: SearchConstraints) -> list[Candidate]:
    """Every (model, GPU, precision, TP) the constraints allow, before any memory check."""
    index = CatalogIndex.of(planner)
    return [index.candidates[i] for i in np.flatnonzero(index.allowed(c))]


@dataclass
class CatalogIndex:
    """Every candidate of a planner's catalog, with what the search needs as arrays.

    Built once per planner (seconds of Python); each search then filters and solves with
    array operations only.
    """

    planner: Planner
    candidates: list[Candidate]
    configs: list[ServingConfig]
    model_ids: np.ndarray
    gpu_ids: np.ndarray
    precisions: np.ndarray
    tp: np.ndarray
    shape: StepShape
    parameters: dict[str, np.ndarray]
    """Calibration parameters per candidate, by name."""
    usable_bytes: np.ndarray
    fixed_bytes: np.ndarray
    """Weights and runtime overhead per GPU."""
    kv_bytes_per_token: np.ndarray
    window_kv_bytes_per_token: np.ndarray
    window_tokens: np.ndarray
    max_context: np.ndarray
    structural: np.ndarray
    """False where TP cannot split the model or exceeds a node."""
    tpot_factor: np.ndarray
    tpot_slope: np.ndarray
    """The calibration's decode correction for each candidate's architecture."""
    max_num_seqs: np.ndarray
    max_num_batched_tokens: np.ndarray
    state_bytes: np.ndarray
    """Fixed per-sequence state (linear-attention layers) per GPU."""
    engine: EngineSettings
    """The engine settings every candidate is laid out with."""
    _rates: OrderedDict[Hashable, tuple[np.ndarray, list[str]]] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def max_rates(
        self, key: Hashable, compute: Callable[[], tuple[np.ndarray, list[str]]]
    ) -> tuple[np.ndarray, list[str]]:
        """The most a replica of each candidate sustains within the SLOs, and what binds it,
        remembered by `key` (the candidates, the traffic's shape and the SLOs): it does not
        depend on the load, so a search for another head count sizes from memory."""
        with self._lock:
            found = self._rates.get(key)
            if found is not None:
                self._rates.move_to_end(key)
                return found
        found = compute()  # outside the lock: two searches may race, both right
        with self._lock:
            self._rates[key] = found
            while len(self._rates) > REMEMBERED_RATES:
                self._rates.popitem(last=False)
        return found

    @classmethod
    def of(cls, planner: Planner, engine: EngineSettings | None = None) -> CatalogIndex:
        """The index of `planner`'s catalog under `engine` (vLLM's defaults unless given),
        built on first use and kept for the planner's lifetime."""
        engine = engine or EngineSettings()
        key = (id(planner), engine)
        cached = _INDEXES.get(key)
        if cached is None or cached.planner is not planner:
            cached = _INDEXES[key] = cls.build(planner, engine)
            while len(_INDEXES) > MAX_INDEXES:
                del _INDEXES[next(iter(_INDEXES))]
        return cached

    @classmethod
    def build(cls, planner: Planner, engine: EngineSettings | None = None) -> CatalogIndex:
        engine = engine or EngineSettings()
        found: list[tuple[ModelSpec, GpuSpec, ServingConfig, Candidate]] = []
        for m in planner.models.values():
            for g in planner.gpus.values():
                settings = engine.on(g)
                for p in precisions_for(m, g):
                    if not g.supports(p):
                        continue
                    for tp in TENSOR_PARALLEL:
                        if tp <= g.gpus_per_node:
                            cfg = ServingConfig(tp=tp, precision=p, **settings)
                            found.append(
                                (
                                    m,
                                    g,
                                    cfg,
                                    Candidate.model_construct(
                                        model_id=m.id, gpu_id=g.id, tp=tp, precision=p
                                    ),
                                )
                            )
        calibrations = [
            planner.calibration.step(g.id, cfg.precision, m.size_class)[0] for m, g, cfg, _ in found
        ]

        def column(values: Sequence[object]) -> np.ndarray:
            return np.asarray(values)

        return cls(
            planner=planner,
            candidates=[cand for *_, cand in found],
            configs=[cfg for _, _, cfg, _ in found],
            model_ids=column([m.id for m, *_ in found]),
            gpu_ids=column([g.id for _, g, *_ in found]),
            precisions=column([cfg.precision for _, _, cfg, _ in found]),
            tp=column([cfg.tp for _, _, cfg, _ in found]),
            shape=shape([(m, g, cfg) for m, g, cfg, _ in found]),
            parameters={
                name: np.fromiter((getattr(c, name) for c in calibrations), np.float64)
                for name in StepCalibration.model_fields
            },
            usable_bytes=column([usable_bytes(g, cfg) for _, g, cfg, _ in found]),
            fixed_bytes=column(
                [weight_bytes_per_gpu(m, cfg) + overhead_bytes(m, cfg) for m, _, cfg, _ in found]
            ),
            kv_bytes_per_token=column(
                [kv_bytes_per_token_per_gpu(m, cfg) for m, _, cfg, _ in found]
            ),
            window_kv_bytes_per_token=column(
                [window_kv_bytes_per_token_per_gpu(m, cfg) for m, _, cfg, _ in found]
            ),
            window_tokens=column([m.sliding_window_tokens or 0 for m, *_ in found]),
            max_context=column([m.max_context_tokens for m, *_ in found]),
            structural=column(
                [
                    cfg.tp <= g.gpus_per_node and m.num_attention_heads % cfg.tp == 0
                    for m, g, cfg, _ in found
                ]
            ),
            tpot_factor=column(
                [planner.calibration.correction(m.architecture_key)[0] for m, *_ in found]
            ),
            tpot_slope=column(
                [planner.calibration.correction(m.architecture_key)[1] for m, *_ in found]
            ),
            max_num_seqs=column([cfg.max_num_seqs for _, _, cfg, _ in found]),
            max_num_batched_tokens=column(
                [float(cfg.max_num_batched_tokens) for _, _, cfg, _ in found]
            ),
            state_bytes=column([recurrent_state_bytes(m, cfg.tp) for m, _, cfg, _ in found]),
            engine=engine,
        )

    def allowed(self, c: SearchConstraints) -> np.ndarray:
        mask = np.ones(len(self.candidates), dtype=bool)
        if c.models is not None:
            mask &= np.isin(self.model_ids, c.models)
        if c.gpus is not None:
            mask &= np.isin(self.gpu_ids, c.gpus)
        if c.precisions is not None:
            mask &= np.isin(self.precisions, c.precisions)
        mask &= ~np.isin(self.model_ids, c.excluded_models)
        mask &= ~np.isin(self.gpu_ids, c.excluded_gpus)
        return np.asarray(mask & (self.tp <= c.max_tp))

    def sequences(self, context_tokens: int) -> np.ndarray:
        """Sequences of `context_tokens` each candidate's KV cache holds (vectorised
        `memory.fit`)."""
        kv_total = np.maximum(self.usable_bytes - self.fixed_bytes, 0.0)
        per_sequence = sequence_bytes(
            self.kv_bytes_per_token,
            self.window_kv_bytes_per_token,
            self.window_tokens,
            self.state_bytes,
            context_tokens,
        )
        fits = (
            self.structural
            & (context_tokens <= self.max_context)
            & (self.fixed_bytes < self.usable_bytes)
        )
        longest = self.engine.max_model_len
        if longest is not None:
            # vLLM refuses to start unless its KV cache holds one sequence of max_model_len.
            fits &= (
                (context_tokens <= longest)
                & (longest <= self.max_context)
                & (
                    kv_total
                    >= sequence_bytes(
                        self.kv_bytes_per_token,
                        self.window_kv_bytes_per_token,
                        self.window_tokens,
                        self.state_bytes,
                        longest,
                    )
                )
            )
        return np.where(fits, np.floor(kv_total / np.maximum(per_sequence, 1e-9)), 0.0)

    def batch(self, index: np.ndarray, traffic: TrafficProfile, cap: np.ndarray) -> Batch:
        n = len(index)

        def constant(value: float) -> np.ndarray:
            return np.full(n, float(value))

        return Batch(
            coefficients=apply(
                self.shape.take(index), {k: v[index] for k, v in self.parameters.items()}
            ),
            isl=constant(traffic.prompt_tokens_mean),
            osl=constant(traffic.output_tokens_mean),
            budget=self.max_num_batched_tokens[index],
            cap=np.maximum(cap, 1.0),
            arrival_cv2=constant(ARRIVAL_CV2[traffic.burstiness]),
            serving=self.planner.calibration.serving,
            isl_p95=constant(traffic.prompt_tokens_p95 or traffic.prompt_tokens_mean),
            osl_p95=constant(traffic.output_tokens_p95 or traffic.output_tokens_mean),
            tpot_factor=self.tpot_factor[index],
            tpot_slope=self.tpot_slope[index],
            prefill_share=constant(self.engine.prefill_share),
            # Production traffic (an open loop) has no benchmark's fixed lengths.
            fixed_lengths=np.zeros(n, dtype=bool),
        )


_INDEXES: dict[tuple[int, EngineSettings], CatalogIndex] = {}
