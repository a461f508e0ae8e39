"""A vLLM-compatible emulator: the OpenAI API and vLLM's metrics, timed by the planner.

FOR DEMOS, END-TO-END TESTS AND REHEARSALS ONLY. It runs no model: every answer is filler
words, one per token. What it does emulate is timing. One asyncio loop plays vLLM V1's
continuous batching in real time with the simulator's own scheduler
(`planner.simulate.Scheduler`: decodes first, then prefill chunks under
`max_num_batched_tokens`, `max_num_seqs` and the KV-cache capacity from `planner.memory`),
and sleeps each engine step for the calibrated step time of that batch (layer 2,
`planner.steptime`), times `slowdown`. Tokens are released at the end of their step, so
queueing, batching and TTFT growth under load are real, not drawn from a distribution.

Every response carries the header `X-Preflight-Emulator: true`, and completions say so in
`system_fingerprint`.

Prompt tokens are counted as ceil(characters / 4) (OpenAI's rule of thumb for English),
plus 4 per chat message for the chat template.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from emulator.metrics import VllmMetrics
from planner.calibration import decode_correction
from planner.memory import fit
from planner.predict import Planner
from planner.simulate import EngineStep, Scheduler, SequenceState
from planner.specs import EngineSettings, Precision, ServingConfig
from planner.steptime import StepCoefficients, calibrate, shape

FINGERPRINT = "preflight-emulator (not a real model; for demos and tests only)"
HEADER = "X-Preflight-Emulator"
DEFAULT_MAX_TOKENS = 256
CHARS_PER_TOKEN = 4
CHAT_TOKENS_PER_MESSAGE = 4
CATCH_UP_S = 0.05
"""A step that starts late by less than this is shortened so that the engine keeps the
model's pace despite event-loop jitter; later than this, the engine was idle or starved."""
FILLER = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "emulated")


class EmulatorError(ValueError):
    """The emulator cannot be configured as asked; the message says why."""


@dataclass(frozen=True)
class EmulatorConfig:
    served_model_name: str
    model_id: str
    coefficients: StepCoefficients
    """Step coefficients of exactly this configuration."""
    kv_capacity_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    request_overhead_s: float
    decode_level: float = 1.0
    decode_slope: float = 0.0
    """The architecture's TPOT correction (`planner.calibration.decode_correction`)."""
    slowdown: float = 1.0


def emulator_config(
    planner: Planner,
    model_id: str,
    gpu_id: str,
    tp: int = 1,
    precision: Precision | None = None,
    slowdown: float = 1.0,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
) -> EmulatorConfig:
    """The emulator for one catalog configuration, as `Planner.simulate` would time it (batch
    limits left unset take vLLM's default on the GPU)."""
    if slowdown <= 0:
        raise EmulatorError(f"slowdown must be above 0, got {slowdown}")
    if model_id not in planner.models:
        raise EmulatorError(f"unknown model '{model_id}'")
    if gpu_id not in planner.gpus:
        raise EmulatorError(f"unknown GPU '{gpu_id}'")
    model, gpu = planner.models[model_id], planner.gpus[gpu_id]
    settings = EngineSettings(
        max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens
    )
    cfg = ServingConfig(tp=tp, precision=precision or model.precision, **settings.on(gpu))
    context = max_model_len or model.max_context_tokens
    memory = fit(model, gpu, cfg, context)
    if not memory.fits:
        raise EmulatorError(f"{model_id} on {tp} x {gpu_id} ({cfg.precision}): {memory.reason}")
    if not gpu.supports(cfg.precision):
        raise EmulatorError(f"{gpu_id} cannot serve {cfg.precision} weights")
    calibration, _ = planner.calibration.step(gpu_id, cfg.precision, model.size_class)
    level, slope = planner.calibration.correction(model.architecture_key)
    coefficients = calibrate(shape([(model, gpu, cfg)]), [calibration])
    return EmulatorConfig(
        served_model_name=served_model_name or model_id,
        model_id=model_id,
        coefficients=coefficients,
        kv_capacity_tokens=memory.kv_capacity_tokens,
        max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        max_model_len=context,
        request_overhead_s=float(coefficients.request_overhead_s[0]),
        decode_level=level,
        decode_slope=slope,
        slowdown=slowdown,
    )


