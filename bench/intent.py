"""Accuracy and speed of the intent extractor on the utterance corpora.

The conventions corpus (written with the extractor, its regression suite), and sentences
in users' own words written apart from the extractor: a part the rules are tuned on, a part
only measured on, and sentences in other languages than English, only measured. Per field,
per phrasing family,
the worst first; with an LLM configured (`PREFLIGHT_LLM_BASE_URL`), its reading combined
with the rules is scored beside the rules alone on the users' sentences."""

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
USERS_TUNE = CORPUS.with_name("users_tune.yaml")
"""Users' sentences the rules are tuned on."""
USERS_MEASURE = CORPUS.with_name("users_measure.yaml")
"""Users' sentences never tuned on: the rules are only measured on them."""
USERS_OTHER_LANGUAGES = CORPUS.with_name("users_other_languages.yaml")
"""Users' sentences in other languages than English, only measured: the rules read English
words, and this part shows how far that falls short."""
TOLERANCE = 0.02
"""Relative tolerance on numbers (1000/30 written as 33.33, 3e6/86400 as 34.72)."""
ROUNDING = 0.005
"""Labels hold rates to two decimals (200 an hour is 0.06)."""
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
        return abs(got - expected) <= max(TOLERANCE * abs(expected), ROUNDING)
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


def report(
    entries: list[dict[str, Any]], read: Callable[[str], DeploymentIntent]
) -> dict[str, Any]:
    """Per-field accuracy (worst first), checks right overall and per phrasing family."""
    readings = {entry["text"]: read(entry["text"]) for entry in entries}  # once: an LLM is slow
    fields, _ = score(entries, readings.__getitem__)
    families: dict[str, list[int]] = {}
    for entry in entries:
        one, _ = score([entry], readings.__getitem__)
        tally = families.setdefault(entry.get("family", "-"), [0, 0])
        tally[0] += sum(r for r, _ in one.values())
        tally[1] += sum(n for _, n in one.values())
    right = sum(r for r, _ in fields.values())
    checks = sum(n for _, n in fields.values())
    by_field = sorted(fields.items(), key=lambda item: item[1][0] / item[1][1])
    return {
        "utterances": len(entries),
        "checks_right": round(right / checks, 3),
        "worst_field_accuracy": round(min(r / n for r, n in fields.values()), 3),
        "per_field_accuracy": {f: f"{r / n:.3f} ({r}/{n})" for f, (r, n) in by_field},
        "per_family_checks_right": {
            f: round(r / n, 3)
            for f, (r, n) in sorted(families.items(), key=lambda i: i[1][0] / i[1][1])
        },
    }


def run() -> dict[str, object]:
    from planner.extract import combine
    from planner.llm import llm_intent
    from settings import get_settings

    with seeded_session() as session:
        words = vocabulary(session=session)
    entries = load()

    def rules(text: str) -> DeploymentIntent:
        return extract(text, words)

    _, injection_mistakes = score(load(INJECTIONS), rules)
    timings = []
    for entry in entries:
        start = time.perf_counter()
        rules(entry["text"])
        timings.append(time.perf_counter() - start)
    users = {
        "tune": load(USERS_TUNE),
        "measure": load(USERS_MEASURE),
        "other_languages": load(USERS_OTHER_LANGUAGES),
    }
    result: dict[str, object] = {
        "conventions_corpus": report(entries, rules),
        "users_rules": {part: report(corpus, rules) for part, corpus in users.items()},
        "injection_cases": len(load(INJECTIONS)),
        "injection_fields_wrong": len(injection_mistakes),
        "one_turn_median_ms": round(statistics.median(timings) * 1e3, 3),
        "target_per_field": 0.95,
    }
    settings = get_settings()
    if settings.llm_base_url:

        def with_llm(text: str) -> DeploymentIntent:
            return combine(text, rules(text), llm_intent(text, settings))

        # On the measured part only: the rules were tuned on the other, the LLM on neither.
        result["users_rules_and_llm"] = {
            "model": settings.llm_model,
            "measure": report(users["measure"], with_llm),
        }
    else:
        result["users_rules_and_llm"] = "no LLM configured (PREFLIGHT_LLM_BASE_URL)"
    return result
