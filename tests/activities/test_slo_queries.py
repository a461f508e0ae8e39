"""The SLO queries against a real Prometheus (Debian's), scraping an exporter of vLLM's
metric names whose histograms grow at known rates, so every PromQL answer is known."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from activities.slo import SloActivities, served_at
from activities.slo_queries import SloQueries, measure
from kb.catalog import observed_outcomes, planner
from kb.db import session_scope
from kb.deployments import find_or_create_deployment
from kb.slo_checks import slo_checks
from planner.observed import MAX_FACTOR, MIN_OUTCOMES
from planner.prediction import PredictionQuery
from planner.slo_alerts import E2E_BUCKETS_S, TPOT_BUCKETS_S, TTFT_BUCKETS_S
from planner.specs import EngineSettings
from settings import Settings
from tests.cli.test_cli import preflight
from tests.conftest import kb_copy
from tests.prometheus_server import prometheus, wait_for_scrapes
from workflows.payloads import Configuration, SloCheckRequest

pytestmark = pytest.mark.integration
MODEL = "llama-3-1-8b"
RATE = 10.0
"""Requests per second the exporter reports finishing."""


def _histogram(metric: str, buckets: tuple[float, ...], value: float, count: float) -> str:
    label = f'model_name="{MODEL}"'
    lines = [f"# TYPE {metric} histogram"]
    for upper in buckets:
        lines.append(f'{metric}_bucket{{{label},le="{upper}"}} {count if value <= upper else 0}')
    lines += [
        f'{metric}_bucket{{{label},le="+Inf"}} {count}',
        f"{metric}_sum{{{label}}} {count * value}",
        f"{metric}_count{{{label}}} {count}",
    ]
    return "\n".join(lines)


class Exporter:
    """vLLM-shaped /metrics: RATE requests a second, 100 output tokens each, 3 waiting;
    every request takes TTFT 0.2 s, TPOT 0.03 s and E2E 4 s, so each histogram's
    observations sit in one bucket and its quantile is linear in that bucket."""

    def __init__(self) -> None:
        started = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.text(time.monotonic() - started).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self, elapsed_s: float) -> str:
        n = RATE * elapsed_s
        label = f'model_name="{MODEL}"'
        return "\n".join(
            [
                _histogram("vllm:time_to_first_token_seconds", TTFT_BUCKETS_S, 0.2, n),
                _histogram("vllm:request_time_per_output_token_seconds", TPOT_BUCKETS_S, 0.03, n),
                _histogram("vllm:e2e_request_latency_seconds", E2E_BUCKETS_S, 4.0, n),
                "# TYPE vllm:request_success_total counter",
                f'vllm:request_success_total{{{label},finished_reason="length"}} {n}',
                "# TYPE vllm:generation_tokens_total counter",
                f"vllm:generation_tokens_total{{{label}}} {100 * n}",
                "# TYPE vllm:num_requests_waiting gauge",
                f"vllm:num_requests_waiting{{{label}}} 3",
                "# TYPE vllm:num_requests_running gauge",
                f"vllm:num_requests_running{{{label}}} 12",
                "# TYPE vllm:kv_cache_usage_perc gauge",
                f"vllm:kv_cache_usage_perc{{{label}}} 0.4",
                "",
            ]
        )


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exporter = Exporter()
    with prometheus([exporter.target], tmp_path_factory.mktemp("prometheus")) as url:
        wait_for_scrapes(url, "vllm:request_success_total", samples=6)
        yield url
    exporter.server.shutdown()


def _bucket_quantile(value: float, buckets: tuple[float, ...], q: float) -> float:
    """What histogram_quantile answers when every observation sits in value's bucket."""
    upper = next(b for b in buckets if value <= b)
    lower = max((b for b in buckets if b < upper), default=0.0)
    return lower + (upper - lower) * q


