"""The vLLM emulator through the `openai` client: API shapes, metrics, and timing that
follows the planner's step model under the load it actually receives.

Timing tolerances are honest for these small, shared 2-core machines: asyncio sleeps and
the client's own parsing add about a millisecond of jitter to steps of ~6 ms.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import uvicorn

from emulator.server import HEADER, EmulatorConfig, create_emulator, emulator_config
from kb.catalog import planner
from kb.db import session_scope
from planner.predict import Planner
from planner.prediction import PredictionQuery
from tests.cli.test_cli import PREFLIGHT
from tests.conftest import MEASURED_DIR, free_port

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GPU = "H100-SXM-80GB"
PROMPT = "word " * 100  # 500 characters: 125 prompt tokens
PROMPT_TOKENS = 125
TPOT_TOLERANCE = 0.25


@pytest.fixture(scope="module")
def catalog(seeded_sqlite_url: str) -> Planner:
    with session_scope(seeded_sqlite_url) as session:
        return planner(session=session)


@pytest.fixture(scope="module")
def config(catalog: Planner) -> EmulatorConfig:
    return emulator_config(catalog, MODEL, GPU, served_model_name="llama")


@pytest.fixture(scope="module")
def base_url(config: EmulatorConfig) -> Iterator[str]:
    """The emulator served in-process by uvicorn on a free port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_emulator(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"emulator at {url} did not become healthy")


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def _stream_timing(url: str, max_tokens: int, model: str = "llama") -> tuple[float, float, int]:
    """TTFT and TPOT of one streamed completion as the client sees them, and its tokens."""
    start = time.perf_counter()
    stamps = []
    for chunk in _client(url).completions.create(
        model=model, prompt=PROMPT, max_tokens=max_tokens, stream=True
    ):
        if chunk.choices and chunk.choices[0].text:
            stamps.append(time.perf_counter())
    return stamps[0] - start, (stamps[-1] - stamps[0]) / (len(stamps) - 1), len(stamps)


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics").text


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"no series {series}"
    return float(match.group(1))


def _predicted_tpot_s(catalog: Planner, max_tokens: int) -> float:
    query = PredictionQuery(
        model_id=MODEL, gpu_id=GPU, isl=PROMPT_TOKENS, osl=max_tokens, concurrency=1
    )
    prediction = catalog.predict(query)
    assert prediction.tpot_ms is not None
    return prediction.tpot_ms.mean / 1e3


def test_completions_and_chat_through_the_openai_client(base_url: str) -> None:
    client = _client(base_url)
    whole = client.completions.create(model="llama", prompt=PROMPT, max_tokens=5)
    assert len(whole.choices[0].text.split()) == 5
    assert whole.usage is not None and whole.usage.prompt_tokens == PROMPT_TOKENS
    assert whole.usage.completion_tokens == 5 and whole.choices[0].finish_reason == "length"
    assert "emulator" in (whole.system_fingerprint or "")

    chat = client.chat.completions.create(
        model="llama",
        messages=[{"role": "user", "content": "Hello there"}],
        max_completion_tokens=4,
    )
    assert len((chat.choices[0].message.content or "").split()) == 4
    assert chat.usage is not None and chat.usage.completion_tokens == 4

    words, usage = [], None
    for chunk in client.chat.completions.create(
        model="llama",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=7,
        stream=True,
        stream_options={"include_usage": True},
    ):
        words += [c.delta.content for c in chunk.choices if c.delta.content]
        usage = chunk.usage or usage
    assert len(words) == 7 and usage is not None and usage.completion_tokens == 7

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="llama", prompt="x", max_tokens=10**6)


def test_models_health_and_emulator_header(base_url: str) -> None:
    models = _client(base_url).models.list()
    assert [m.id for m in models.data] == ["llama"]
    health = httpx.get(f"{base_url}/health")
    assert health.status_code == 200 and health.headers[HEADER] == "true"


