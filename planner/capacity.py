"""Layer 4: how many replicas of which configuration, and what they cost.

For every (model, GPU, TP, precision) the search finds the largest request rate one replica
sustains with every SLO percentile met (a vectorised bisection over all candidates at
once), then sizes replicas for peak load with headroom and prices them from dated quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from pydantic import Field

from planner.batch import Batch
from planner.catalog_index import (
    TENSOR_PARALLEL,
    Candidate,
    CatalogIndex,
    candidates,
    precisions_for,
)
from planner.lazy import LazyList
from planner.memory import fit
from planner.percentiles import (
    LatencyStats,
    held_tokens,
    latency_stats,
    quantile,
    quantiles,
    samples,
)
from planner.predict import Planner
from planner.prediction import PredictionQuery
from planner.requirements import (
    ARRIVALS,
    CapacitySpec,
    PricingKind,
    SearchConstraints,
    SLOTargets,
    TrafficProfile,
)
from planner.routing import plausible_hit_rate
from planner.serving import SteadyState
from planner.specs import EngineSettings, Frozen
from planner.steptime import Array

HOURS_PER_MONTH = 730.0
PRICE_STALE_AFTER_DAYS = 180
"""A price older than this is shown as stale wherever it is used."""
ROUTING_ROUNDS = 8
"""Rounds of sizing at the hit rate blind routing leaves (two or three settle it)."""


class GpuPrice(Frozen):
    gpu_id: str
    provider: str
    pricing: PricingKind
    # Defaults only for payloads recorded before 2026-12-06, which lack the instance.
    instance_type: str = "not recorded"
    gpus_per_instance: int = Field(default=1, ge=1)
    """A replica of TP N runs on an instance of at least N GPUs."""
    usd_per_gpu_hour: float
    """The instance's hourly price divided by its GPUs."""
    source: str
    retrieved: str
    stale: bool = False
    """Older than PRICE_STALE_AFTER_DAYS when the catalog was read."""

    @property
    def as_of(self) -> str:
        """When the price was read, flagged when it is stale."""
        if not self.stale:
            return self.retrieved
        return f"{self.retrieved} (STALE: over {PRICE_STALE_AFTER_DAYS} days old)"


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
    prefix_cache_hit_rate: float = 0.0
    """The share of prompt tokens predicted to hit the prefix cache: the engine's, or what
    routing blind to prefixes leaves of it over `replicas_for_peak` (`planner.routing`)."""
    simulated_ttft_ms: LatencyStats | None = None
    simulated_tpot_ms: LatencyStats | None = None
    simulated_e2e_ms: LatencyStats | None = None
    simulated_slo_met: bool | None = None
    """Whether the simulation at peak load (bursts, length spread, preemption) met every SLO;
    None when the option was not simulated."""


class Infeasible(Candidate):
    reason: str


@dataclass(frozen=True)
class OptionColumns:
    """What ranking and the cost/latency chart read of every option, as arrays in the
    options' order: a ranking of thousands of options builds only the few it shows."""

    candidates: list[Candidate]
    replicas_for_peak: np.ndarray
    usd_per_month: np.ndarray
    """NaN where the price is unknown."""
    ttft_p90_ms: np.ndarray
    tpot_p90_ms: np.ndarray
    e2e_p95_ms: np.ndarray


@dataclass(frozen=True)
class CapacityResult:
    options: LazyList[CapacityOption]
    """Ranked: cheapest first, unknown prices last."""
    infeasible: LazyList[Infeasible]
    _columns: Callable[[], OptionColumns]

    @property
    def columns(self) -> OptionColumns:
        """Every option's ranking numbers, computed at once when first read (a search that
        only shows its cheapest options never pays for them). Remembered by `_size`'s cache,
        not a `cached_property`, whose lock (Python 3.11) is the class's: concurrent searches
        would rank one at a time."""
        return self._columns()

    def report(self, top: int | None = None) -> dict[str, list[dict[str, object]]]:
        """As JSON-ready data: the `top` options (all by default) and every infeasible one."""
        return {
            "options": [o.model_dump(mode="json") for o in self.options[:top]],
            "infeasible": [i.model_dump(mode="json") for i in self.infeasible],
        }