@dataclass(eq=False)
class _Live(SequenceState):
    """A request in the engine; `events` receives the tokens of each step, then None."""

    events: asyncio.Queue[int | None] = field(default_factory=asyncio.Queue)
    emitted: int = 0
    queued_at: float = 0.0
    admitted_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None


class Engine:
    """Continuous batching in real time: one loop, one engine step after another."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.scheduler = Scheduler(
            config.coefficients,
            config.kv_capacity_tokens,
            config.max_num_seqs,
            config.max_num_batched_tokens,
        )
        self.metrics = VllmMetrics(
            config.served_model_name,
            running=lambda: float(len(self.scheduler.running)),
            waiting=lambda: float(len(self.scheduler.waiting)),
            kv_usage=lambda: self.scheduler.kv_tokens_used / config.kv_capacity_tokens,
        )
        self._wake = asyncio.Event()

    def step_duration(self, step: EngineStep) -> float:
        """The planner's step time, with the architecture's decode correction on pure decode
        steps (where `Planner.simulate` applies it), times the slowdown."""
        seconds = step.seconds
        if not step.chunks and step.decoding:
            c = self.config
            seconds *= float(decode_correction(c.decode_level, c.decode_slope, len(step.decoding)))
        return seconds * self.config.slowdown

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = loop.time()
        while True:
            if not self.scheduler.running and not self.scheduler.waiting:
                self._wake.clear()
                await self._wake.wait()
            now = loop.time()
            start = clock if now - clock < CATCH_UP_S else now
            step = self.scheduler.next_step()
            for r, _ in step.chunks:
                if isinstance(r, _Live) and r.admitted_at is None:
                    r.admitted_at = now
                    self.metrics.queue.observe(now - r.queued_at)
            clock = start + self.step_duration(step)
            await asyncio.sleep(max(clock - loop.time(), 0.0))
            finished = self.scheduler.complete(step, clock, 0.0)
            self._emit(step, finished, loop.time())

    def _emit(self, step: EngineStep, finished: list[SequenceState], at: float) -> None:
        for r in {id(r): r for r in [*step.decoding, *(r for r, _ in step.chunks)]}.values():
            if not isinstance(r, _Live) or r.generated <= r.emitted:
                continue  # a prompt chunk that did not finish, or a recomputed preemption
            new = r.generated - r.emitted
            if r.emitted == 0:
                r.first_token_at = at
                self.metrics.ttft.observe(at - r.arrival)
            elif r.last_token_at is not None:
                self.metrics.itl.observe(at - r.last_token_at)
                self.metrics.tpot_per_token.observe(at - r.last_token_at)
            r.emitted, r.last_token_at = r.generated, at
            self.metrics.generation_tokens.inc(new)
            r.events.put_nowait(new)
        for r in finished:
            if isinstance(r, _Live):
                self.metrics.e2e.observe(at - r.arrival)
                if r.output > 1 and r.first_token_at is not None:
                    self.metrics.tpot.observe((at - r.first_token_at) / (r.output - 1))
                self.metrics.success.inc(value="length")
                r.events.put_nowait(None)

    async def generate(self, prompt_tokens: int, max_tokens: int) -> AsyncIterator[int]:
        """Token counts as the engine releases them, step by step."""
        loop = asyncio.get_running_loop()
        arrival = loop.time()
        # HTTP, tokenisation and detokenisation outside the engine steps.
        await asyncio.sleep(self.config.request_overhead_s * self.config.slowdown)
        live = _Live(arrival=arrival, prompt=prompt_tokens, output=max_tokens)
        live.queued_at = loop.time()
        self.metrics.prompt_tokens.inc(prompt_tokens)
        self.scheduler.waiting.append(live)
        self._wake.set()
        try:
            while (count := await live.events.get()) is not None:
                yield count
        finally:
            if live.finished is None:  # the client went away: free its slot
                self._abort(live)

    def _abort(self, live: _Live) -> None:
        with suppress(ValueError):
            self.scheduler.waiting.remove(live)
        with suppress(ValueError):
            self.scheduler.running.remove(live)
        self.metrics.success.inc(value="abort")


class _Body(BaseModel):
    # Clients send sampling parameters (temperature, top_p, ...) that filler text ignores.
    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class CompletionRequest(_Body):
    prompt: str | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _chat_tokens(messages: list[ChatMessage]) -> int:
    def text(m: ChatMessage) -> str:
        if isinstance(m.content, list):
            return " ".join(str(part.get("text", "")) for part in m.content)
        return m.content or ""

    return sum(count_tokens(text(m)) + CHAT_TOKENS_PER_MESSAGE for m in messages)


def _error(status: int, message: str) -> JSONResponse:
    """vLLM's error body (the `openai` client reads `message`)."""
    kind = "NotFoundError" if status == 404 else "BadRequestError"
    return JSONResponse(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status_code=status,
    )


