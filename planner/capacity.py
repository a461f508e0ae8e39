"""Layer 4: how many replicas of which configuration, and what they cost.

For every (model, GPU, TP, precision) the search finds the largest request rate one replica
sustains with every SLO percentile met (a vectorised bisection over all candidates at
once), then sizes replicas for peak load with headroom and prices them from dated quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from planner.calibration import StepCalibration
from planner.memory import (
    GB,
    fit,
    kv_bytes_per_token_per_gpu,
    overhead_bytes,
    weight_bytes_per_gpu,
    window_kv_bytes_per_token_per_gpu,
)
from planner.percentiles import LatencyStats, percentile, samples, stats
from planner.predict import Batch, Planner, PredictionQuery
from planner.specs import Frozen, GpuSpec, ModelSpec, Precision, ServingConfig
from planner.steptime import StepShape, apply, shape, step_seconds

HOURS_PER_MONTH = 730.0
TENSOR_PARALLEL = (1, 2, 4, 8)
BISECTION_STEPS = 11
"""Halvings of log(QPS) between the trickle and the bound: about 1 % resolution."""
TRICKLE = 1e-4
SEARCH_SAMPLES = 32
PEAK_FACTOR_CV2: dict[str, float] = {"low": 1.0, "medium": 2.0, "high": 4.0}
"""Arrival variability (squared CV) assumed for each burstiness level: Poisson and burstier."""

PricingKind = Literal["on_demand", "spot", "committed_1y", "committed_3y", "on_prem"]


class TrafficProfile(Frozen):
    prompt_tokens_mean: int = Field(ge=1)
    prompt_tokens_p95: int | None = Field(default=None, ge=1)
    output_tokens_mean: int = Field(ge=1)
    output_tokens_p95: int | None = Field(default=None, ge=1)
    steady_qps: float = Field(gt=0)
    peak_qps: float = Field(gt=0)
    burstiness: Literal["low", "medium", "high"] = "medium"


class SLOTargets(Frozen):
    ttft_p90_ms: float | None = Field(default=None, gt=0)
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)


class SearchConstraints(Frozen):
    models: list[str] | None = None
    """Only these catalog ids (None: the whole catalog)."""
    excluded_models: list[str] = []
    gpus: list[str] | None = None
    excluded_gpus: list[str] = []
    precisions: list[Precision] | None = None
    max_tp: int = Field(default=8, ge=1)
    pricing: PricingKind = "on_demand"
    provider: str | None = None
    max_monthly_cost_usd: float | None = Field(default=None, gt=0)


class CapacitySpec(Frozen):
    traffic: TrafficProfile
    slo: SLOTargets = SLOTargets()
    constraints: SearchConstraints = SearchConstraints()
    headroom: float = Field(default=0.2, ge=0, lt=1)
    """Share of per-replica capacity held back when sizing (0.2 sizes replicas to 80 %)."""
    simulate_top: int = Field(default=3, ge=0, le=20)
    """Check this many of the best options by discrete-event simulation at peak load."""


class GpuPrice(Frozen):
    gpu_id: str
    provider: str
    pricing: PricingKind
    usd_per_gpu_hour: float
    source: str
    retrieved: str


class Candidate(Frozen):
    model_id: str
    gpu_id: str
    tp: int
    precision: Precision


class CapacityOption(Candidate):
    max_qps_per_replica: float
    replicas_for_peak: int
    min_replicas: int
    gpus_total: int
    ttft_ms: LatencyStats
    tpot_ms: LatencyStats
    e2e_ms: LatencyStats
    """At the per-replica load of peak traffic."""
    price: GpuPrice | None
    usd_per_hour: float | None
    """All peak replicas running."""
    usd_per_month: float | None
    usd_per_month_steady: float | None
    """Autoscaled to steady load."""
    usd_per_1k_tokens: float | None
    """Prompt plus output tokens, at steady load."""
    binding_slo: str
    """What limits one replica's load: ttft, tpot, e2e, memory or stability."""
    simulated_ttft_ms: LatencyStats | None = None
    simulated_tpot_ms: LatencyStats | None = None
    simulated_e2e_ms: LatencyStats | None = None
    simulated_slo_met: bool | None = None
    """Whether the simulation at peak load (bursts, length spread, preemption) met every SLO;
    None when the option was not simulated."""


