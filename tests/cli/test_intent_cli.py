"""`preflight intent | plan | chat | whatif | compare`, as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.test_cli import preflight
from tests.conftest import kb_copy

pytestmark = pytest.mark.integration  # every test runs `preflight` processes


def test_intent_json_has_only_what_was_said(seeded_sqlite_url: str) -> None:
    result = preflight(
        "intent",
        "A chatbot for 1k users, 50 QPS, $5k/month, no AMD",
        "--json",
        database_url=seeded_sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["use_case"] == "chatbot" and body["concurrent_users"] == 1000
    assert body["expected_qps"] == 50 and body["budget"]["max_monthly_cost_usd"] == 5000
    assert body["gpu_constraints"]["excluded_vendors"] == ["amd"]
    assert body["target_ttft_p90_ms"] is None and body["languages"] is None


def test_plan_gives_options_and_questions(seeded_sqlite_url: str) -> None:
    result = preflight(
        "plan", "A RAG assistant over our HR wiki", "--json", database_url=seeded_sqlite_url
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["intent"]["use_case"] == "rag_qa"
    assert [q["field"] for q in body["questions"]] == ["load", "budget"]
    recommendations = body["recommendations"]
    assert (
        recommendations["options"]
        and "concurrent_users" in (recommendations["specification"]["defaults"])
    )
    words = preflight("plan", "A RAG assistant over our HR wiki", database_url=seeded_sqlite_url)
    assert (
        "feasible configurations; the best:" in words.stdout and "How many people" in words.stdout
    )


def test_chat_is_a_conversation(seeded_sqlite_url: str) -> None:
    result = preflight(
        "chat",
        database_url=seeded_sqlite_url,
        stdin="a chatbot for our support team\n2,000 employees\nI don't know\noptions\n",
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"Updated: .*use_case", result.stdout)
    assert "Updated: concurrent_users" in result.stdout
    assert "sensible defaults" in result.stdout
    assert "feasible configurations; the best:" in result.stdout


def test_whatif_and_compare(tmp_path: Path, seeded_sqlite_url: str) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("use_case: chatbot\nconcurrent_users: 2000\n")
    result = preflight(
        "whatif",
        "--spec",
        str(base),
        "--set",
        "target_ttft_p90_ms=150",
        "--set",
        "gpu=h100",
        "--json",
        database_url=seeded_sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["scenario"] for r in rows] == ["as specified", "what if"]
    assert "H100" in rows[1]["gpus"] and rows[1]["differences"]
    other = tmp_path / "bigger.yaml"
    other.write_text("use_case: chatbot\nconcurrent_users: 20000\n")
    compared = preflight("compare", str(base), str(other), database_url=seeded_sqlite_url)
    assert compared.returncode == 0, compared.stderr
    assert "base:" in compared.stdout and "bigger:" in compared.stdout
    assert "$/month:" in compared.stdout


def test_bad_what_if_input_is_named(tmp_path: Path, seeded_sqlite_url: str) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("use_case: chatbot\n")
    for setting, message in (
        ("target_ttft=100", "unknown field 'target_ttft'"),
        ("gpu=h900", "unknown GPU 'h900'"),
        ("concurrent_users=-3", "concurrent_users"),
        ("nonsense", "expected field=value"),
    ):
        result = preflight(
            "whatif", "--spec", str(base), "--set", setting, database_url=seeded_sqlite_url
        )
        assert result.returncode == 2, setting
        assert message in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("use_case: chatbot\nbudget: {max_monthly_cost_usd: -1}\n")
    result = preflight("compare", str(base), str(bad), database_url=seeded_sqlite_url)
    assert result.returncode == 2 and "budget.max_monthly_cost_usd" in result.stderr


def test_from_words_to_a_gitops_folder(tmp_path: Path, seeded_sqlite_url: str) -> None:
    """plan -> saved deployment plan -> render -> deploy (GitOps, no cluster here)."""
    url = kb_copy(seeded_sqlite_url, tmp_path)  # the deploy is recorded: a private copy
    plan_file = tmp_path / "plan.json"
    planned = preflight(
        "plan",
        "A chatbot for 500 employees, NVIDIA only, $10k a month",
        "--save-plan",
        str(plan_file),
        "--name",
        "support-bot",
        "--namespace",
        "ml",
        database_url=url,
    )
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(plan_file.read_text())
    assert plan["name"] == "support-bot" and plan["namespace"] == "ml"
    rendered = preflight(
        "render",
        "--plan",
        str(plan_file),
        "-o",
        str(tmp_path / "out"),
        database_url=url,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "out" / "kustomization.yaml").is_file()
    deployed = preflight(
        "deploy",
        "--plan",
        str(plan_file),
        "--gitops",
        str(tmp_path / "gitops"),
        database_url=url,
    )
    assert deployed.returncode == 0, deployed.stderr
    written = sorted(p.name for p in (tmp_path / "gitops").glob("*.yaml"))
    assert written == sorted(p.name for p in (tmp_path / "out").glob("*.yaml"))
