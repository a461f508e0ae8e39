"""The `preflight` command line, driven as a user would (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MEASURED_DIR

pytestmark = pytest.mark.integration  # every test runs `preflight` processes

PREFLIGHT = str(Path(sys.executable).parent / "preflight")


def preflight(
    *args: str, database_url: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = (
        os.environ
        | (env or {})
        | {
            "DATABASE_URL": database_url,
            "PREFLIGHT_MEASURED_DATA_DIR": str(MEASURED_DIR),
        }
    )
    return subprocess.run(
        [PREFLIGHT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_kb_load_then_stats_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    loaded = preflight("kb", "load", database_url=url)
    assert loaded.returncode == 0, loaded.stderr
    assert "benchmarks" in loaded.stdout

    result = preflight("kb", "stats", "--json", database_url=url)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["without_source"] == 0
    assert report["collections"]["models"]["count"] >= 40
    assert report["collections"]["benchmarks"]["without_source"] == 0


def test_resolve_and_unknown_name(seeded_sqlite_url: str) -> None:
    found = preflight("kb", "resolve", "gpu", "h100_sxm", database_url=seeded_sqlite_url)
    assert (found.returncode, found.stdout.strip()) == (0, "H100-SXM-80GB")

    missing = preflight("kb", "resolve", "model", "lama-3.1-8b", database_url=seeded_sqlite_url)
    assert missing.returncode == 2
    assert "unknown model 'lama-3.1-8b'; closest matches:" in missing.stderr
    assert "meta-llama/Llama-3.1-8B-Instruct" in missing.stderr


def test_set_on_prem_price(tmp_path: Path, seeded_sqlite_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    Path(url.removeprefix("sqlite:///")).write_bytes(
        Path(seeded_sqlite_url.removeprefix("sqlite:///")).read_bytes()
    )
    result = preflight(
        "kb", "set-price", "--gpu", "H100", "--usd-per-gpu-hour", "1.85", database_url=url
    )
    assert result.returncode == 0, result.stderr
    assert "user-on_prem-on_prem-H100-SXM-80GB: $1.8500" in result.stdout

    refused = preflight(
        "kb", "set-price", "--gpu", "H100", "--usd-per-gpu-hour", "0", database_url=url
    )
    assert refused.returncode == 2
    assert "usd-per-gpu-hour" in refused.stderr


def test_a_command_imports_only_what_it_uses(seeded_sqlite_url: str) -> None:
    """`preflight plan` reads words and plans: the Kubernetes and OpenAI clients (seconds to
    import) wait for the commands that talk to a cluster or an LLM."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "result = CliRunner().invoke(app, ['plan', 'A chatbot for 200 people.'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'feasible configurations' in result.output, result.output\n"
        "print(sorted(m for m in ('kubernetes', 'openai', 'fastapi') if m in sys.modules))\n"
    )
    env = os.environ | {"DATABASE_URL": seeded_sqlite_url}
    env.pop("PREFLIGHT_LLM_BASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