def test_every_measurement_is_what_the_histograms_say(scraped: str) -> None:
    measured = measure(PrometheusConnect(url=scraped), SloQueries(MODEL, window="4s"))
    expected = {
        "ttft_p90_ms": 1000 * _bucket_quantile(0.2, TTFT_BUCKETS_S, 0.90),
        "tpot_p90_ms": 1000 * _bucket_quantile(0.03, TPOT_BUCKETS_S, 0.90),
        "e2e_p95_ms": 1000 * _bucket_quantile(4.0, E2E_BUCKETS_S, 0.95),
        "ttft_mean_ms": 200.0,
        "tpot_mean_ms": 30.0,
        "e2e_mean_ms": 4000.0,
    }
    for name, value in expected.items():
        assert measured[name] == pytest.approx(value, rel=1e-6), name
    # A rate divides by its window: the window (4 s) must be full of scrapes (1 s apart).
    assert measured["requests_per_s"] == pytest.approx(RATE, rel=0.1)
    assert measured["output_tokens_per_s"] == pytest.approx(100 * RATE, rel=0.1)
    assert measured["queue_depth"] == 3 and measured["running"] == 12
    assert measured["replicas"] == 1 and measured["kv_cache_usage"] == pytest.approx(0.4)
    assert measured["error_ratio"] == 0
    # No DCGM exporter, no prompt-token counter here: no number is made up for them.
    assert "gpu_utilization" not in measured and "prompt_tokens_per_s" not in measured


def test_another_model_has_no_data_and_gets_no_numbers(scraped: str) -> None:
    assert measure(PrometheusConnect(url=scraped), SloQueries("other-model", "4s")) == {}


def test_the_check_compares_with_every_target_and_records_it(
    scraped: str, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, prometheus_url=scraped, slo_window="4s")
    with session_scope(database_url) as session:
        deployment = find_or_create_deployment(
            session=session, name="bot", namespace="default", target="gitops:/x"
        )
        deployment_id = deployment.id
    targets = {"ttft_p90_ms": 150.0, "tpot_p90_ms": 50.0, "e2e_p95_ms": 10_000.0}
    request = SloCheckRequest(deployment_id=deployment_id, targets=targets, model_name=MODEL)
    report = SloActivities(settings).check_slo(request)
    assert report.status == "breach" and report.breached == ["ttft_p90_ms"]
    assert "ttft_p90_ms 235 vs 150" in report.detail

    relaxed = request.model_copy(update={"targets": {**targets, "ttft_p90_ms": 500.0}})
    assert SloActivities(settings).check_slo(relaxed).status == "ok"
    unconfigured = SloActivities(Settings(database_url=database_url)).check_slo(request)
    assert unconfigured.status == "no_source" and unconfigured.measurements == {}

    with session_scope(database_url) as session:
        rows = slo_checks(session=session, deployment_id=deployment_id)
    assert [r.status for r in rows] == ["breach", "ok", "no_source"]
    assert rows[0].measurements["ttft_p90_ms"] == pytest.approx(235.0)


def test_an_unreachable_prometheus_is_an_error_not_a_number(database_url: str) -> None:
    settings = Settings(database_url=database_url, prometheus_url="http://127.0.0.1:9")
    request = SloCheckRequest(deployment_id="d", targets={"ttft_p90_ms": 1.0}, model_name=MODEL)
    report = SloActivities(settings).report(request)
    assert report.status == "error" and report.measurements == {}


LLAMA_ON_H100 = Configuration(
    model_id="meta-llama/Llama-3.1-8B-Instruct",
    gpu_id="H100-SXM-80GB",
    tp=1,
    precision="bf16",
    replicas=1,
    max_qps_per_replica=20.0,
    usd_per_replica_hour=2.5,
    peak_qps=RATE,
    prompt_tokens=500,
    output_tokens=100,
)


