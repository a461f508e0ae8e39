"""Layer 3: continuous batching under load, analytically (the fast path for search).

vLLM runs engine steps back to back. Each step decodes one token for every running
sequence and spends what is left of the token budget (`max_num_batched_tokens`) on prefill
chunks of waiting requests. In steady state, with throughput X requests/s:

    decode sequences per step   d = X x (osl - 1) x step
    prefill tokens per step     p = X x isl x step
    step                        = the mix of decode-only steps and steps that carry a
                                  prefill chunk (layer 2), solved as a fixed point
    TPOT                        = step
    TTFT                        = overhead + step/2 (wait for the step boundary)
                                + chunks x prefill step + wait for the prefill budget
                                + wait for a KV-cache slot when the cache is full

The wait for the prefill budget is M/D/1 with Kingman's factor for bursts in an open loop
(arrivals at QPS; unstable when the budget, the KV cache or the step time cannot keep up).
A closed loop (N requests always in flight, X = running / (TTFT + (osl - 1) x TPOT)) moves
in waves of requests that finish, and return, together; and a closed-loop benchmark starts
all N at once: that first wave's TTFT, and the prefill steps its requests decode through,
are blended in with the share of requests it holds (`first_wave_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calibration import ServingCalibration
from planner.steptime import Array, StepCoefficients, step_seconds

ITERATIONS = 60
TOLERANCE = 1e-3
"""Relative change of step and TTFT at which the fixed point counts as found."""
DAMPING = 0.5
MAX_UTILISATION = 0.98


@dataclass(frozen=True)
class SteadyState:
    """Per-candidate results of the analytical model (seconds unless named otherwise)."""

    tpot_s: Array
    ttft_s: Array
    """Mean TTFT, including the first wave of a closed-loop benchmark."""
    request_overhead_s: Array
    own_prefill_s: Array
    """The steps that carry the request's own prefill chunks."""
    prefill_wait_s: Array
    """Mean wait for the prefill budget (queueing)."""
    prefill_utilisation: Array
    admission_wait_s: Array
    first_wave_s: Array
    tpot_spread_s: Array
    """Standard deviation of one request's TPOT from prefill interference."""
    requests_per_s: Array
    running: Array
    stable: Array

    def take(self, index: slice | np.ndarray) -> SteadyState:
        """The same results for a subset of the candidates."""
        return SteadyState(
            **{name: getattr(self, name)[index] for name in self.__dataclass_fields__}
        )