def test_metrics_have_vllm_names_types_and_labels_and_move(base_url: str) -> None:
    before = _metrics(base_url)
    _client(base_url).completions.create(model="llama", prompt=PROMPT, max_tokens=3)
    after = _metrics(base_url)
    label = '{model_name="llama"}'
    for name, kind in {
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:time_per_output_token_seconds": "histogram",
        "vllm:request_time_per_output_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram",
        "vllm:e2e_request_latency_seconds": "histogram",
        "vllm:request_queue_time_seconds": "histogram",
        "vllm:num_requests_running": "gauge",
        "vllm:num_requests_waiting": "gauge",
        "vllm:gpu_cache_usage_perc": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:prompt_tokens_total": "counter",
        "vllm:generation_tokens_total": "counter",
        "vllm:request_success_total": "counter",
    }.items():
        assert f"# TYPE {name} {kind}" in after
    assert 'vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="llama"}' in after
    success = 'vllm:request_success_total{finished_reason="length",model_name="llama"}'
    assert _value(after, success) == _value(before, success) + 1
    for counter, step in (("prompt_tokens_total", PROMPT_TOKENS), ("generation_tokens_total", 3)):
        series = f"vllm:{counter}{label}"
        assert _value(after, series) == _value(before, series) + step
    e2e = f"vllm:e2e_request_latency_seconds_count{label}"
    assert _value(after, e2e) == _value(before, e2e) + 1


def test_single_request_tpot_follows_the_planner(base_url: str, catalog: Planner) -> None:
    max_tokens = 120
    _, tpot, tokens = _stream_timing(base_url, max_tokens)
    predicted = _predicted_tpot_s(catalog, max_tokens)
    assert tokens == max_tokens
    assert abs(tpot / predicted - 1) < TPOT_TOLERANCE, (tpot, predicted)


def _server_ttft(url: str, before: str) -> float:
    """Mean TTFT the emulator recorded since the `before` scrape."""
    after, label = _metrics(url), '{model_name="llama"}'
    total, count = (
        _value(after, f"vllm:time_to_first_token_seconds_{part}{label}")
        - _value(before, f"vllm:time_to_first_token_seconds_{part}{label}")
        for part in ("sum", "count")
    )
    return total / count


def test_concurrent_load_queues_and_ttft_grows(base_url: str) -> None:
    # 4,000-token prompts: sixteen of them need eight 8,192-token prefill steps, so the
    # growth comes from the step model's queueing, not from the client's own overhead.
    prompt = "word " * 3200

    def ttft() -> float:
        start = time.perf_counter()
        for chunk in _client(base_url).completions.create(
            model="llama", prompt=prompt, max_tokens=10, stream=True
        ):
            if chunk.choices and chunk.choices[0].text:
                break
        return time.perf_counter() - start

    before = _metrics(base_url)
    single = ttft()
    single_server = _server_ttft(base_url, before)
    before = _metrics(base_url)
    with ThreadPoolExecutor(16) as pool:
        loaded = sorted(pool.map(lambda _: ttft(), range(16)))
    loaded_server = _server_ttft(base_url, before)
    assert loaded_server > 3 * single_server, (single_server, loaded_server)
    assert loaded[-1] > 3 * single, (single, loaded)


@pytest.mark.integration  # a `preflight` process
def test_cli_serves_and_slowdown_scales_step_time(
    seeded_sqlite_url: str, base_url: str, catalog: Planner
) -> None:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": seeded_sqlite_url,
        "PREFLIGHT_MEASURED_DATA_DIR": str(MEASURED_DIR),
    }
    args = ["emulate", "--model", "llama-3.1-8b", "--gpu", "h100", "--port", str(port)]
    process = subprocess.Popen(
        [PREFLIGHT, *args, "--slowdown", "2", "--served-model-name", "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url)
        _, slow, _ = _stream_timing(url, 80, model="slow")
        _, fast, _ = _stream_timing(base_url, 80)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert "EMULATED" in out
    assert 1.6 < slow / fast < 2.4, (slow, fast)
    assert abs(slow / (2 * _predicted_tpot_s(catalog, 80)) - 1) < TPOT_TOLERANCE


@pytest.mark.integration  # a `preflight` process
def test_cli_refuses_unknown_names_and_configs_that_do_not_fit(seeded_sqlite_url: str) -> None:
    env = os.environ | {"DATABASE_URL": seeded_sqlite_url}
    unknown = subprocess.run(
        [PREFLIGHT, "emulate", "--model", "no-such-model", "--gpu", "h100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr
    too_big = subprocess.run(
        [PREFLIGHT, "emulate", "--model", "llama-3.1-70b-base", "--gpu", "h100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert too_big.returncode == 2 and "exceed the usable" in too_big.stderr