def cheapest_prices(
    prices: Sequence[GpuPrice], c: SearchConstraints
) -> dict[tuple[str, int], GpuPrice]:
    """The cheapest matching quote per GPU for each TP degree, from instances holding at
    least that many GPUs (a TP-4 replica cannot run on a one-GPU instance, and larger
    instances often cost more per GPU). Absent: price unknown."""
    cheapest: dict[tuple[str, int], GpuPrice] = {}
    for p in prices:
        if p.pricing != c.pricing or (c.provider is not None and p.provider != c.provider):
            continue
        for tp in TENSOR_PARALLEL:
            if tp > p.gpus_per_instance:
                break
            best = cheapest.get((p.gpu_id, tp))
            if best is None or p.usd_per_gpu_hour < best.usd_per_gpu_hour:
                cheapest[(p.gpu_id, tp)] = p
    return cheapest


def search(planner: Planner, spec: CapacitySpec, prices: Sequence[GpuPrice]) -> CapacityResult:
    t = spec.traffic
    index = CatalogIndex.of(planner, spec.engine)
    allowed = np.flatnonzero(index.allowed(spec.constraints))
    p95_context = (t.prompt_tokens_p95 or t.prompt_tokens_mean) + (
        t.output_tokens_p95 or t.output_tokens_mean
    )
    fits = index.sequences(p95_context)[allowed] >= 1
    unfit, chosen = allowed[~fits], allowed[fits]
    # Admission is sized on what a decoding sequence holds on average; the p95 context must
    # still fit (above).
    held = held_tokens(
        t.prompt_tokens_mean,
        t.output_tokens_mean,
        t.output_tokens_p95,
        planner.calibration.serving.kv_output_share,
    )
    cap = np.minimum(index.sequences(int(held))[chosen], index.max_num_seqs[chosen])
    batch = index.batch(chosen, t, cap)
    # What the batch and its limits are made of (`CatalogIndex.batch` reads these traffic
    # fields, and nothing of the load): a field it comes to read belongs in the key.
    slo = spec.slo
    shape = (t.prompt_tokens_mean, t.prompt_tokens_p95, t.output_tokens_mean, t.output_tokens_p95)
    key = (chosen.tobytes(), *shape, t.burstiness, slo.ttft_p90_ms, slo.tpot_p90_ms, slo.e2e_p95_ms)
    rates, binding = (
        index.max_rates(key, lambda: _max_rates(spec, batch)) if len(chosen) else (np.zeros(0), [])
    )
    batch, rates, binding = _routed(spec, batch, rates, binding)
    missed = np.flatnonzero(rates <= 0)

    def infeasible(i: int) -> Infeasible:
        if i < len(unfit):
            # The reason in words, from the scalar memory model (same arithmetic).
            j = unfit[i]
            m, g = planner.models[index.model_ids[j]], planner.gpus[index.gpu_ids[j]]
            reason = fit(m, g, index.configs[j], p95_context).reason or ""
            return Infeasible(**dict(index.candidates[j]), reason=reason)
        j = missed[i - len(unfit)]
        return Infeasible(**dict(index.candidates[chosen[j]]), reason=binding[j])

    keep = np.flatnonzero(rates > 0)
    options, columns = _size(
        spec,
        batch.take(keep),
        index,
        chosen[keep],
        rates[keep],
        [binding[j] for j in keep],
        prices,
    )
    for i in range(min(spec.simulate_top, len(options))):
        options.replace(i, _simulated(planner, spec, options[i]))
    return CapacityResult(
        options=options,
        infeasible=LazyList(len(unfit) + len(missed), infeasible),
        _columns=columns,
    )


