"""`preflight kb add-model`, driven as a user would: a model the catalog lacks, from its
config.json, then predicted, planned and rendered like any catalog model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import preflight
from tests.conftest import kb_copy

pytestmark = pytest.mark.integration  # every test runs `preflight` processes

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
LLAMA_2 = str(CONFIGS / "meta-llama__Llama-2-7b-hf" / "config.json")


def model_count(url: str) -> int:
    stats = preflight("kb", "stats", "--json", database_url=url)
    return int(json.loads(stats.stdout)["collections"]["models"]["count"])


def test_add_llama_2_then_predict_and_plan_it(seeded_sqlite_url: str, tmp_path: Path) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    before = model_count(url)
    added = preflight(
        "kb", "add-model", "--config", LLAMA_2, "--id", "meta-llama/Llama-2-7b-hf",
        "--precision", "bf16", "--license", "llama2", "--tasks", "chat,summarization",
        database_url=url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "6.74B parameters" in added.stdout and "user-added" in added.stdout
    assert "weights 13.5 GB (parameter formula)" in added.stdout
    assert "KV cache 524,288 bytes per token" in added.stdout
    assert model_count(url) == before + 1

    predicted = preflight(
        "predict", "--model", "llama-2-7b-hf", "--gpu", "a10g", "--isl", "1000", "--osl", "200",
        "--concurrency", "4", "--json", database_url=url,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    body = json.loads(predicted.stdout)
    assert body["model"] == "meta-llama/Llama-2-7b-hf" and body["fits"]
    assert body["memory"]["weights_gb_per_gpu"] == pytest.approx(13.48, abs=0.01)
    assert body["memory"]["weights_basis"] == "parameter formula"
    assert body["memory"]["kv_bytes_per_token_per_gpu"] == 524_288

    intent = tmp_path / "intent.yaml"
    intent.write_text(
        yaml.safe_dump(
            {
                "use_case": "summarization",
                "concurrent_users": 300,
                "pinned_models": ["meta-llama/Llama-2-7b-hf"],
                "max_context_tokens": 4096,
                "traffic": {
                    "prompt_tokens_mean": 1500,
                    "prompt_tokens_p95": 3000,
                    "output_tokens_mean": 200,
                    "output_tokens_p95": 400,
                },
            }
        )
    )
    planned = preflight(
        "whatif", "--spec", str(intent), "--set", "gpu=l40s", "--json", database_url=url
    )
    assert planned.returncode == 0, planned.stderr
    rows = json.loads(planned.stdout)
    assert [row["model"] for row in rows] == ["meta-llama/Llama-2-7b-hf"] * 2
    assert "L40S-PCIE-48GB" in rows[1]["gpus"] and rows[1]["usd_per_month"] > 0

    again = preflight(
        "kb", "add-model", "--config", LLAMA_2, "--id", "meta-llama/Llama-2-7b-hf", database_url=url
    )
    assert again.returncode == 2
    assert "model 'meta-llama/Llama-2-7b-hf' is already in the catalog (user-added)" in again.stderr


def test_a_users_model_is_planned_and_rendered_for_deployment(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    added = preflight(
        "kb", "add-model", "--config", str(CONFIGS / "Qwen__Qwen3-30B-A3B"),
        "--id", "acme/support-moe-30b", "--license", "Apache-2.0", "--quality-mmlu-pro", "69",
        database_url=url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    text = "A chatbot for 300 employees, only acme/support-moe-30b, on H100"
    planned = preflight(
        "plan", text, "--save-plan", str(tmp_path / "plan.json"), "--name", "support",
        database_url=url,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["model"]["uri"] == "hf://acme/support-moe-30b"
    rendered = preflight(
        "render", "--plan", str(tmp_path / "plan.json"), "-o", str(tmp_path / "out"),
        database_url=url,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    service = (tmp_path / "out" / "20-llminferenceservice-support.yaml").read_text()
    assert "hf://acme/support-moe-30b" in service


def test_what_cannot_be_added_is_named_and_changes_nothing(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    before = model_count(url)
    broken = tmp_path / "config.json"
    config = json.loads(Path(LLAMA_2).read_text())
    del config["num_attention_heads"]
    broken.write_text(json.dumps(config))
    taken = "meta-llama/Llama-3.1-8B-Instruct"
    llama = ["--config", LLAMA_2, "--id", "me/x"]
    cases = [
        (["--config", str(broken), "--id", "me/x"], "num_attention_heads is missing"),
        ([*llama, "--weights-bytes", "-1"], "weights_bytes must be > 0"),
        ([*llama, "--tasks", "chat,juggling"], "tasks: unknown juggling"),
        (["--config", LLAMA_2, "--id", taken], "already in the catalog (catalog)"),
        (["--config", LLAMA_2], "--config needs --id ORG/NAME"),
        (["--config", LLAMA_2, "--id", "no-org"], "of the form ORG/NAME"),
    ]  # fmt: skip
    for arguments, message in cases:
        result = preflight("kb", "add-model", *arguments, database_url=url)
        assert result.returncode == 2, arguments
        assert message in result.stderr, (arguments, result.stderr)
    assert model_count(url) == before


def test_from_the_hub_offline_says_so(seeded_sqlite_url: str, tmp_path: Path) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    result = preflight(
        "kb", "add-model", "--from-hub", "meta-llama/Llama-2-7b-hf", database_url=url,
        env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "this machine is offline" in result.stderr and "--config FOLDER" in result.stderr
