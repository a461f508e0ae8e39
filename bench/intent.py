"""Accuracy and speed of the rule-based intent extractor on the utterance corpus."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from bench.seeded import seeded_session
from kb.catalog import vocabulary
from planner.extract import extract
from planner.intent import DeploymentIntent

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "intent_utterances.yaml"
INJECTIONS = CORPUS.with_name("injection_utterances.yaml")
TOLERANCE = 0.02
"""Relative tolerance on numbers (1000/30 written as 33.33, 3e6/86400 as 34.72)."""
UNSCORED = {"use_case_description"}


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text())
    return entries


def flatten(intent: DeploymentIntent) -> dict[str, Any]:
    """Dotted field names to values, nulls left out."""
    flat: dict[str, Any] = {}

    def walk(values: dict[str, Any], prefix: str) -> Iterator[None]:
        for name, value in values.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{name}.")
            elif value is not None and prefix + name not in UNSCORED:
                flat[prefix + name] = value
        yield None

    for _ in walk(intent.model_dump(), ""):
        pass
    return flat


def same(expected: Any, got: Any) -> bool:
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return abs(got - expected) <= TOLERANCE * max(abs(expected), 1e-9)
    if isinstance(expected, list) and isinstance(got, list):
        return sorted(map(str, expected)) == sorted(map(str, got))
    return bool(expected == got)


def score(
    entries: list[dict[str, Any]], extract: Callable[[str], DeploymentIntent]
) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Per field: (right, scored), where a field is scored on every utterance that expects
    it or where the extractor filled it; and a line per mistake."""
    tally: dict[str, list[int]] = {}
    mistakes = []
    for entry in entries:
        expected: dict[str, Any] = entry.get("expect") or {}
        got = flatten(extract(entry["text"]))
        for field in (expected.keys() | got.keys()) - UNSCORED:
            right = field in expected and field in got and same(expected[field], got[field])
            counts = tally.setdefault(field, [0, 0])
            counts[0] += right
            counts[1] += 1
            if not right:
                mistakes.append(
                    f"{field}: expected {expected.get(field)!r}, got {got.get(field)!r} "
                    f"in {entry['text']!r}"
                )
    return {field: (c[0], c[1]) for field, c in sorted(tally.items())}, mistakes


def run() -> dict[str, object]:
    with seeded_session() as session:
        words = vocabulary(session=session)
    entries = load()
    fields, _ = score(entries, lambda text: extract(text, words))
    _, injection_mistakes = score(load(INJECTIONS), lambda text: extract(text, words))
    timings = []
    for entry in entries:
        start = time.perf_counter()
        extract(entry["text"], words)
        timings.append(time.perf_counter() - start)
    return {
        "utterances": len(entries),
        "per_field_accuracy": {f: round(r / n, 3) for f, (r, n) in fields.items()},
        "worst_field_accuracy": min(r / n for r, n in fields.values()),
        "injection_cases": len(load(INJECTIONS)),
        "injection_fields_wrong": len(injection_mistakes),
        "one_turn_median_ms": round(statistics.median(timings) * 1e3, 3),
        "target_per_field": 0.95,
    }