class Infeasible(Candidate):
    reason: str


class CapacityResult(Frozen):
    options: list[CapacityOption]
    infeasible: list[Infeasible]


def precisions_for(model: ModelSpec, gpu: GpuSpec) -> list[Precision]:
    """The checkpoint's own precision, plus online FP8 for 16-bit checkpoints where the GPU
    has FP8 tensor cores (vLLM `--quantization fp8`)."""
    options: list[Precision] = [model.precision]
    if model.precision in ("bf16", "fp16") and gpu.fp8_tflops is not None:
        options.append("fp8")
    return options


def candidates(planner: Planner, c: SearchConstraints) -> list[Candidate]:
    """Every (model, GPU, precision, TP) the constraints allow, before any memory check."""
    index = CatalogIndex.of(planner)
    return [index.candidates[i] for i in np.flatnonzero(index.allowed(c))]


def cheapest_prices(prices: Sequence[GpuPrice], c: SearchConstraints) -> dict[str, GpuPrice]:
    """The cheapest matching quote per GPU (GPUs with none are absent: price unknown)."""
    cheapest: dict[str, GpuPrice] = {}
    for p in prices:
        if p.pricing != c.pricing or (c.provider is not None and p.provider != c.provider):
            continue
        best = cheapest.get(p.gpu_id)
        if best is None or p.usd_per_gpu_hour < best.usd_per_gpu_hour:
            cheapest[p.gpu_id] = p
    return cheapest


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
    """The calibration's decode correction for each candidate's architecture."""

    @classmethod
    def of(cls, planner: Planner) -> CatalogIndex:
        cached = _INDEXES.get(id(planner))
        if cached is None or cached.planner is not planner:
            cached = _INDEXES[id(planner)] = cls.build(planner)
        return cached

    @classmethod
    def build(cls, planner: Planner) -> CatalogIndex:
        found: list[tuple[ModelSpec, GpuSpec, ServingConfig, Candidate]] = []
        for m in planner.models.values():
            for g in planner.gpus.values():
                for p in precisions_for(m, g):
                    if not g.supports(p):
                        continue
                    for tp in TENSOR_PARALLEL:
                        if tp <= g.gpus_per_node:
                            cfg = ServingConfig(tp=tp, precision=p)
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
        calibrations = [planner.calibration.step(g.id, cfg.precision)[0] for _, g, cfg, _ in found]

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
            usable_bytes=column(
                [g.memory_gb * GB * cfg.gpu_memory_utilization for _, g, cfg, _ in found]
            ),
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
                [planner.calibration.model_factors.get(m.architecture_key, 1.0) for m, *_ in found]
            ),
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
        per_sequence = (
            self.kv_bytes_per_token * context_tokens
            + self.window_kv_bytes_per_token * np.minimum(context_tokens, self.window_tokens)
        )
        fits = (
            self.structural
            & (context_tokens <= self.max_context)
            & (self.fixed_bytes < self.usable_bytes)
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
            budget=np.asarray([self.configs[i].max_num_batched_tokens for i in index], float),
            cap=np.maximum(cap, 1.0),
            arrival_cv2=constant(PEAK_FACTOR_CV2[traffic.burstiness]),
            serving=self.planner.calibration.serving,
            isl_p95=constant(traffic.prompt_tokens_p95 or traffic.prompt_tokens_mean),
            osl_p95=constant(traffic.output_tokens_p95 or traffic.output_tokens_mean),
            tpot_factor=self.tpot_factor[index],
        )


_INDEXES: dict[int, CatalogIndex] = {}