def _solve(
    c: StepCoefficients,
    isl: Array,
    osl: Array,
    budget: Array,
    cap: Array,
    serving: ServingCalibration,
    concurrency: Array | None,
    qps: Array | None,
    arrival_cv2: Array,
) -> SteadyState:
    request_overhead_s = c.request_overhead_s
    decode_context = isl + osl / 2
    prefill_context = isl / 2
    closed = concurrency is not None
    running = np.minimum(concurrency, cap) if concurrency is not None else np.zeros_like(isl)
    rate = np.asarray(qps, dtype=np.float64) if qps is not None else np.zeros_like(isl)
    decode = running.copy() if closed else np.zeros_like(isl)
    step = step_seconds(c, decode, decode_context, 0.0, 0.0)
    ttft = step
    # A closed loop is negative feedback (slower steps, fewer arrivals) and oscillates
    # undamped; an open loop is positive feedback, which damping would only slow down.
    damping = DAMPING if closed else 0.0
    n = len(isl)
    # The three step kinds of an iteration (pure decode, decode + average prefill, decode +
    # this request's chunk) are evaluated in one call on a threefold batch.
    c3 = _tiled(c, 3)
    contexts3 = np.concatenate([decode_context] * 3)
    prefill_contexts3 = np.concatenate([np.zeros(n), prefill_context, prefill_context])

    def evaluate(decode: Array, step: Array, ttft: Array, rate: Array) -> dict[str, Array]:
        """Every derived quantity of the current state, and the state it implies next."""
        available = np.maximum(budget - decode, 16.0)
        chunks = np.maximum(1.0, isl / available)
        if closed:
            rate = running / (ttft + (osl - 1) * step)
        # Prefill arrives in chunks, not spread evenly: a share of the steps carry one
        # (or, past one per step, several). Averaging the tokens instead would understate
        # the cost of the steps that carry them and overstate MoE expert reads.
        share = np.clip(rate * chunks * step, 1e-9, 1.0)
        tokens_per_prefill_step = np.minimum(rate * isl * step / share, available)
        steps = step_seconds(
            c3,
            np.concatenate([decode] * 3),
            contexts3,
            np.concatenate([np.zeros(n), tokens_per_prefill_step, np.minimum(isl, available)]),
            prefill_contexts3,
        )
        decode_step, prefill_step, own_prefill = steps[:n], steps[n : 2 * n], steps[2 * n :]
        utilisation = np.minimum(rate * isl * step / available, MAX_UTILISATION)
        prefill_service = chunks * own_prefill
        if closed:
            wait = _wave_wait(running, prefill_service, serving.wave_spread * (osl - 1) * step)
        else:
            # Kingman's G/D/1 approximation: M/D/1 scaled by the arrivals' variability.
            wait = arrival_cv2 / 2 * utilisation / (1 - utilisation) * prefill_service
        return {
            "available": available,
            "chunks": chunks,
            "rate": rate,
            "share": share,
            "decode_step": decode_step,
            "prefill_step": prefill_step,
            "own_prefill": own_prefill,
            "utilisation": utilisation,
            "new_step": (1 - share) * decode_step + share * prefill_step,
            "new_ttft": step / 2 + prefill_service + wait,
        }

    # Each candidate stops moving once it has settled, so its answer does not depend on
    # which other candidates share the batch.
    settled = np.zeros(n, dtype=bool)
    for _ in range(ITERATIONS):
        d = evaluate(decode, step, ttft, rate)
        moved = np.abs(d["new_step"] / step - 1) + np.abs(d["new_ttft"] / ttft - 1)
        if not closed:
            # Past the KV cache or the prefill budget an open loop has no fixed point: its
            # queue grows for ever. Such candidates are settled (unstable).
            moved = np.where((decode > cap) | (d["utilisation"] >= MAX_UTILISATION), 0.0, moved)
        moving = ~settled
        new_step = damping * step + (1 - damping) * d["new_step"]
        new_ttft = damping * ttft + (1 - damping) * d["new_ttft"]
        new_decode = d["rate"] * (osl - 1) * new_step
        new_decode = damping * decode + (1 - damping) * (
            np.minimum(new_decode, running) if closed else new_decode
        )
        step = np.where(moving, new_step, step)
        ttft = np.where(moving, new_ttft, ttft)
        decode = np.where(moving, new_decode, decode)
        settled |= moved < TOLERANCE
        if settled.all():
            break
    d = evaluate(decode, step, ttft, rate)
    available, chunks, rate, share = d["available"], d["chunks"], d["rate"], d["share"]
    decode_step, prefill_step = d["decode_step"], d["prefill_step"]
    own_prefill, utilisation = d["own_prefill"], d["utilisation"]
    fixed = request_overhead_s + step / 2 + chunks * own_prefill
    queueing = ttft - (step / 2 + chunks * own_prefill)
    # Each decode step carries a prefill chunk with probability `share`; its extra time
    # spreads per-request TPOT over the request's osl - 1 steps.
    extra = np.maximum(prefill_step - decode_step, 0.0)
    spread = extra * np.sqrt(share * (1 - share) / np.maximum(osl - 1, 1))
    if closed:
        assert concurrency is not None
        admission = np.maximum(concurrency - running, 0.0) / np.maximum(rate, 1e-9)
        full_budget_step = step_seconds(c, 0.0, 0.0, budget, prefill_context)
        first_wave = (running * isl / budget + 1) / 2 * full_budget_step + admission
        steady_ttft = fixed + queueing + admission
        mean_ttft = (1 - serving.first_wave_weight) * steady_ttft + serving.first_wave_weight * (
            request_overhead_s + first_wave
        )
        # The first wave's requests decode while the rest of the wave is still prefilling:
        # on average half of the wave's prefill steps (each filling what the decodes leave of
        # the budget) land in their decode, each costing its prefill tokens on top.
        wave_steps = running * isl / available
        wave_step = step_seconds(c, decode, decode_context, available, prefill_context)
        wave_tpot_extra = (
            wave_steps / 2 * np.maximum(wave_step - decode_step, 0.0) / np.maximum(osl - 1, 1)
        )
        mean_tpot = step + serving.first_wave_weight * wave_tpot_extra
        stable = np.ones_like(isl, dtype=bool)
    else:
        admission = np.zeros_like(isl)
        first_wave = np.zeros_like(isl)
        mean_tpot = step
        mean_ttft = fixed + queueing
        stable = (
            (rate * isl * step < available * MAX_UTILISATION)
            & (rate * (ttft + (osl - 1) * step) <= cap)
            & np.isfinite(step)
        )
    return SteadyState(
        tpot_s=mean_tpot,
        ttft_s=mean_ttft,
        request_overhead_s=request_overhead_s,
        own_prefill_s=chunks * own_prefill,
        prefill_wait_s=queueing,
        prefill_utilisation=utilisation,
        admission_wait_s=admission,
        first_wave_s=first_wave,
        tpot_spread_s=spread,
        requests_per_s=rate,
        running=rate * (ttft + (osl - 1) * step),
        stable=stable,
    )


def _tiled(c: StepCoefficients, times: int) -> StepCoefficients:
    return StepCoefficients(
        **{name: np.tile(getattr(c, name), times) for name in StepCoefficients.__dataclass_fields__}
    )


def _wave_wait(requests: Array, service: Array, window: Array) -> Array:
    """Mean wait for the prefill budget when `requests` arrive spread over `window` seconds.

    A closed loop with fixed-ish lengths moves in waves: requests that started together
    finish within a window set by the spread of their output lengths, and their successors
    arrive together. Past saturation (requests x service > window) the wave queues for the
    excess, half of it on average; below, M/D/1 at the wave's own load.
    """
    load = np.minimum(requests * service / np.maximum(window, 1e-9), 0.9)
    backlog = np.maximum(requests * service - window, 0.0) / 2
    return np.asarray(backlog + service * load / (2 * (1 - load)))


def closed_loop(
    c: StepCoefficients,
    isl: Array,
    osl: Array,
    concurrency: Array,
    budget: Array,
    cap: Array,
    serving: ServingCalibration,
) -> SteadyState:
    """`concurrency` requests always in flight (a benchmark client's closed loop)."""
    return _solve(
        c,
        isl,
        osl,
        budget,
        cap,
        serving,
        concurrency=concurrency,
        qps=None,
        arrival_cv2=np.full_like(isl, 1.0),
    )


def open_loop(
    c: StepCoefficients,
    isl: Array,
    osl: Array,
    qps: Array,
    budget: Array,
    cap: Array,
    serving: ServingCalibration,
    arrival_cv2: Array | float = 1.0,
) -> SteadyState:
    """Arrivals at `qps` requests/s; `arrival_cv2` 1 is Poisson, above 1 is bursty."""
    return _solve(
        c,
        isl,
        osl,
        budget,
        cap,
        serving,
        concurrency=None,
        qps=qps,
        arrival_cv2=np.broadcast_to(np.asarray(arrival_cv2, dtype=np.float64), isl.shape).copy(),
    )
