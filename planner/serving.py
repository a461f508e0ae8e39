"""Layer 3: continuous batching under load, analytically (the fast path for search).

vLLM runs engine steps back to back. Each step decodes one token for every running
sequence and spends what is left of the token budget (`max_num_batched_tokens`) on prefill
chunks of waiting requests. In steady state, with throughput X requests/s:

    decode sequences per step   d = X x (osl - 1) x step
    prefill tokens per step     p = X x isl x step    (less what the prefix cache holds)
    step                        = the mix of decode-only steps and steps that carry a
                                  prefill chunk (layer 2), solved as a fixed point
    TPOT                        = the steps a request decodes through: in an open loop
                                  the server's mix, in a closed loop of N the steps that
                                  carry the other N - 1 requests' prefill chunks only
    TTFT                        = overhead + step/2 (wait for the step boundary, when
                                  the engine is busy: never for a closed loop's only request)
                                + chunks x prefill step + wait for the prefill budget
                                + wait for a KV-cache slot when the cache is full

The wait for the prefill budget is M/D/1 with Kingman's factor for bursts in an open loop
(arrivals at QPS; unstable when the budget, the KV cache or the step time cannot keep up). Its
server is the token budget: a request occupies it for its share of a full-budget step, so
short prompts arriving together share steps rather than queue one step each. The wait for a
sequence slot (the KV cache or `max_num_seqs`) is Sakasegawa's G/D/c in an open loop:
nothing until the slots are nearly all held, then a queue's growth up to the most a replica
sustains (`Batch.max_rates`), past which a prediction is overloaded.
A closed loop (N requests always in flight, X = running / (TTFT + (osl - 1) x TPOT)) moves
in waves of requests that finish, and return, together; and a closed-loop benchmark starts
all N at once: that first wave's TTFT, and the prefill steps its requests decode through,
are blended in with a fitted weight (`first_wave_weight`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planner.calibration import ServingCalibration
from planner.steptime import Array, StepCoefficients, step_seconds

ITERATIONS = 60
TOLERANCE = 1e-4
"""Relative error in requests in flight at which a closed loop counts as solved."""
OPEN_TOLERANCE = 1e-5
"""Relative excess F(step) - step at which an open loop's step counts as found: near
saturation the step's error is that excess over 1 - dF/dstep, a small number."""
MAX_UTILISATION = 0.98


