"""Recorded workflow histories replay against the current code: a change that would make a
running session non-deterministic fails here, before it reaches a worker.

Re-record (after an intended, versioned change) with
`PREFLIGHT_RECORD_HISTORIES=1 pytest tests/workflows/test_workflows.py`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parents[1] / "data" / "histories").glob("*.json"))


def test_histories_were_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "session_journey",
        "session_breach_rollback",
        "session_approval_expired",
        "monitor_breach",
        "session_continued",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    asyncio.run(replayer.replay_workflow(history))