def option_query(
    option: Candidate,
    traffic: TrafficProfile,
    qps: float,
    engine: EngineSettings | None = None,
) -> PredictionQuery:
    """The prediction query for one replica of `option` receiving `qps` of `traffic`, run
    with `engine` (vLLM's defaults unless given)."""
    arrival, burstiness = ARRIVALS[traffic.burstiness]
    return PredictionQuery(
        model_id=option.model_id,
        gpu_id=option.gpu_id,
        tp=option.tp,
        precision=option.precision,
        isl=traffic.prompt_tokens_mean,
        osl=traffic.output_tokens_mean,
        isl_p95=traffic.prompt_tokens_p95,
        osl_p95=traffic.output_tokens_p95,
        qps=qps,
        arrival=arrival,
        burstiness=burstiness,
        **dict(engine or EngineSettings()),
    )


def replica_query(
    option: CapacityOption, traffic: TrafficProfile, engine: EngineSettings
) -> PredictionQuery:
    """One replica of `option` at its share of peak `traffic`, with the prefix-cache hit rate
    the option was sized with."""
    hits = engine.model_copy(update={"prefix_cache_hit_rate": option.prefix_cache_hit_rate})
    return option_query(option, traffic, traffic.peak_qps / option.replicas_for_peak, hits)


def _simulated(planner: Planner, spec: CapacitySpec, option: CapacityOption) -> CapacityOption:
    result = planner.simulate(replica_query(option, spec.traffic, spec.engine))
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


def _max_rates(spec: CapacitySpec, batch: Batch) -> tuple[np.ndarray, list[str]]:
    """Largest QPS per replica meeting every SLO, and what binds it (in words where no load
    meets them)."""
    rates, binding = batch.max_rates(spec.slo)
    slo = spec.slo
    targets = {
        "ttft": f"TTFT p90 above {slo.ttft_p90_ms} ms",
        "tpot": f"TPOT p90 above {slo.tpot_p90_ms} ms",
        "e2e": f"E2E p95 above {slo.e2e_p95_ms} ms",
        "stability": "cannot keep up with even a trickle of load",
    }
    return rates, [
        f"misses the SLO at any load: {targets[b]}" if r <= 0 else b
        for r, b in zip(rates, binding, strict=True)
    ]


def _replicas(spec: CapacitySpec, rates: np.ndarray, qps: float) -> np.ndarray:
    """Replicas of each candidate for `qps`, each loaded to its rate less the headroom."""
    usable = rates * (1 - spec.headroom)
    with np.errstate(divide="ignore"):
        needed = np.ceil(qps / usable)
    replicas: np.ndarray = np.maximum(spec.min_replicas, np.nan_to_num(needed, posinf=1))
    return replicas.astype(int)


def _routed(
    spec: CapacitySpec, batch: Batch, rates: np.ndarray, binding: list[str]
) -> tuple[Batch, np.ndarray, list[str]]:
    """The batch and rates at the prefix-cache hit rate the routing makes plausible. Blind to
    prefixes, more replicas mean fewer hits each, so less capacity each and perhaps more
    replicas: sizing and hit rate settle together, within a few rounds (replicas only grow)."""
    hit = spec.engine.prefix_cache_hit_rate
    if hit == 0 or spec.prefix_routing:
        return batch, rates, binding
    rates, binding = rates.copy(), list(binding)
    replicas = np.ones(len(rates), dtype=int)
    for _ in range(ROUTING_ROUNDS):
        needed = _replicas(spec, rates, spec.traffic.peak_qps)
        changed = np.flatnonzero((needed != replicas) & (rates > 0))
        if not len(changed):
            break
        replicas[changed] = needed[changed]
        share = 1 - plausible_hit_rate(hit, replicas, prefix_routing=False)
        batch = replace(batch, prefill_share=share)
        again, why = _max_rates(spec, batch.take(changed))
        rates[changed] = again
        for j, reason in zip(changed, why, strict=True):
            binding[j] = reason
    return batch, rates, binding