@dataclass(frozen=True)
class SteadyState:
    """Per-candidate results of the analytical model (seconds unless named otherwise)."""

    step_s: Array
    """The engine step the fixed point settled on (before any TPOT correction)."""
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
    prefill_share: Array,
    decoding: Array | None = None,
    wave_spread: Array | None = None,
) -> SteadyState:
    """`wave_spread`: a closed loop's, per candidate (see `ServingCalibration`)."""
    request_overhead_s = c.request_overhead_s
    decode_context = isl + osl / 2
    # Prefill computes the prompt's uncached suffix; each of its tokens attends to the cached
    # prefix and, on average, half of the suffix.
    prefill = isl * prefill_share
    prefill_context = isl - prefill / 2
    closed = concurrency is not None
    running = np.minimum(concurrency, cap) if concurrency is not None else np.zeros_like(isl)
    n = len(isl)
    everyone = np.arange(n)
    decodes_per_request = np.maximum(osl - 1, 1)
    no_prefill = np.zeros(n)

    def evaluate(at: Index, decode: Array, per_step: Array) -> dict[str, Array]:
        """The state of candidates `at` with `decode` sequences decoding and `per_step`
        requests arriving per step, and the step it implies. That step depends on the rate
        only through `per_step`, which is what makes the state explicit in `decode`."""
        prefill_, osl_ = prefill[at], osl[at]
        available = np.maximum(budget[at] - decode, 16.0)
        chunks = np.maximum(1.0, prefill_ / available)
        # Prefill arrives in chunks, not spread evenly: a share of the steps carry one
        # (or, past one per step, several). Averaging the tokens instead would understate
        # the cost of the steps that carry them and overstate MoE expert reads.
        share = np.clip(per_step * chunks, 1e-9, 1.0)
        tokens_per_prefill_step = np.minimum(per_step * prefill_ / share, available)
        prefill_context_ = prefill_context[at]
        # The four step kinds (pure decode, decode + average prefill, decode + this
        # request's chunk, decode + a full budget) in one call, stacked on a leading axis.
        decode_step, prefill_step, own_prefill, full_step = step_seconds(
            c if len(at) == n else c.take(at),
            decode,
            decode_context[at],
            np.stack(
                [
                    no_prefill[at],
                    tokens_per_prefill_step,
                    np.minimum(prefill_, available),
                    available,
                ]
            ),
            np.stack([no_prefill[at], prefill_context_, prefill_context_, prefill_context_]),
        )
        step = (1 - share) * decode_step + share * prefill_step
        if closed:
            # A request's own prefill chunks precede its decode: the steps it decodes through
            # carry the others' chunks only, and one alone in flight starts on an idle engine.
            r = running[at]
            others = share * np.maximum(r - 1, 0.0) / np.maximum(r - share, 1e-9)
            tpot = (1 - others) * decode_step + others * prefill_step
            boundary = np.minimum(np.maximum(r - 1, 0.0), 1.0) * tpot / 2
        else:
            # Poisson arrivals are the others': a request decodes through the server's mix,
            # and finds a step under way as often as the engine is busy.
            others, tpot = share, step
            boundary = np.minimum(decode + share, 1.0) * step / 2
        utilisation = np.minimum(per_step * prefill_ / available, MAX_UTILISATION)
        prefill_service = chunks * own_prefill
        # The queue for the prefill budget serves tokens, not requests: several short prompts
        # share one step, so a request holds the server for its share of a full step.
        queue_service = prefill_ / available * full_step
        if closed:
            assert wave_spread is not None
            wait = _wave_wait(running[at], queue_service, wave_spread[at] * (osl_ - 1) * tpot)
        else:
            # Kingman's G/D/1 approximation: M/D/1 scaled by the arrivals' variability.
            wait = arrival_cv2[at] / 2 * utilisation / (1 - utilisation) * queue_service
        ttft = boundary + prefill_service + wait
        rate = per_step / step
        return {
            "available": available,
            "chunks": chunks,
            "others": others,
            "tpot": tpot,
            "boundary": boundary,
            "decode_step": decode_step,
            "prefill_step": prefill_step,
            "own_prefill": own_prefill,
            "utilisation": utilisation,
            "wait": wait,
            "step": step,
            "ttft": ttft,
            "rate": rate,
            "running": rate * (ttft + (osl_ - 1) * tpot),
        }

    def at_decode(at: Index, decode: Array) -> dict[str, Array]:
        return evaluate(at, decode, decode / decodes_per_request[at])

    if closed:
        decode = _closed_decode(at_decode, running)
    elif decoding is not None:
        decode = decoding
    else:
        rate = np.asarray(qps, dtype=np.float64)
        idle = step_seconds(c, 0.0, decode_context, 0.0, 0.0)
        decode = rate * decodes_per_request * _open_step(evaluate, idle, rate, osl, cap)
    d = at_decode(everyone, decode)
    step = d["step"]
    # An open loop serves what arrives (if it cannot, it is unstable and says so).
    rate = d["rate"] if qps is None else np.asarray(qps, dtype=np.float64)
    available, chunks, others = d["available"], d["chunks"], d["others"]
    decode_step, prefill_step = d["decode_step"], d["prefill_step"]
    own_prefill, utilisation, queueing = d["own_prefill"], d["utilisation"], d["wait"]
    fixed = request_overhead_s + d["boundary"] + chunks * own_prefill
    # Each step a request decodes through carries another's prefill chunk with probability
    # `others`; its extra time spreads per-request TPOT over the request's osl - 1 steps.
    extra = np.maximum(prefill_step - decode_step, 0.0)
    spread = extra * np.sqrt(others * (1 - others) / decodes_per_request)
    if closed:
        assert concurrency is not None
        admission = np.maximum(concurrency - running, 0.0) / np.maximum(rate, 1e-9)
        # The first wave prefills its prompts in steps of the whole budget, the last one (or
        # the only one, for a wave smaller than the budget) of what is left; on average its
        # requests wait for half of them and their own.
        wave_tokens = running * prefill
        wave_prefill = step_seconds(c, 0.0, 0.0, np.minimum(wave_tokens, budget), prefill_context)
        first_wave = (np.maximum(wave_tokens / budget, 1.0) + 1) / 2 * wave_prefill + admission
        steady_ttft = fixed + queueing + admission
        mean_ttft = (1 - serving.first_wave_weight) * steady_ttft + serving.first_wave_weight * (
            request_overhead_s + first_wave
        )
        # The first wave's requests decode while the rest of the wave is still prefilling:
        # on average half of the wave's prefill steps (each filling what the decodes leave of
        # the budget) land in their decode, each costing its prefill tokens on top.
        wave_steps = running * prefill / available
        wave_step = step_seconds(c, decode, decode_context, available, prefill_context)
        wave_tpot_extra = wave_steps / 2 * np.maximum(wave_step - decode_step, 0.0)
        mean_tpot = d["tpot"] + serving.first_wave_weight * wave_tpot_extra / decodes_per_request
        stable = np.ones_like(isl, dtype=bool)
    else:
        admission = _slot_wait(d["running"], cap, d["ttft"] + (osl - 1) * step, arrival_cv2)
        first_wave = np.zeros_like(isl)
        mean_tpot = d["tpot"]
        mean_ttft = fixed + queueing + admission
        stable = (utilisation < MAX_UTILISATION) & (d["running"] <= cap) & np.isfinite(step)
    return SteadyState(
        step_s=step,
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
        running=d["running"],
        stable=stable,
    )


