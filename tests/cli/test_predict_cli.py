"""`preflight predict` and `preflight capacity`, as a user runs them."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import preflight

pytestmark = pytest.mark.integration  # every test runs `preflight` processes


def test_predict_json_has_the_documented_fields(seeded_sqlite_url: str) -> None:
    result = preflight(
        "predict",
        "--model",
        "llama-3.1-70b-base",
        "--gpu",
        "h100",
        "--tp",
        "4",
        "--precision",
        "fp8",
        "--isl",
        "1024",
        "--osl",
        "1024",
        "--concurrency",
        "16",
        "--json",
        database_url=seeded_sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert set(body[metric]) == {"mean", "p50", "p90", "p95", "p99"}
    assert body["source"] == "measured" and body["fits"] is True
    assert body["memory"]["kv_capacity_tokens"] > 0
    assert body["output_tokens_per_s"] > 0 and body["requests_per_s"] > 0
    assert body["uncertainty"]["basis"]


def test_predict_open_loop_and_bad_input(seeded_sqlite_url: str) -> None:
    def qwen3_8b(gpu: str, *load: str) -> subprocess.CompletedProcess[str]:
        """`preflight predict` of Qwen3-8B at 800 in, 200 out, on `gpu` with `load`."""
        shape = ("--model", "qwen3-8b", "--gpu", gpu, "--isl", "800", "--osl", "200")
        return preflight("predict", *shape, *load, database_url=seeded_sqlite_url)

    ok = qwen3_8b("L40S", "--qps", "2")
    assert ok.returncode == 0, ok.stderr
    assert "source        modelled (analytical)" in ok.stdout and "TTFT ms" in ok.stdout
    both = qwen3_8b("L40S")
    assert both.returncode == 2 and "exactly one of concurrency" in both.stderr
    unknown = qwen3_8b("H1000", "--qps", "1")
    assert unknown.returncode == 2 and "unknown GPU 'H1000'" in unknown.stderr
    zero = qwen3_8b("L40S", "--qps", "0")
    assert zero.returncode == 2 and "qps: Input should be greater than 0" in zero.stderr


def test_predict_csv_keeps_columns_and_marks_bad_rows(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    source = tmp_path / "rows.csv"
    source.write_text(
        "model_id,gpu,precision,tp,isl,osl,concurrency,note\n"
        "Qwen/Qwen3-32B,H100-SXM-80GB,bf16,2,1024,1024,8,measured\n"
        "Qwen/Qwen3-32B,A100-SXM-80GB,bf16,2,1024,256,8,modelled\n"
        "nobody/NoSuchModel,H100-SXM-80GB,bf16,1,1024,256,8,unknown\n"
        "deepseek-ai/DeepSeek-V3,L4-PCIE-24GB,fp8,1,1024,256,8,too big\n"
    )
    target = tmp_path / "out.csv"
    result = preflight(
        "predict", "--input", str(source), "--output", str(target), database_url=seeded_sqlite_url
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(target.open()))
    assert [r["note"] for r in rows] == ["measured", "modelled", "unknown", "too big"]
    assert rows[0]["pred_source"] == "measured" and float(rows[0]["pred_ttft_ms"]) > 0
    assert rows[1]["pred_source"] == "modelled" and float(rows[1]["pred_tpot_p90_ms"]) > 0
    assert "unknown model 'nobody/NoSuchModel'" in rows[2]["error"]
    assert rows[3]["pred_fits"] == "false" and "does not fit" in rows[3]["error"]


def test_capacity_from_a_spec_file(tmp_path: Path, seeded_sqlite_url: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "traffic: {prompt_tokens_mean: 1000, prompt_tokens_p95: 3000, output_tokens_mean: 200,\n"
        "          output_tokens_p95: 400, steady_qps: 2, peak_qps: 5, burstiness: low}\n"
        "slo: {ttft_p90_ms: 1000, tpot_p90_ms: 50}\n"
        "constraints: {models: [llama-3.1-8b, qwen3-8b], gpus: [l4, h100, a100]}\n"
    )
    result = preflight("capacity", "--spec", str(spec), "--json", database_url=seeded_sqlite_url)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["options"]
    assert {o["model_id"] for o in body["options"]} <= {
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen3-8B",
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "traffic: {prompt_tokens_mean: -1, output_tokens_mean: 10, steady_qps: 1, peak_qps: 1}\n"
    )
    refused = preflight("capacity", "--spec", str(bad), database_url=seeded_sqlite_url)
    assert refused.returncode == 2
    assert "traffic.prompt_tokens_mean: Input should be greater than or equal to 1" in (
        refused.stderr
    )


def test_predict_by_simulation(seeded_sqlite_url: str) -> None:
    result = preflight(
        "predict",
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h100",
        "--isl",
        "1000",
        "--osl",
        "200",
        "--isl-p95",
        "3000",
        "--osl-p95",
        "450",
        "--qps",
        "6",
        "--arrival",
        "gamma",
        "--burstiness",
        "0.25",
        "--simulate",
        "--json",
        database_url=seeded_sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["method"] == "simulated" and body["ttft_ms"]["p99"] >= body["ttft_ms"]["p50"]


def test_an_empty_knowledge_base_says_what_to_run(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (
        ("predict", "--model", "qwen3-8b", "--gpu", "L40S", "--isl", "8", "--osl", "8"),
        ("calibrate",),
    ):
        result = preflight(*args, database_url=empty)
        assert result.returncode == 2
        assert "is empty: run `preflight kb load`" in result.stderr
        assert "Traceback" not in result.stderr


def test_predict_csv_takes_engine_settings_and_says_everything(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    """A column of a query field's name is that field; the output adds every percentile a user
    reads and whether the load can be sustained at all."""
    source = tmp_path / "rows.csv"
    source.write_text(
        "model_id,gpu,isl,osl,qps,arrival,burstiness,kv_cache_dtype,max_num_seqs,"
        "prefix_cache_hit_rate,note\n"
        "llama-3.1-8b,L40S,1000,200,2,poisson,,,,,light\n"
        "llama-3.1-8b,L40S,1000,200,2,gamma,0.25,fp8,64,0.5,settings\n"
        "llama-3.1-8b,L40S,1000,200,400,,,,,,overload\n"
        "llama-3.1-8b,L40S,1000,200,2,poisson,0.25,,,,burstiness without gamma\n"
        "llama-3.1-8b,L40S,1000,200,2,,,fp4,,,no such kv dtype\n"
    )
    target = tmp_path / "out.csv"
    result = preflight(
        "predict", "--input", str(source), "--output", str(target), database_url=seeded_sqlite_url
    )
    assert result.returncode == 0, result.stderr
    rows = {r["note"]: r for r in csv.DictReader(target.open())}
    light = rows["light"]
    for column in (
        "pred_ttft_p50_ms",
        "pred_ttft_p99_ms",
        "pred_tpot_p50_ms",
        "pred_tpot_p99_ms",
        "pred_e2e_ms",
        "pred_e2e_p90_ms",
        "pred_e2e_p99_ms",
    ):
        assert float(light[column]) > 0, column
    assert float(light["pred_ttft_p50_ms"]) <= float(light["pred_ttft_p90_ms"])
    assert float(light["pred_e2e_p90_ms"]) <= float(light["pred_e2e_p99_ms"])
    assert light["pred_stable"] == "true" and light["error"] == ""
    assert rows["settings"]["pred_stable"] == "true"
    assert rows["settings"]["pred_ttft_p90_ms"] != light["pred_ttft_p90_ms"]
    assert rows["overload"]["pred_stable"] == "false"
    assert "set arrival to gamma" in rows["burstiness without gamma"]["error"]
    assert rows["no such kv dtype"]["error"].startswith("kv_cache_dtype:")


def test_predict_flags_take_engine_settings(seeded_sqlite_url: str) -> None:
    base = ["predict", "--model", "qwen3-8b", "--gpu", "L4", "--isl", "1500", "--osl", "300"]
    result = preflight(
        *base, "--qps", "1", "--arrival", "gamma", "--burstiness", "0.5",
        "--kv-cache-dtype", "fp8", "--max-num-seqs", "32", "--gpu-memory-utilization", "0.85",
        "--max-model-len", "8192", "--no-enable-prefix-caching", "--json",
        database_url=seeded_sqlite_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["arrival"] == "gamma" and body["burstiness"] == 0.5
    # The token budget left unset is stated as vLLM sets it on an L4.
    assert body["engine"] == {
        "max_num_seqs": 32,
        "max_num_batched_tokens": 2048,
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.85,
        "kv_cache_dtype": "fp8",
        "enable_prefix_caching": False,
        "prefix_cache_hit_rate": 0.0,
    }
    assert body["memory"]["max_concurrent_sequences"] <= 32
    assert body["memory"]["weights_basis"] == "checkpoint size"
    refused = preflight(
        *base, "--qps", "1", "--no-enable-prefix-caching", "--prefix-cache-hit-rate", "0.5",
        database_url=seeded_sqlite_url,
    )  # fmt: skip
    assert refused.returncode == 2 and "needs enable_prefix_caching" in refused.stderr
