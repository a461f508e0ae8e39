"""Layer 4: how many replicas of which configuration, and what they cost.

For every (model, GPU, TP, precision) the search finds the largest request rate one replica
sustains with every SLO percentile met (a vectorised bisection over all candidates at
once), then sizes replicas for peak load with headroom and prices them from dated quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from planner.batch import Batch
from planner.catalog_index import Candidate, CatalogIndex, candidates, precisions_for
from planner.memory import fit
from planner.percentiles import LatencyStats, percentile, samples, stats
from planner.predict import Planner
from planner.prediction import PredictionQuery
from planner.requirements import (
    ARRIVAL_CV2,
    CapacitySpec,
    PricingKind,
    SearchConstraints,
    SLOTargets,
    TrafficProfile,
)
from planner.specs import Frozen
from planner.steptime import step_seconds

HOURS_PER_MONTH = 730.0
BISECTION_STEPS = 11
"""Halvings of log(QPS) between the trickle and the bound: about 1 % resolution."""
TRICKLE = 1e-4
SEARCH_SAMPLES = 32


class GpuPrice(Frozen):
    gpu_id: str
    provider: str
    pricing: PricingKind
    usd_per_gpu_hour: float
    source: str
    retrieved: str


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
        arrival_cv2=ARRIVAL_CV2[t.burstiness],
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


__all__ = [
    "CapacityOption",
    "CapacityResult",
    "CapacitySpec",
    "GpuPrice",
    "Infeasible",
    "SLOTargets",
    "SearchConstraints",
    "TrafficProfile",
    "candidates",
    "precisions_for",
    "search",
]