Index = NDArray[np.intp]
Evaluate = Callable[[Index, Array, Array], dict[str, Array]]


def _closed_decode(at_decode: Callable[[Index, Array], dict[str, Array]], running: Array) -> Array:
    """The decode batch at which `running` requests are in flight: the root of
    in flight(decode) - running between 0 (nothing decodes, nothing flows) and `running`
    (everyone decodes, and some are in prefill on top), by false position (Illinois).

    Each evaluation is explicit (see `evaluate`), so a few of them settle the closed loop.
    """
    low, high = np.zeros_like(running), running.copy()
    h_low, h_high = -running.copy(), np.ones_like(running)
    h_high = at_decode(np.arange(len(running)), high)["running"] - running
    found = high.copy()
    last_low = np.zeros(len(running), dtype=bool)
    active = np.flatnonzero((h_high > TOLERANCE * running) & (running > 0))
    found[running <= 0] = 0.0
    for _ in range(ITERATIONS):
        if len(active) == 0:
            break
        lo, hi, h_lo, h_hi = low[active], high[active], h_low[active], h_high[active]
        width = hi - lo
        x = np.clip(lo - h_lo * width / (h_hi - h_lo), lo + width / 100, hi - width / 100)
        h = at_decode(active, x)["running"] - running[active]
        under = h < 0
        again = under == last_low[active]
        h_high[active[under & again]] /= 2
        h_low[active[~under & again]] /= 2
        last_low[active] = under
        low[active[under]], h_low[active[under]] = x[under], h[under]
        high[active[~under]], h_high[active[~under]] = x[~under], h[~under]
        found[active] = x
        settled = np.abs(h) < TOLERANCE * running[active]
        settled |= high[active] - low[active] < TOLERANCE * running[active]
        active = active[~settled]
    return found


def _open_step(evaluate: Evaluate, start: Array, rate: Array, osl: Array, cap: Array) -> Array:
    """The smallest step with step = F(step), per candidate; past stability, a step that
    shows it (the KV cache or the prefill budget overflows).

    F grows with the step (a longer step holds more decoding sequences and prefill), and
    convexly; the plain iteration creeps up to the fixed point at a rate that nears 1 close
    to saturation, where a search spends most of its time. Secants through two points below
    the root of the convex excess F(s) - s stay below it and converge superlinearly; should
    one overshoot where F is not convex, false position (Illinois) in the bracket takes over.
    """
    decoding = rate * np.maximum(osl - 1, 1)

    def excess(at: Index, s: Array) -> tuple[Array, NDArray[np.bool_]]:
        d = evaluate(at, decoding[at] * s, rate[at] * s)
        overflow = (decoding[at] * s > cap[at]) | (d["utilisation"] >= MAX_UTILISATION)
        return d["step"] - s, overflow

    everyone = np.arange(len(start))
    low, g_low = start.copy(), excess(everyone, start)[0]
    previous, g_previous = low.copy(), g_low.copy()
    high, g_high = np.full_like(low, np.inf), np.full_like(low, -1.0)
    last_below = np.ones(len(low), dtype=bool)
    found = low.copy()
    active = everyone[g_low / low >= OPEN_TOLERANCE]
    for _ in range(ITERATIONS):
        lo, g_lo, hi, g_hi = low[active], g_low[active], high[active], g_high[active]
        plain = lo + g_lo
        run = lo - previous[active]
        slope = (g_lo - g_previous[active]) / np.where(run > 0, run, 1.0)
        converging = (run > 0) & (slope < 0)
        secant = lo - g_lo / np.where(converging, slope, -1.0)
        # No sign of a root ahead (the excess grows): double towards overflow instead of
        # creeping, bisecting back should a root turn up after all.
        ahead = np.where(converging, np.maximum(secant, plain), np.maximum(plain, 2 * lo))
        bracketed = np.isfinite(hi)
        false_position = lo - g_lo * (hi - lo) / np.where(bracketed, g_hi - g_lo, -1.0)
        proposal = np.where(bracketed, false_position, ahead)
        g, overflow = excess(active, proposal)
        below = g >= 0
        # Illinois: a bracket end kept twice in a row counts half, so both ends move.
        again = below == last_below[active]
        g_high[active[below & again & bracketed]] *= 0.5
        g_low[active[~below & again]] *= 0.5
        last_below[active] = below
        up, down = active[below], active[~below]
        previous[up], g_previous[up] = low[up], g_low[up]
        low[up], g_low[up] = proposal[below], g[below]
        high[down], g_high[down] = proposal[~below], g[~below]
        found[active] = proposal
        settled = np.abs(g) / proposal < OPEN_TOLERANCE
        settled |= (high[active] - low[active]) / proposal < OPEN_TOLERANCE
        active = active[~(settled | (overflow & below))]
        if len(active) == 0:
            break
    return found


