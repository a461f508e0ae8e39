"""`preflight plan` and `preflight whatif` against a running Preflight API
(`PREFLIGHT_API_URL`): the server's knowledge base answers, the same words come out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from api.keys import add_key
from settings import Settings
from tests.cli.test_cli import preflight
from tests.conftest import free_port

pytestmark = pytest.mark.integration  # `preflight` processes and a real HTTP server

WORDS = "A chatbot for 500 employees, NVIDIA only, $10k a month"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, seeded_sqlite_url: str
) -> Iterator[tuple[str, str]]:
    """The API on a real port over the seeded knowledge base: (its URL, a requester's key)."""
    state = tmp_path_factory.mktemp("server")
    settings = Settings(
        database_url=seeded_sqlite_url, state_dir=state, api_keys_file=state / "keys.json"
    )
    key = add_key(settings.resolved_api_keys_file, "carol", ["requester"])
    port = free_port()
    app = create_app(settings)
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    while not served.started:
        thread.join(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        served.should_exit = True
        thread.join(10)


def test_plan_asks_the_server(
    server: tuple[str, str], seeded_sqlite_url: str, tmp_path: Path
) -> None:
    url, key = server
    here = preflight("plan", WORDS, "--json", database_url=seeded_sqlite_url)
    assert here.returncode == 0, here.stderr
    # This machine's knowledge base is empty: only the server can have answered.
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    env = {"PREFLIGHT_API_URL": url, "PREFLIGHT_API_KEY": key}
    there = preflight("plan", WORDS, "--json", database_url=empty, env=env)
    assert there.returncode == 0, there.stderr
    local, remote = json.loads(here.stdout), json.loads(there.stdout)
    assert remote["intent"] == local["intent"]
    assert [o["rationale"] for o in remote["recommendations"]["options"]] == [
        o["rationale"] for o in local["recommendations"]["options"]
    ]
    words = preflight("plan", WORDS, database_url=empty, env=env)
    assert words.returncode == 0 and "feasible configurations; the best:" in words.stdout


def test_whatif_asks_the_server(server: tuple[str, str], tmp_path: Path) -> None:
    url, key = server
    spec = tmp_path / "base.yaml"
    spec.write_text("use_case: chatbot\nconcurrent_users: 2000\n")
    env = {"PREFLIGHT_API_URL": url, "PREFLIGHT_API_KEY": key}
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = preflight(
        "whatif", "--spec", str(spec), "--set", "gpu=h100", database_url=empty, env=env
    )
    assert result.returncode == 0, result.stderr
    assert (
        "as specified:" in result.stdout and "what if:" in result.stdout and "H100" in result.stdout
    )
    refused = preflight(
        "whatif", "--spec", str(spec), "--set", "gpu=h900", database_url=empty, env=env
    )
    assert refused.returncode == 2 and "unknown GPU 'h900'" in refused.stderr


def test_a_refusal_names_the_problem_and_never_the_key(
    server: tuple[str, str], tmp_path: Path
) -> None:
    url, key = server
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    wrong = "pf-not-a-real-key-0123456789"
    refused = preflight(
        "plan",
        WORDS,
        database_url=empty,
        env={"PREFLIGHT_API_URL": url, "PREFLIGHT_API_KEY": wrong},
    )
    assert refused.returncode == 2 and "401" in refused.stderr
    assert wrong not in refused.stderr + refused.stdout and "Traceback" not in refused.stderr
    keyless = preflight("plan", WORDS, database_url=empty, env={"PREFLIGHT_API_URL": url})
    assert keyless.returncode == 2 and "PREFLIGHT_API_KEY" in keyless.stderr
    gone = f"http://127.0.0.1:{free_port()}"
    unreachable = preflight(
        "plan", WORDS, database_url=empty, env={"PREFLIGHT_API_URL": gone, "PREFLIGHT_API_KEY": key}
    )
    assert unreachable.returncode == 2 and f"cannot reach the Preflight API at {gone}" in (
        unreachable.stderr
    )
    assert key not in unreachable.stderr


def test_asking_the_server_loads_no_planner(server: tuple[str, str]) -> None:
    """The point of asking: no catalog, planner or database library is loaded here."""
    url, key = server
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        f"result = CliRunner().invoke(app, ['plan', {WORDS!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'feasible configurations' in result.output, result.output\n"
        "print(sorted(m for m in ('planner', 'kb', 'numpy', 'sqlalchemy') if m in sys.modules))\n"
    )
    env = os.environ | {"PREFLIGHT_API_URL": url, "PREFLIGHT_API_KEY": key}
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
