"""The load generator: its arrival and length sampling, its profile and option checks, and
`preflight load` (a real subprocess) against a real llama.cpp server."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.load import parse_duration
from planner.loadplan import LoadProfile, PlannedRequest, ProfileError, load_profile, schedule
from planner.requirements import Burstiness
from tests.conftest import free_port
from tests.llm_server import llama_server, llama_server_log  # noqa: F401

PREFLIGHT = str(Path(sys.executable).parent / "preflight")
TRAFFIC: dict[str, Any] = {
    "prompt_tokens_mean": 300,
    "prompt_tokens_p95": 900,
    "output_tokens_mean": 80,
    "output_tokens_p95": 200,
    "steady_qps": 5,
}


def planned(burstiness: Burstiness, n: int = 20_000, seed: int = 1) -> list[PlannedRequest]:
    profile = load_profile({"traffic": TRAFFIC | {"burstiness": burstiness}})
    return list(itertools.islice(schedule(profile, seed), n))


def count_cv(requests: list[PlannedRequest], window_s: float = 1.0) -> float:
    """Coefficient of variation of the number of arrivals per window."""
    times = np.array([r.at_s for r in requests])
    counts = np.bincount((times // window_s).astype(int))[:-1]
    return float(counts.std() / counts.mean())


# Sampling


@pytest.mark.parametrize("burstiness", ["low", "medium", "high"])
def test_arrival_rate_matches_the_profile(burstiness: Burstiness) -> None:
    requests = planned(burstiness)
    rate = len(requests) / requests[-1].at_s
    assert rate == pytest.approx(5, rel=0.05)


def test_bursty_arrivals_vary_more_than_poisson() -> None:
    poisson, medium, high = (count_cv(planned(b)) for b in ("low", "medium", "high"))
    # Poisson counts in 1 s windows at 5/s: CV = 1/sqrt(5).
    assert poisson == pytest.approx(1 / np.sqrt(5), rel=0.1)
    assert poisson < medium < high
    assert high > 1.5 * poisson


def test_lengths_match_mean_and_p95() -> None:
    requests = planned("low")
    prompts = np.array([r.prompt_tokens for r in requests])
    outputs = np.array([r.output_tokens for r in requests])
    assert prompts.mean() == pytest.approx(300, rel=0.05)
    assert np.percentile(prompts, 95) == pytest.approx(900, rel=0.05)
    assert outputs.mean() == pytest.approx(80, rel=0.05)
    assert np.percentile(outputs, 95) == pytest.approx(200, rel=0.05)
    assert prompts.min() >= 1 and prompts.max() <= 4 * 900


def test_schedule_is_reproducible_and_fixed_lengths_without_p95() -> None:
    assert planned("high", 50) == planned("high", 50)
    assert planned("high", 50) != planned("high", 50, seed=2)
    fixed = load_profile({"traffic": {"prompt_tokens_mean": 10, "output_tokens_mean": 4}}, qps=2)
    first = list(itertools.islice(schedule(fixed, 0), 20))
    assert {(r.prompt_tokens, r.output_tokens) for r in first} == {(10, 4)}


# Profiles and options


def test_an_intent_file_is_a_profile() -> None:
    """A DeploymentIntent (what `preflight whatif --spec` reads) with its traffic shape."""
    intent = {
        "use_case": "chatbot",
        "expected_qps": 0.5,
        "traffic": {"prompt_tokens_mean": 50, "output_tokens_mean": 10, "burstiness": "high"},
    }
    profile = load_profile(intent)
    assert profile.qps == 0.5 and profile.traffic.burstiness == "high"
    assert load_profile(intent, qps=3).qps == 3
    peak_only = load_profile({"traffic": TRAFFIC | {"steady_qps": None, "peak_qps": 7}})
    assert peak_only.qps == 7
    assert isinstance(profile, LoadProfile)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"use_case": "chatbot"}, "traffic: missing"),
        ({"traffic": TRAFFIC | {"prompt_tokens_mean": -3}}, "traffic.prompt_tokens_mean"),
        ({"traffic": TRAFFIC | {"burstiness": "wild"}}, "traffic.burstiness"),
        ({"traffic": TRAFFIC | {"qps": 3}}, "traffic.qps"),
        ({"traffic": {"prompt_tokens_mean": 5, "steady_qps": 1}}, "traffic.output_tokens_mean"),
        ({"traffic": TRAFFIC | {"steady_qps": None}}, "traffic.steady_qps: missing"),
    ],
)
def test_bad_profiles_name_the_field(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ProfileError, match=named):
        load_profile(data)


def test_durations() -> None:
    assert parse_duration("60s") == 60
    assert parse_duration("2m") == 120
    assert parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("", "0", "-5s", "10 minutes", "5d"):
        with pytest.raises(ValueError, match="--duration"):
            parse_duration(bad)


# The command


def preflight_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREFLIGHT, "load", *args], capture_output=True, text=True, timeout=120)


def write_profile(tmp_path: Path, traffic: dict[str, Any], name: str = "profile") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"traffic": traffic}))  # JSON is YAML
    return path


@pytest.mark.integration  # a `preflight` process
def test_cli_errors_are_clear(tmp_path: Path) -> None:
    good = write_profile(tmp_path, TRAFFIC)
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    cases = [
        (["--url", nowhere, "--profile", str(good), "--duration", "ten"], "--duration 'ten'"),
        (
            ["--url", nowhere, "--profile", str(write_profile(tmp_path, {"steady_qps": 1}, "bad"))],
            "traffic.prompt_tokens_mean: missing",
        ),
        (["--url", nowhere, "--profile", str(tmp_path / "none.yaml")], "none.yaml"),
        (["--url", nowhere, "--profile", str(good), "--duration", "2s"], "cannot reach"),
        (
            ["--url", nowhere, "--profile", str(good), "--api-key-env", "PREFLIGHT_NO_SUCH_KEY"],
            "PREFLIGHT_NO_SUCH_KEY",
        ),
    ]
    for args, message in cases:
        result = preflight_load(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_load_against_llama_cpp(llama_server: str, tmp_path: Path) -> None:  # noqa: F811
    traffic = {
        "prompt_tokens_mean": 40,
        "prompt_tokens_p95": 80,
        "output_tokens_mean": 8,
        "output_tokens_p95": 16,
        "steady_qps": 1.5,
        "burstiness": "medium",
    }
    out = tmp_path / "report.json"
    result = preflight_load(
        "--url", llama_server, "--profile", str(write_profile(tmp_path, traffic)),
        "--duration", "10s", "--seed", "3", "--json", "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(out.read_text()) == report
    assert "in flight" in result.stderr and "TTFT p50" in result.stderr

    assert report["seed"] == 3 and report["profile"]["qps"] == 1.5
    assert report["completed"] > 0 and not report["errors"] and report["incomplete"] == 0
    assert report["completed"] == report["sent"]
    # Exact lengths: llama.cpp honours min_tokens.
    assert report["short_outputs"] == 0
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        stats = report[metric]
        assert 0 < stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"], metric
        assert stats["mean"] > 0
    assert report["e2e_ms"]["p50"] >= report["ttft_ms"]["p50"]
    assert report["elapsed_s"] >= 10
    assert report["requests_per_s"] == pytest.approx(report["completed"] / report["elapsed_s"])
    tokens_per_s = report["output_tokens_per_s"]
    assert tokens_per_s == pytest.approx(report["output_tokens"] / report["elapsed_s"])
    # About 8 tokens a request at about 1.5 requests/s.
    assert 0.5 * report["requests_per_s"] * 8 < tokens_per_s < 2 * report["requests_per_s"] * 16
