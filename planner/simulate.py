"""Discrete-event simulation of one vLLM replica, step by step, for the chosen candidates.

The analytical model (serving.py) works with means; bursts and length distributions move
the tails. The simulator plays a request stream through vLLM's V1 scheduling loop:

- each engine step first decodes one token for every running sequence whose prompt is
  done, then spends what is left of `max_num_batched_tokens` on prompt chunks, oldest
  first, admitting waiting requests while sequences (`max_num_seqs`) and KV-cache tokens
  allow;
- a step lasts `step_seconds` (layer 2) for its decode and prefill tokens;
- when decoding would overflow the KV cache, the newest running request is preempted and
  recomputed later, as vLLM does.
Arrivals are evenly spaced, Poisson, or gamma-distributed inter-arrival gaps (any squared
coefficient of variation), or a closed loop of N clients. A prefix-cache hit rate starts
each admitted prompt with that share already computed. Everything is seeded, so a
simulation is reproducible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from planner.percentiles import lognormal_sigma
from planner.steptime import Array, StepCoefficients, step_seconds

SATURATION_GROWTH_S = 0.5
"""TTFT growth over a run (last quarter against first) that marks a growing queue."""


@dataclass(frozen=True)
class SimulationInput:
    coefficients: StepCoefficients
    """Step coefficients of exactly one candidate."""
    kv_capacity_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    request_overhead_s: float
    isl_mean: float
    osl_mean: float
    isl_p95: float | None = None
    osl_p95: float | None = None
    qps: float | None = None
    arrival_cv2: float = 1.0
    concurrency: int | None = None
    requests: int = 400
    warmup_requests: int = 40
    """Requests at the start left out of the statistics (the queue is still empty)."""
    seed: int = 0
    prefix_cache_hit_rate: float = 0.0


@dataclass
class SimulationResult:
    ttft_s: Array
    tpot_s: Array
    e2e_s: Array
    duration_s: float
    completed: int
    preemptions: int
    saturated: bool
    """The queue was still growing at the end: the load exceeds what the replica sustains."""

    offered_qps: float | None = None

    @property
    def requests_per_s(self) -> float:
        """The offered rate when the replica keeps up, else what it actually completed."""
        if self.offered_qps is not None and not self.saturated:
            return self.offered_qps
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0


@dataclass
class SequenceState:
    """One request as the scheduler sees it (the simulator's and the emulator's)."""

    arrival: float
    prompt: int
    output: int
    prefilled: int = 0
    generated: int = 0
    first_token: float | None = None
    finished: float | None = None
    admitted_order: int = 0


@dataclass(frozen=True)
class EngineStep:
    """What one engine step runs, and how long it takes."""

    decoding: list[SequenceState]
    chunks: list[tuple[SequenceState, int]]
    """Prompt chunks: (sequence, tokens of its prompt prefilled in this step)."""
    seconds: float

    @property
    def prefill_tokens(self) -> int:
        return sum(take for _, take in self.chunks)


@dataclass
class Scheduler:
    """vLLM V1's scheduling loop over one replica, one engine step at a time."""

    coefficients: StepCoefficients
    kv_capacity_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    waiting: deque[SequenceState] = field(default_factory=deque)
    running: list[SequenceState] = field(default_factory=list)
    admitted: int = 0
    preemptions: int = 0
    prefix_cache_hit_rate: float = 0.0
    """Share of each admitted prompt found in the prefix cache: prefill skips it."""

    @property
    def kv_tokens_used(self) -> int:
        return sum(r.prefilled + r.generated for r in self.running)

    def next_step(self) -> EngineStep:
        """Decode every running sequence whose prompt is done, then fill the rest of the token
        budget with prompt chunks, oldest first, admitting waiting requests while sequences and
        KV-cache tokens allow."""
        running, waiting = self.running, self.waiting
        used_kv = self.kv_tokens_used
        decoding = [r for r in running if r.prefilled >= r.prompt]
        # Decoding needs one more KV slot per sequence; preempt the newest if it does not fit.
        while decoding and used_kv + len(decoding) > self.kv_capacity_tokens:
            victim = max(running, key=lambda r: r.admitted_order)
            running.remove(victim)
            used_kv -= victim.prefilled + victim.generated
            victim.prefilled, victim.generated = 0, 0
            waiting.appendleft(victim)
            self.preemptions += 1
            decoding = [r for r in running if r.prefilled >= r.prompt]
        budget = self.max_num_batched_tokens - len(decoding)
        chunks: list[tuple[SequenceState, int]] = []
        for r in running:
            if r.prefilled < r.prompt and budget > 0:
                take = min(r.prompt - r.prefilled, budget)
                chunks.append((r, take))
                budget -= take
        while waiting and budget > 0 and len(running) < self.max_num_seqs:
            candidate = waiting[0]
            if used_kv + candidate.prompt + len(decoding) > self.kv_capacity_tokens:
                break
            waiting.popleft()
            self.admitted += 1
            candidate.admitted_order = self.admitted
            running.append(candidate)
            used_kv += candidate.prompt
            candidate.prefilled = int(candidate.prompt * self.prefix_cache_hit_rate)
            take = min(candidate.prompt - candidate.prefilled, budget)
            chunks.append((candidate, take))
            budget -= take
        return EngineStep(decoding, chunks, self.step_seconds(decoding, chunks))

    def step_seconds(
        self, decoding: list[SequenceState], chunks: list[tuple[SequenceState, int]]
    ) -> float:
        """Layer 2's duration for this batch composition."""
        prefill_tokens = sum(take for _, take in chunks)
        decode_context = (
            float(np.mean([r.prompt + r.generated for r in decoding])) if decoding else 0.0
        )
        prefill_context = (
            float(np.mean([r.prefilled + take / 2 for r, take in chunks])) if chunks else 0.0
        )
        return float(
            step_seconds(
                self.coefficients, len(decoding), decode_context, prefill_tokens, prefill_context
            )[0]
        )

    def complete(self, step: EngineStep, now: float, overhead_s: float) -> list[SequenceState]:
        """Apply a step that ended at `now`; returns the sequences it finished."""
        for r in step.decoding:
            r.generated += 1
        for r, take in step.chunks:
            r.prefilled += take
            if r.prefilled >= r.prompt and r.first_token is None:
                r.first_token = now + overhead_s
                r.generated = max(r.generated, 1)
        finished = [r for r in self.running if r.generated >= r.output and r.prefilled >= r.prompt]
        for r in finished:
            r.finished = now + overhead_s
            self.running.remove(r)
        return finished


