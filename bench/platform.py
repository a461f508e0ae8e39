"""The platform under load: the real stack of `make run` (Temporal dev server, worker, API)
in a scratch folder, N people chatting at once, and the CLI's and `POST /plan`'s times.

Each simulated person starts a session with a description and answers "I don't know" until
the options come (at most three messages, as a person who knows little would). Latencies are
per call as the client sees them; the report gives p50/p95 per call kind and the errors.
`PREFLIGHT_BENCH_SESSIONS` (default "1,20,100") names the crowd sizes to run;
`PREFLIGHT_BENCH_HELD_OPEN` (default 500) how many sessions are then opened and left waiting
while 20 more people chat.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import httpx

from activities.rehearsal import free_port
from api.keys import ensure_dev_keys
from bench.timing import median_seconds
from cli.stack import Stack
from kb.migrate import upgrade
from kb.repository import load
from settings import Settings

DESCRIPTION = (
    "We want an internal support chatbot for about {users:,} employees; answers should start "
    "within a second, and the budget is $15,000 a month."
)
"""Each person's own head count, so that no two ask the same question (which the planner
answers once)."""
MESSAGES = 3
"""The description, then "I don't know" until no question is left, at most this many."""
PLAN_CALLS = 20
HELD_CHATTING = 20
"""People chatting while the held-open sessions wait."""
ALONE = 20
"""Sessions run one after another for a turn's latency on an idle stack."""


@contextmanager
def _stack() -> Iterator[tuple[Settings, dict[str, str]]]:
    with tempfile.TemporaryDirectory() as folder, patch.dict(os.environ, {}):
        os.environ |= {
            "PREFLIGHT_STATE_DIR": folder,
            "PREFLIGHT_API_PORT": str(free_port()),
            "PREFLIGHT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "PREFLIGHT_TEMPORAL_UI_PORT": str(free_port()),
            "PREFLIGHT_WORKER_METRICS_PORT": str(free_port()),
            "PREFLIGHT_DATABASE_URL": "",
            "PREFLIGHT_REHEARSE": "false",
        }  # for this process's Settings and the stack's children, restored on leaving
        # The stack's own output (and its children's) goes to stderr: stdout is the report.
        sys.stdout.flush()
        stdout = os.dup(1)
        os.dup2(2, 1)
        try:
            settings = Settings()
            upgrade(settings.resolved_database_url)
            load(url=settings.resolved_database_url, measured_dir=settings.measured_data_dir)
            keys = ensure_dev_keys(settings.state_dir, settings.resolved_api_keys_file)
            stack = Stack(settings)
            try:
                stack.start()
                yield settings, keys
            finally:
                stack.stop()
        finally:
            sys.stdout.flush()
            os.dup2(stdout, 1)
            os.close(stdout)


def _summary(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1e3, 1),
        "p95_ms": round(p95 * 1e3, 1),
    }


async def _person(
    client: httpx.AsyncClient,
    key: str,
    users: int,
    calls: dict[str, list[float]],
    errors: list[str],
) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    async def call(kind: str, path: str, message: str) -> dict[str, object] | None:
        start = time.perf_counter()
        response = await client.post(path, headers=headers, json={"message": message})
        calls[kind].append(time.perf_counter() - start)
        if response.status_code >= 400:
            errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        answer: dict[str, object] = response.json()
        return answer

    state = await call("start with a message", "/sessions", DESCRIPTION.format(users=users))
    for _ in range(MESSAGES - 1):
        if not state or not state["questions"]:
            break
        path = f"/sessions/{state['session_id']}/messages"
        state = await call("chat message", path, "I don't know")
    if state is not None and state["questions"]:
        errors.append("still asking after three messages")


async def _crowd(base: str, key: str, people: int, first: int = 1000) -> dict[str, object]:
    """`people` sessions at once, the i-th for `first` + 10 i users."""
    calls: dict[str, list[float]] = {"start with a message": [], "chat message": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=people, max_keepalive_connections=people)
    async with httpx.AsyncClient(base_url=base, timeout=300.0, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *(_person(client, key, first + 10 * i, calls, errors) for i in range(people))
        )
        wall = time.perf_counter() - start
    every = [s for seconds in calls.values() for s in seconds]
    return {
        "sessions": people,
        "wall_s": round(wall, 2),
        "every_call": _summary(every),
        **{kind: _summary(seconds) for kind, seconds in calls.items()},
        "errors": len(errors),
        "first_errors": errors[:3],
    }