def search(planner: Planner, spec: CapacitySpec, prices: Sequence[GpuPrice]) -> CapacityResult:
    t = spec.traffic
    index = CatalogIndex.of(planner)
    allowed = np.flatnonzero(index.allowed(spec.constraints))
    p95_context = (t.prompt_tokens_p95 or t.prompt_tokens_mean) + (
        t.output_tokens_p95 or t.output_tokens_mean
    )
    fits = index.sequences(p95_context)[allowed] >= 1
    infeasible = []
    for i in allowed[~fits]:
        # The reason in words, from the scalar memory model (same arithmetic).
        m, g = planner.models[index.model_ids[i]], planner.gpus[index.gpu_ids[i]]
        memory = fit(m, g, index.configs[i], p95_context)
        infeasible.append(Infeasible(**dict(index.candidates[i]), reason=memory.reason or ""))
    chosen = allowed[fits]
    if len(chosen) == 0:
        return CapacityResult(options=[], infeasible=infeasible)
    # Admission is sized on the mean lengths; the p95 context must still fit (above).
    mean_context = t.prompt_tokens_mean + t.output_tokens_mean // 2
    cap = np.minimum(
        index.sequences(mean_context)[chosen], [index.configs[i].max_num_seqs for i in chosen]
    )
    batch = index.batch(chosen, t, cap)
    rates, binding = _max_rates(spec, batch)
    for j in np.flatnonzero(rates <= 0):
        infeasible.append(Infeasible(**dict(index.candidates[chosen[j]]), reason=binding[j]))
    keep = np.flatnonzero(rates > 0)
    options = _size(
        spec,
        batch.take(keep),
        [index.candidates[chosen[j]] for j in keep],
        rates[keep],
        [binding[j] for j in keep],
        prices,
    )
    ranked = _rank(options)
    checked = [_simulated(planner, spec, option) for option in ranked[: spec.simulate_top]]
    return CapacityResult(options=checked + ranked[spec.simulate_top :], infeasible=infeasible)


def _simulated(planner: Planner, spec: CapacitySpec, option: CapacityOption) -> CapacityOption:
    t = spec.traffic
    query = PredictionQuery(
        model_id=option.model_id,
        gpu_id=option.gpu_id,
        tp=option.tp,
        precision=option.precision,
        isl=t.prompt_tokens_mean,
        osl=t.output_tokens_mean,
        isl_p95=t.prompt_tokens_p95,
        osl_p95=t.output_tokens_p95,
        qps=t.peak_qps / option.replicas_for_peak,
        arrival_cv2=PEAK_FACTOR_CV2[t.burstiness],
    )
    result = planner.simulate(query)
    assert result.ttft_ms and result.tpot_ms and result.e2e_ms
    slo = spec.slo
    met = result.stable and all(
        target is None or value <= target
        for value, target in (
            (result.ttft_ms.p90, slo.ttft_p90_ms),
            (result.tpot_ms.p90, slo.tpot_p90_ms),
            (result.e2e_ms.p95, slo.e2e_p95_ms),
        )
    )
    return option.model_copy(
        update={
            "simulated_ttft_ms": result.ttft_ms,
            "simulated_tpot_ms": result.tpot_ms,
            "simulated_e2e_ms": result.e2e_ms,
            "simulated_slo_met": met,
        }
    )


def _slo_met(spec: CapacitySpec, batch: Batch, qps: np.ndarray) -> tuple[np.ndarray, list[str]]:
    state = batch.solve(closed=False, load=qps)
    ttft, tpot, e2e = samples(
        state,
        batch.serving,
        batch.osl,
        False,
        batch.isl,
        batch.isl_p95,
        batch.osl_p95,
        n_samples=SEARCH_SAMPLES,
    )
    ok = np.asarray(state.stable, dtype=bool)
    reason = np.where(ok, "", "stability")
    for name, values, q, target in (
        ("ttft", ttft, 90, spec.slo.ttft_p90_ms),
        ("tpot", tpot, 90, spec.slo.tpot_p90_ms),
        ("e2e", e2e, 95, spec.slo.e2e_p95_ms),
    ):
        if target is None:
            continue
        met = percentile(values, q) * 1e3 <= target
        reason = np.where(ok & ~met, name, reason)
        ok &= met
    return ok, list(reason)