LENGTH_CAP_FACTOR = 4.0
"""Lengths are clipped at this many times their p95 (or mean): a lognormal tail otherwise
now and then asks for a prompt far beyond any context window."""


@dataclass
class Lengths:
    """Token lengths: lognormal with the given mean and p95 (none: always the mean),
    clipped to 1 .. LENGTH_CAP_FACTOR x p95 (shared by the simulator and the load
    generator)."""

    rng: np.random.Generator
    mean: float
    p95: float | None
    _sigma: float = field(init=False)
    _cap: int = field(init=False)

    def __post_init__(self) -> None:
        self._sigma = float(lognormal_sigma((self.p95 or self.mean) / self.mean))
        self._cap = max(1, round(LENGTH_CAP_FACTOR * (self.p95 or self.mean)))

    def draw(self) -> int:
        if self._sigma == 0:
            return max(1, round(self.mean))
        value = self.mean * np.exp(self._sigma * self.rng.standard_normal() - self._sigma**2 / 2)
        return min(max(1, round(float(value))), self._cap)


def arrival_gaps(rng: np.random.Generator, qps: float, cv2: float, n: int) -> Array:
    """`n` inter-arrival gaps (s) at mean rate `qps` with squared CV `cv2`: evenly spaced at
    0, Poisson at 1, gamma otherwise (shared by the simulator and the load generator)."""
    if cv2 == 0.0:
        return np.full(n, 1.0 / qps)
    if cv2 == 1.0:
        return np.asarray(rng.exponential(1.0 / qps, n))
    # Gamma with mean 1/qps and squared CV cv2: shape 1/cv2, scale cv2/qps.
    return np.asarray(rng.gamma(1.0 / cv2, cv2 / qps, n))


def simulate(sim: SimulationInput) -> SimulationResult:
    if (sim.qps is None) == (sim.concurrency is None):
        raise ValueError("give exactly one of qps (open loop) or concurrency (closed loop)")
    rng = np.random.default_rng(sim.seed)
    prompts = Lengths(rng, sim.isl_mean, sim.isl_p95)
    outputs = Lengths(rng, sim.osl_mean, sim.osl_p95)
    total = sim.requests + sim.warmup_requests
    pending: deque[SequenceState] = deque()
    if sim.qps is not None:
        arrivals = np.cumsum(arrival_gaps(rng, sim.qps, sim.arrival_cv2, total))
        pending.extend(SequenceState(float(t), prompts.draw(), outputs.draw()) for t in arrivals)
    else:
        assert sim.concurrency is not None
        pending.extend(
            SequenceState(0.0, prompts.draw(), outputs.draw())
            for _ in range(min(sim.concurrency, total))
        )
    issued = len(pending)
    scheduler = Scheduler(
        sim.coefficients,
        sim.kv_capacity_tokens,
        sim.max_num_seqs,
        sim.max_num_batched_tokens,
        prefix_cache_hit_rate=sim.prefix_cache_hit_rate,
    )
    done: list[SequenceState] = []
    now = 0.0
    while len(done) < total:
        while pending and pending[0].arrival <= now:
            scheduler.waiting.append(pending.popleft())
        if not scheduler.running and not scheduler.waiting:
            now = pending[0].arrival
            continue
        step = scheduler.next_step()
        now += step.seconds
        for r in scheduler.complete(step, now, sim.request_overhead_s):
            done.append(r)
            if sim.concurrency is not None and issued < total:
                pending.append(SequenceState(r.finished or now, prompts.draw(), outputs.draw()))
                issued += 1
    measured = sorted(done, key=lambda r: r.arrival)[sim.warmup_requests :]
    ttft = np.array([(r.first_token or 0.0) - r.arrival for r in measured])
    e2e = np.array([(r.finished or 0.0) - r.arrival for r in measured])
    tpot = np.array(
        [((r.finished or 0.0) - (r.first_token or 0.0)) / max(r.output - 1, 1) for r in measured]
    )
    start = measured[0].arrival if measured else 0.0
    duration = max(now - start, 1e-9)
    # A replica that keeps up with an open loop shows no trend in TTFT over the run; one
    # that cannot keeps queueing, and its later requests wait ever longer.
    saturated = False
    if sim.qps is not None and len(ttft) >= 8:
        quarter = len(ttft) // 4
        first, last = float(ttft[:quarter].mean()), float(ttft[-quarter:].mean())
        saturated = last - first > max(first, SATURATION_GROWTH_S)
    return SimulationResult(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        duration_s=duration,
        completed=len(measured),
        preemptions=scheduler.preemptions,
        saturated=saturated,
    )