async def _one_at_a_time(base: str, key: str, people: int, first: int) -> dict[str, object]:
    """`people` sessions one after another: a turn's latency with nobody else asking."""
    calls: dict[str, list[float]] = {"start with a message": [], "chat message": []}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=300.0) as client:
        for i in range(people):
            await _person(client, key, first + 10 * i, calls, errors)
    return {kind: _summary(seconds) for kind, seconds in calls.items()} | {"errors": len(errors)}


async def _held_open(base: str, key: str, sessions: int, chatting: int) -> dict[str, object]:
    """`sessions` started and left open (a team's worth of conversations in flight), then
    `chatting` people, each in a new session, going through their turns while those wait."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=300.0, limits=limits) as client:
        gate = asyncio.Semaphore(50)

        async def open_one() -> bool:
            async with gate:
                response = await client.post("/sessions", headers=headers)
                return response.status_code < 400

        start = time.perf_counter()
        opened = sum(await asyncio.gather(*(open_one() for _ in range(sessions))))
        opening_s = time.perf_counter() - start
    turns = await _crowd(base, key, chatting, first=90_000)
    refused = turns["errors"]
    assert isinstance(refused, int)
    return {
        "held_open": opened,
        "opening_s": round(opening_s, 1),
        "chatting": chatting,
        "turn": turns["every_call"],
        "errors": refused + sessions - opened,
    }


def _plan_http_s(base: str, key: str) -> float:
    users = iter(range(50_000, 60_000, 10))  # a new question each call
    with httpx.Client(base_url=base, timeout=60.0) as client:
        headers = {"Authorization": f"Bearer {key}"}

        def one() -> None:
            body = {"message": DESCRIPTION.format(users=next(users))}
            client.post("/plan", headers=headers, json=body).raise_for_status()

        one()  # the API's first plan loads the catalog
        return median_seconds(one, PLAN_CALLS)


def _cli_s(base: str, key: str) -> dict[str, float]:
    """`preflight plan` asking the running API (`PREFLIGHT_API_URL`) and planning in its own
    process, each against start-up alone (the interpreter importing nothing)."""
    preflight = str(Path(sys.executable).parent / "preflight")
    users = iter(range(70_000, 80_000, 10))  # a new question each call, as for `/plan`

    def plan(env: dict[str, str]) -> None:
        message = DESCRIPTION.format(users=next(users))
        run = [preflight, "plan", message]
        subprocess.run(run, check=True, capture_output=True, env=os.environ | env)

    def bare() -> None:
        subprocess.run([sys.executable, "-c", "pass"], check=True)

    asking = {"PREFLIGHT_API_URL": base, "PREFLIGHT_API_KEY": key}
    bare_s = median_seconds(bare, 5)
    asking_s = median_seconds(lambda: plan(asking), 5)
    here_s = median_seconds(lambda: plan({}), 5)
    return {
        "python_start_ms": round(bare_s * 1e3),
        "asking_the_api_beyond_start_up_ms": round((asking_s - bare_s) * 1e3),
        "planning_here_beyond_start_up_ms": round((here_s - bare_s) * 1e3),
    }


def run() -> dict[str, object]:
    sizes = [int(n) for n in os.environ.get("PREFLIGHT_BENCH_SESSIONS", "1,20,100").split(",")]
    with _stack() as (settings, keys):
        base = f"http://{settings.api_host}:{settings.api_port}"
        key = keys["alice"]
        warm = asyncio.run(_crowd(base, key, 1, first=100))
        alone = asyncio.run(_one_at_a_time(base, key, ALONE, first=100_000))
        crowds, first = [], 2000
        for n in sizes:
            crowds.append(asyncio.run(_crowd(base, key, n, first)))
            first += 10 * n
        held = int(os.environ.get("PREFLIGHT_BENCH_HELD_OPEN", "500"))
        held_open = asyncio.run(_held_open(base, key, held, HELD_CHATTING)) if held else None
        plan_ms = round(_plan_http_s(base, key) * 1e3, 1)
        cli = _cli_s(base, key)
    return {
        "crowds": crowds,
        "warm_up": warm["every_call"],
        "one_person_at_a_time": alone,
        "held_open": held_open,
        "post_plan_median_ms": plan_ms,
        "cli": cli,
        "reproduce": (
            "PREFLIGHT_BENCH_SESSIONS=1,20,100 PREFLIGHT_BENCH_HELD_OPEN=500 "
            ".venv/bin/python -m bench platform"
        ),
    }