def _max_rates(spec: CapacitySpec, batch: Batch) -> tuple[np.ndarray, list[str]]:
    """Largest QPS per replica meeting every SLO, by bisection in log(QPS)."""
    # No replica serves more requests than its KV cache holds decoding sequences at the
    # fastest possible step; a tiny fraction of that is the trickle that must pass.
    fastest = step_seconds(batch.coefficients, batch.cap, batch.isl + batch.osl / 2, 0.0, 0.0)
    high = batch.cap / (batch.osl * fastest)
    low = high * TRICKLE
    ok_low, why = _slo_met(spec, batch, low)
    for _ in range(BISECTION_STEPS):
        middle = np.sqrt(low * high)
        ok, _ = _slo_met(spec, batch, middle)
        low = np.where(ok, middle, low)
        high = np.where(ok, high, middle)
    _, binding = _slo_met(spec, batch, high)
    slo = spec.slo
    targets = {
        "ttft": f"TTFT p90 above {slo.ttft_p90_ms} ms",
        "tpot": f"TPOT p90 above {slo.tpot_p90_ms} ms",
        "e2e": f"E2E p95 above {slo.e2e_p95_ms} ms",
        "stability": "cannot keep up with even a trickle of load",
    }
    reasons = [b or "stability" for b in binding]
    rates = np.where(ok_low, low, 0.0)
    for i in np.flatnonzero(~ok_low):
        reasons[i] = f"misses the SLO at any load: {targets[why[i] or 'stability']}"
    return rates, reasons


def _size(
    spec: CapacitySpec,
    batch: Batch,
    found: list[Candidate],
    rates: np.ndarray,
    binding: list[str],
    prices: Sequence[GpuPrice],
) -> list[CapacityOption]:
    """Replicas for peak and steady load, latency at the per-replica peak load, and cost."""
    t, c = spec.traffic, spec.constraints
    usable = rates * (1 - spec.headroom)
    peak = np.maximum(1, np.ceil(t.peak_qps / usable)).astype(int)
    steady = np.maximum(1, np.ceil(t.steady_qps / usable)).astype(int)
    state = batch.solve(closed=False, load=t.peak_qps / peak)
    ttft, tpot, e2e = samples(
        state, batch.serving, batch.osl, False, batch.isl, batch.isl_p95, batch.osl_p95
    )
    ttft_stats = stats(ttft, state.ttft_s)
    tpot_stats = stats(tpot, state.tpot_s)
    e2e_stats = stats(e2e, state.ttft_s + (batch.osl - 1) * state.tpot_s)
    tokens_per_hour = t.steady_qps * (t.prompt_tokens_mean + t.output_tokens_mean) * 3600
    cheapest = cheapest_prices(prices, c)
    sized = []
    for i, cand in enumerate(found):
        price = cheapest.get(cand.gpu_id)
        hourly = price.usd_per_gpu_hour * cand.tp * int(peak[i]) if price else None
        steady_hourly = price.usd_per_gpu_hour * cand.tp * int(steady[i]) if price else None
        monthly = hourly * HOURS_PER_MONTH if hourly is not None else None
        if (
            c.max_monthly_cost_usd is not None
            and monthly is not None
            and (monthly > c.max_monthly_cost_usd)
        ):
            continue
        sized.append(
            CapacityOption.model_construct(
                **dict(cand),
                max_qps_per_replica=float(rates[i]),
                replicas_for_peak=int(peak[i]),
                min_replicas=int(steady[i]),
                gpus_total=int(peak[i]) * cand.tp,
                ttft_ms=ttft_stats[i],
                tpot_ms=tpot_stats[i],
                e2e_ms=e2e_stats[i],
                price=price,
                usd_per_hour=hourly,
                usd_per_month=monthly,
                usd_per_month_steady=steady_hourly * HOURS_PER_MONTH if steady_hourly else None,
                usd_per_1k_tokens=steady_hourly / tokens_per_hour * 1000 if steady_hourly else None,
                binding_slo=binding[i],
            )
        )
    return sized


def _rank(options: list[CapacityOption]) -> list[CapacityOption]:
    """Cheapest first; options without a known price after the priced ones."""
    return sorted(
        options, key=lambda o: (o.usd_per_month is None, o.usd_per_month or 0.0, o.gpus_total)
    )