def test_checks_become_outcomes_that_correct_later_predictions(
    scraped: str, seeded_sqlite_url: str, tmp_path: Path
) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    settings = Settings(database_url=url, prometheus_url=scraped, slo_window="4s")
    configuration = LLAMA_ON_H100
    query = PredictionQuery(
        model_id=configuration.model_id,
        gpu_id=configuration.gpu_id,
        precision="bf16",
        isl=500,
        osl=100,
        qps=RATE,
    )
    with session_scope(url) as session:
        deployment_id = find_or_create_deployment(
            session=session, name="bot", namespace="default", target="gitops:/x"
        ).id
        before = planner(session=session).predict(query)
    request = SloCheckRequest(
        deployment_id=deployment_id,
        targets={"ttft_p90_ms": 1000.0},
        model_name=MODEL,
        configuration=configuration,
    )
    for _ in range(MIN_OUTCOMES):
        SloActivities(settings).check_slo(request)

    with session_scope(url) as session:
        outcomes = observed_outcomes(session=session)
        after = planner(session=session).predict(query)
        dashboard = slo_checks(session=session, deployment_id=deployment_id)[-1]
    # Each check keeps predicted against actual, cost included, for the dashboard.
    assert dashboard.predicted is not None
    assert dashboard.predicted["ttft_p90_ms"] == pytest.approx(outcomes[-1].ttft_predicted)
    assert dashboard.measurements["usd_per_hour"] == dashboard.predicted["usd_per_hour"] == 2.5
    assert len(outcomes) == MIN_OUTCOMES
    # The exporter's lengths: no prompt counter, so the spec's 500; 100 tokens out.
    assert outcomes[0].ttft_observed == pytest.approx(235.0)
    assert outcomes[0].ttft_predicted == pytest.approx(before.ttft_ms.p90, rel=0.05)  # type: ignore[union-attr]
    assert before.source == "modelled" and after.source == "observed"
    # Corrected by observed / predicted, within the clip that tells a broken deployment.
    for metric, observed in (("ttft_ms", 235.0), ("tpot_ms", 47.5)):
        modelled, corrected = getattr(before, metric).p90, getattr(after, metric).p90
        factor = min(max(observed / modelled, 1 / MAX_FACTOR), MAX_FACTOR)
        assert corrected == pytest.approx(modelled * factor, rel=0.05), metric
    assert after.observed and "3 checks" in after.observed and "modelled TTFT p90" in after.observed

    shown = preflight("outcomes", database_url=url)
    assert shown.returncode == 0, shown.stderr
    assert "meta-llama/Llama-3.1-8B-Instruct on H100-SXM-80GB, bf16" in shown.stdout
    assert (
        "bias over all deployments" in shown.stdout and "TTFT slower than predicted" in shown.stdout
    )
    predicted = preflight(
        *("predict", "--model", "llama-3.1-8b", "--gpu", "h100", "--precision", "bf16"),
        *("--isl", "500", "--osl", "100", "--qps", str(RATE)),
        database_url=url,
    )
    assert "source        observed" in predicted.stdout and "modelled TTFT p90" in predicted.stdout


def test_the_prediction_at_the_served_load_keeps_the_length_spread(seeded_sqlite_url: str) -> None:
    """Tail latency depends on the longest requests: the spec's p95 lengths, scaled to the
    observed means, go into the question, so E2E p95 is not predicted for equal lengths."""
    configuration = LLAMA_ON_H100.model_copy(
        update={"prompt_tokens_p95": 1500, "output_tokens_p95": 300}
    )
    served = served_at({"requests_per_s": 2.0, "output_tokens_per_s": 400.0}, configuration)
    assert served is not None
    q = served.query
    assert (q.isl, q.isl_p95, q.osl, q.osl_p95) == (500, 1500, 200, 600)
    with session_scope(seeded_sqlite_url) as session:
        model = planner(session=session)
    spread = model.predict(q)
    flat = model.predict(q.model_copy(update={"isl_p95": None, "osl_p95": None}))
    assert spread.e2e_ms and flat.e2e_ms
    assert spread.e2e_ms.p95 > 1.5 * flat.e2e_ms.p95


def test_the_prediction_at_the_served_load_runs_the_deployed_engine() -> None:
    """A deployment with an fp8 KV cache and 64 sequences a step is predicted as it runs."""
    engine = EngineSettings(kv_cache_dtype="fp8", max_num_seqs=64)
    served = served_at({"requests_per_s": 2.0}, LLAMA_ON_H100.model_copy(update={"engine": engine}))
    assert served is not None and served.query.engine == engine
    old = served_at({"requests_per_s": 2.0}, LLAMA_ON_H100)
    assert old is not None and old.query.engine == EngineSettings()