def create_emulator(config: EmulatorConfig) -> FastAPI:
    """The emulator's app; its engine loop runs while the app is served."""
    engine = Engine(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.run())
        yield
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    app = FastAPI(title="Preflight vLLM emulator (demos and tests only)", lifespan=lifespan)
    app.state.engine = engine

    @app.middleware("http")
    async def mark(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers[HEADER] = "true"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return _error(400, problems)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            engine.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": config.served_model_name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "preflight-emulator",
                    "root": config.model_id,
                    "parent": None,
                    "max_model_len": config.max_model_len,
                }
            ],
        }

    def check(body: _Body, prompt_tokens: int, max_tokens: int) -> JSONResponse | None:
        if body.model != config.served_model_name:
            return _error(404, f"The model `{body.model}` does not exist.")
        if prompt_tokens + max_tokens > config.max_model_len:
            return _error(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens; the "
                f"request has {prompt_tokens} prompt tokens and asks for {max_tokens} more.",
            )
        return None

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> Response:
        if isinstance(body.prompt, list) and len(body.prompt) != 1:
            return _error(400, "prompt: the emulator serves one prompt per request")
        prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
        return await _serve(body, count_tokens(prompt), body.max_tokens, "text_completion")

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> Response:
        limit = body.max_completion_tokens or body.max_tokens
        return await _serve(body, _chat_tokens(body.messages), limit, "chat.completion")

    async def _serve(
        body: _Body,
        prompt_tokens: int,
        limit: int | None,
        kind: Literal["text_completion", "chat.completion"],
    ) -> Response:
        max_tokens = limit or DEFAULT_MAX_TOKENS
        if (problem := check(body, prompt_tokens, max_tokens)) is not None:
            return problem
        reply = _Reply(kind, config.served_model_name, prompt_tokens, max_tokens)
        tokens = engine.generate(prompt_tokens, max_tokens)
        if body.stream:
            usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(reply.stream(tokens, usage), media_type="text/event-stream")
        words = []
        async for count in tokens:
            words.extend(reply.words(count))
        return JSONResponse(reply.whole("".join(words)))

    return app


@dataclass
class _Reply:
    """OpenAI/vLLM response shapes for one request."""

    kind: Literal["text_completion", "chat.completion"]
    model: str
    prompt_tokens: int
    max_tokens: int
    id: str = field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    _filler: itertools.cycle[str] = field(default_factory=lambda: itertools.cycle(FILLER))

    def words(self, count: int) -> list[str]:
        return [f" {next(self._filler)}" for _ in range(count)]

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"chat{self.id}" if self.kind == "chat.completion" else self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.max_tokens,
            "total_tokens": self.prompt_tokens + self.max_tokens,
        }

    def whole(self, text: str) -> dict[str, Any]:
        if self.kind == "chat.completion":
            message = {"role": "assistant", "content": text}
            choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        return self._envelope(self.kind, [{**choice, "finish_reason": "length"}]) | {
            "usage": self._usage()
        }

    def _chunk(self, text: str | None, finish: str | None, first: bool = False) -> str:
        if self.kind == "chat.completion":
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            kind = "chat.completion.chunk"
        else:
            choice, kind = {"index": 0, "text": text or ""}, "text_completion"
        body = self._envelope(kind, [{**choice, "logprobs": None, "finish_reason": finish}])
        return f"data: {json.dumps(body)}\n\n"

    async def stream(self, tokens: AsyncIterator[int], usage: bool) -> AsyncIterator[str]:
        if self.kind == "chat.completion":
            yield self._chunk(None, None, first=True)
        async for count in tokens:
            for word in self.words(count):
                yield self._chunk(word, None)
        yield self._chunk(None if self.kind == "chat.completion" else "", "length")
        if usage:  # OpenAI's last chunk: no choices, the usage of the whole request
            kind = "chat.completion.chunk" if self.kind == "chat.completion" else self.kind
            yield f"data: {json.dumps(self._envelope(kind, []) | {'usage': self._usage()})}\n\n"
        yield "data: [DONE]\n\n"
