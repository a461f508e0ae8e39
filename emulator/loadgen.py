"""A load generator for any OpenAI-compatible endpoint: replays a traffic profile's
arrivals and lengths against `/v1/completions` (streamed) and measures what each request
saw (TTFT, TPOT, E2E, tokens, errors).

Plain async functions, no CLI: `preflight load` and the monitoring code both call them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

from planner.loadplan import LoadProfile, PlannedRequest, schedule
from planner.percentiles import LatencyStats

CONNECT_TIMEOUT_S = 10.0
_WORD_LIST = (
    "the time people way year work day thing world life hand part child eye place week "
    "case point number group problem fact water room money story month lot study book job "
    "word system program question home side night area power game line end member law car "
    "city name team minute idea body level office door health person art war history "
    "party result"
)
WORDS = _WORD_LIST.split()
"""Common English words, about one token each in the usual BPE vocabularies; drawn at random
so that no two prompts share a prefix a server could cache."""


class EndpointError(RuntimeError):
    """The endpoint cannot be used: unreachable, refused, or no model to name."""


@dataclass(frozen=True)
class Target:
    base_url: str
    """The OpenAI API root, e.g. `http://host:8000/v1`."""
    model: str
    api_key: str | None = None
    request_timeout_s: float = 300.0
    exact_lengths: bool = True
    """Ask the server to generate exactly `max_tokens` (vLLM's `ignore_eos` and `min_tokens`;
    llama.cpp takes `min_tokens` and ignores the rest). Off for servers that refuse unknown
    fields."""


@dataclass
class Outcome:
    """One request as the client saw it; `finished` stays None while in flight."""

    planned: PlannedRequest
    sent_at: float
    first_token_at: float | None = None
    last_token_at: float | None = None
    finished: float | None = None
    output_tokens: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finished is not None and self.error is None


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    sent: int
    done: int
    in_flight: int
    errors: int
    ttft_p50_ms: float | None


class LoadReport(BaseModel):
    url: str
    model: str
    seed: int
    profile: LoadProfile
    duration_s: float
    """The sending window asked for."""
    elapsed_s: float
    """Until the last request ended (the window, or more when requests ran into the grace)."""
    sent: int
    completed: int
    incomplete: int
    """Still in flight when the grace period ran out."""
    errors: dict[str, int]
    delayed_by_max_in_flight: int
    """Arrivals that had to wait for a free slot (the offered load was not fully offered)."""
    short_outputs: int
    """Completed with fewer tokens than asked: the server stopped early (EOS), so the output
    lengths are shorter than the profile's."""
    ttft_ms: LatencyStats | None
    tpot_ms: LatencyStats | None
    e2e_ms: LatencyStats | None
    requests_per_s: float
    output_tokens_per_s: float
    output_tokens: int