def _size(
    spec: CapacitySpec,
    batch: Batch,
    index: CatalogIndex,
    rows: np.ndarray,
    rates: np.ndarray,
    binding: list[str],
    prices: Sequence[GpuPrice],
) -> tuple[LazyList[CapacityOption], Callable[[], OptionColumns]]:
    """Replicas for peak and steady load, latency at the per-replica peak load, and cost, of
    the candidates at `rows` of `index`; ranked cheapest first, unknown prices last, then by
    GPUs."""
    t, c = spec.traffic, spec.constraints
    found = [index.candidates[j] for j in rows]
    gpu_ids, tp = index.gpu_ids[rows], index.tp[rows]
    peak, steady = _replicas(spec, rates, t.peak_qps), _replicas(spec, rates, t.steady_qps)
    cheapest = cheapest_prices(prices, c)
    quotes = [cheapest.get(key) for key in zip(gpu_ids.tolist(), tp.tolist(), strict=True)]
    per_gpu_hour = np.array([q.usd_per_gpu_hour if q else np.nan for q in quotes])
    hourly, steady_hourly = per_gpu_hour * tp * peak, per_gpu_hour * tp * steady
    monthly = hourly * HOURS_PER_MONTH
    tokens_per_hour = t.steady_qps * (t.prompt_tokens_mean + t.output_tokens_mean) * 3600
    within = ~(monthly > (c.max_monthly_cost_usd or np.inf))  # unknown prices stay
    order = np.lexsort((tp * peak, np.nan_to_num(monthly), np.isnan(monthly)))
    order = order[within[order]]
    # Only what may be shown is solved at its load, in rank order (row k is the k-th option).
    batch = batch.take(order)
    state = batch.solve(closed=False, load=t.peak_qps / peak[order])

    def known(value: float) -> float | None:
        return None if np.isnan(value) else float(value)

    def at_peak(ranks: np.ndarray) -> tuple[Batch, SteadyState, tuple[Array, Array, Array]]:
        """The options at `ranks`, their state and their TTFT, TPOT and E2E samples, each at
        its per-replica peak load."""
        chosen, at = batch.take(ranks), state.take(ranks)
        drawn = samples(
            at, chosen.serving, chosen.osl, False, chosen.isl, chosen.isl_p95, chosen.osl_p95
        )
        return chosen, at, drawn

    def option(rank: int) -> CapacityOption:
        i = order[rank]
        chosen, at, (ttft, tpot, e2e) = at_peak(np.asarray([rank]))
        e2e_mean = at.ttft_s + (chosen.osl - 1) * at.tpot_s
        return CapacityOption(
            **dict(found[i]),
            max_qps_per_replica=float(rates[i]),
            replicas_for_peak=int(peak[i]),
            min_replicas=int(steady[i]),
            gpus_total=int(peak[i] * tp[i]),
            ttft_ms=latency_stats(quantiles(ttft, at.ttft_s)[0]),
            tpot_ms=latency_stats(quantiles(tpot, at.tpot_s, ordered=True)[0]),
            e2e_ms=latency_stats(quantiles(e2e, e2e_mean)[0]),
            price=quotes[i],
            usd_per_hour=known(hourly[i]),
            usd_per_month=known(monthly[i]),
            usd_per_month_steady=known(steady_hourly[i] * HOURS_PER_MONTH),
            usd_per_1k_tokens=known(steady_hourly[i] / tokens_per_hour * 1000),
            binding_slo=binding[i],
            prefix_cache_hit_rate=float(1 - batch.prefill_share[rank]),
        )

    def columns() -> OptionColumns:
        # Only the percentiles ranking reads, by selection: sorting every option's samples
        # would cost more than the search.
        _, _, (ttft, tpot, e2e) = at_peak(np.arange(len(order)))
        return OptionColumns(
            candidates=[found[i] for i in order],
            replicas_for_peak=peak[order],
            usd_per_month=monthly[order],
            ttft_p90_ms=quantile(ttft, 90),
            tpot_p90_ms=quantile(tpot, 90, ordered=True),
            e2e_p95_ms=quantile(e2e, 95),
        )

    return LazyList(len(order), option), cache(columns)


__all__ = [
    "CapacityOption",
    "CapacityResult",
    "CapacitySpec",
    "GpuPrice",
    "Infeasible",
    "OptionColumns",
    "SLOTargets",
    "SearchConstraints",
    "TrafficProfile",
    "candidates",
    "option_query",
    "precisions_for",
    "replica_query",
    "search",
]