def _slot_wait(running: Array, slots: Array, residence: Array, arrival_cv2: Array) -> Array:
    """Mean wait of an open loop's requests for one of `slots` sequence slots (max_num_seqs or
    the KV cache) that each request holds for `residence` seconds: Sakasegawa's G/D/c
    approximation, negligible until the slots are nearly all taken, then growing without
    bound as a queue does."""
    c = np.maximum(slots, 1.0)
    load = np.clip(running / c, 0.0, 1.0 - 1e-6)
    waiting = load ** (np.sqrt(2.0 * (c + 1.0)) - 1.0) / (c * (1.0 - load))
    return np.asarray(arrival_cv2 / 2.0 * waiting * residence)


def _wave_wait(requests: Array, service: Array, window: Array) -> Array:
    """Mean wait for the prefill budget when `requests` arrive spread over `window` seconds.

    A closed loop with fixed-ish lengths moves in waves: requests that started together
    finish within a window set by the spread of their output lengths, and their successors
    arrive together. Past saturation (requests x service > window) the wave queues for the
    excess, half of it on average; below, M/D/1 at the wave's own load. A request waits for
    the others only: one alone in flight never queues, and none waits for more than all the
    others' prompts.
    """
    others = np.maximum(requests - 1.0, 0.0)
    load = np.minimum(others * service / np.maximum(window, 1e-9), 0.9)
    backlog = np.maximum(others * service - window, 0.0) / 2
    return np.asarray(np.minimum(backlog + service * load / (2 * (1 - load)), others * service))


def closed_loop(
    c: StepCoefficients,
    isl: Array,
    osl: Array,
    concurrency: Array,
    budget: Array,
    cap: Array,
    serving: ServingCalibration,
    prefill_share: Array | float = 1.0,
    fixed_lengths: Array | bool = False,
) -> SteadyState:
    """`concurrency` requests always in flight (a benchmark client's closed loop), of fixed
    lengths or not."""
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
        prefill_share=_per_candidate(prefill_share, isl),
        wave_spread=_per_candidate(
            np.where(fixed_lengths, serving.fixed_wave_spread, serving.wave_spread), isl
        ),
    )


def open_loop_at_decode(
    c: StepCoefficients,
    isl: Array,
    osl: Array,
    decoding: Array,
    budget: Array,
    cap: Array,
    serving: ServingCalibration,
    arrival_cv2: Array,
    prefill_share: Array | float = 1.0,
) -> SteadyState:
    """The open loop whose arrival rate keeps `decoding` sequences decoding per step.

    Explicit, without a fixed point: the fast path of a capacity search. The rate rises
    with `decoding` up to the largest one a replica sustains, then falls: beyond that
    point, the same rate has a smaller, stable solution (the one `open_loop` finds).
    """
    return _solve(
        c,
        isl,
        osl,
        budget,
        cap,
        serving,
        concurrency=None,
        qps=None,
        arrival_cv2=arrival_cv2,
        prefill_share=_per_candidate(prefill_share, isl),
        decoding=decoding,
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
    prefill_share: Array | float = 1.0,
) -> SteadyState:
    """Arrivals at `qps` requests/s; `arrival_cv2` 1 is Poisson, 0 evenly spaced, above 1
    bursty."""
    return _solve(
        c,
        isl,
        osl,
        budget,
        cap,
        serving,
        concurrency=None,
        qps=qps,
        arrival_cv2=_per_candidate(arrival_cv2, isl),
        prefill_share=_per_candidate(prefill_share, isl),
    )


def _per_candidate(value: Array | float, like: Array) -> Array:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), like.shape).copy()