async def probe(base_url: str, api_key: str | None, model: str | None) -> str:
    """The model to load (the first the server lists when none is named); fails early and
    clearly when the endpoint is unreachable."""
    url = f"{base_url.rstrip('/')}/models"
    try:
        async with httpx.AsyncClient(timeout=CONNECT_TIMEOUT_S) as client:
            response = await client.get(url, headers=_headers(api_key))
    except httpx.HTTPError as error:
        raise EndpointError(f"cannot reach {url}: {error or type(error).__name__}") from None
    if response.status_code in (401, 403):
        raise EndpointError(f"{url} refused the API key (HTTP {response.status_code})")
    if model is not None:
        return model
    try:
        models = [m["id"] for m in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        models = []
    if response.status_code != 200 or not models:
        raise EndpointError(f"{url} lists no model (HTTP {response.status_code}); give --model")
    return str(models[0])


async def run_load(
    target: Target,
    profile: LoadProfile,
    duration_s: float,
    seed: int = 0,
    max_in_flight: int = 256,
    grace_s: float = 30.0,
    on_progress: Callable[[Progress], None] | None = None,
) -> LoadReport:
    """Send the profile's requests for `duration_s`, wait up to `grace_s` for the last ones,
    and summarise."""
    run = _Run(target, profile, seed, max_in_flight)
    ticker = asyncio.create_task(_tick(run, on_progress)) if on_progress else None
    try:
        await run.send(duration_s, grace_s)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
    if on_progress is not None:
        on_progress(run.progress())
    return run.report(duration_s)


async def _tick(run: _Run, on_progress: Callable[[Progress], None]) -> None:
    while True:
        await asyncio.sleep(1.0)
        on_progress(run.progress())


@dataclass
class _Run:
    target: Target
    profile: LoadProfile
    seed: int
    max_in_flight: int
    outcomes: list[Outcome] = field(default_factory=list)
    delayed: int = 0
    start: float = field(default_factory=time.monotonic)
    end: float | None = None

    async def send(self, duration_s: float, grace_s: float) -> None:
        words = random.Random(self.seed)
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=self.max_in_flight)
        timeout = httpx.Timeout(self.target.request_timeout_s, connect=CONNECT_TIMEOUT_S)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            self.start = time.monotonic()
            for planned in schedule(self.profile, self.seed):
                if planned.at_s >= duration_s:
                    break
                await asyncio.sleep(max(0.0, self.start + planned.at_s - time.monotonic()))
                if slots.locked():
                    self.delayed += 1
                left = self.start + duration_s - time.monotonic()
                try:
                    await asyncio.wait_for(slots.acquire(), timeout=max(left, 0.0))
                except TimeoutError:
                    break
                outcome = Outcome(planned, time.monotonic())
                self.outcomes.append(outcome)
                prompt = " ".join(words.choices(WORDS, k=planned.prompt_tokens))
                task = asyncio.create_task(self._request(client, outcome, prompt))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _: slots.release())
            if tasks:
                deadline = self.start + duration_s + grace_s
                await asyncio.wait(set(tasks), timeout=max(deadline - time.monotonic(), 0.0))
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.end = max(time.monotonic(), self.start + duration_s)

    async def _request(self, client: httpx.AsyncClient, outcome: Outcome, prompt: str) -> None:
        n = outcome.planned.output_tokens
        body: dict[str, Any] = {
            "model": self.target.model,
            "prompt": prompt,
            "max_tokens": n,
            "stream": True,
        }
        if self.target.exact_lengths:
            body |= {"ignore_eos": True, "min_tokens": n}
        url = f"{self.target.base_url.rstrip('/')}/completions"
        try:
            async with client.stream(
                "POST", url, json=body, headers=_headers(self.target.api_key)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    outcome.error = f"http_{response.status_code}"
                else:
                    await _consume(response, outcome)
        except httpx.TimeoutException:
            outcome.error = "timeout"
        except httpx.TransportError:
            outcome.error = "connection"
        except (ValueError, KeyError, TypeError, IndexError):
            outcome.error = "bad_stream"
        outcome.finished = time.monotonic()
        if outcome.error is None and outcome.output_tokens == 0:
            outcome.error = "no_tokens"

    def progress(self) -> Progress:
        finished = [o for o in self.outcomes if o.finished is not None]
        ttfts = [o.first_token_at - o.sent_at for o in finished if o.ok and o.first_token_at]
        return Progress(
            elapsed_s=time.monotonic() - self.start,
            sent=len(self.outcomes),
            done=len(finished),
            in_flight=len(self.outcomes) - len(finished),
            errors=sum(1 for o in finished if o.error is not None),
            ttft_p50_ms=float(np.median(ttfts)) * 1000 if ttfts else None,
        )

    def report(self, duration_s: float) -> LoadReport:
        ok = [o for o in self.outcomes if o.ok]
        ttft = [o.first_token_at - o.sent_at for o in ok if o.first_token_at is not None]
        e2e = [(o.finished or 0.0) - o.sent_at for o in ok]
        tpot = [
            (o.last_token_at - o.first_token_at) / (o.output_tokens - 1)
            for o in ok
            if o.output_tokens > 1 and o.first_token_at is not None and o.last_token_at is not None
        ]
        elapsed = (self.end or time.monotonic()) - self.start
        tokens = sum(o.output_tokens for o in ok)
        errors = Counter(o.error for o in self.outcomes if o.finished is not None and o.error)
        return LoadReport(
            url=self.target.base_url,
            model=self.target.model,
            seed=self.seed,
            profile=self.profile,
            duration_s=duration_s,
            elapsed_s=elapsed,
            sent=len(self.outcomes),
            completed=len(ok),
            incomplete=sum(1 for o in self.outcomes if o.finished is None),
            errors={kind: count for kind, count in sorted(errors.items()) if kind},
            delayed_by_max_in_flight=self.delayed,
            short_outputs=sum(1 for o in ok if o.output_tokens < o.planned.output_tokens),
            ttft_ms=latency_stats(ttft),
            tpot_ms=latency_stats(tpot),
            e2e_ms=latency_stats(e2e),
            requests_per_s=len(ok) / elapsed,
            output_tokens_per_s=tokens / elapsed,
            output_tokens=tokens,
        )


async def _consume(response: httpx.Response, outcome: Outcome) -> None:
    """Read the server-sent events; each chunk with text is a token (vLLM and llama.cpp
    stream one token a chunk), unless the server reports usage at the end."""
    usage: int | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            break
        chunk = json.loads(payload)
        if "error" in chunk:
            outcome.error = "stream_error"
            return
        if chunk.get("choices") and chunk["choices"][0].get("text"):
            now = time.monotonic()
            outcome.first_token_at = outcome.first_token_at or now
            outcome.last_token_at = now
            outcome.output_tokens += 1
        if chunk.get("usage"):
            usage = int(chunk["usage"]["completion_tokens"])
    if usage is not None and outcome.output_tokens:
        outcome.output_tokens = usage


def latency_stats(seconds: list[float]) -> LatencyStats | None:
    """Mean and percentiles in milliseconds; None when nothing was measured."""
    if not seconds:
        return None
    ms = np.asarray(seconds) * 1000
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return LatencyStats(
        mean=float(ms.mean()), p50=float(p50), p90=float(p90), p95=float(p95), p99=float(p99)
    )


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
