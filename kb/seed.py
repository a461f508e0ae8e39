"""Seeding: curated YAML (kb/data) and measured CSVs into the knowledge base.

Everything is read and validated first; any problem names its file and record and nothing
is written. Writing is one transaction and idempotent: a record already stored as it is in
the files is left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, SQLModel, select

from kb.measurements import PUBLIC, public_rows, sample_rows
from kb.names import name_keys
from kb.records import (
    BenchmarkBase,
    DeploymentTemplateBase,
    HardwareBase,
    ModelBase,
    PriceBase,
    UseCaseBase,
)
from kb.tables import Benchmark, DeploymentTemplate, Hardware, Model, Price, UseCase

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Collection:
    name: str
    pattern: str
    """Glob under the data folder."""
    record: type[SQLModel]
    table: type[SQLModel]


# In load order: a collection comes after those it refers to.
CURATED = (
    Collection("hardware", "hardware.yaml", HardwareBase, Hardware),
    Collection("models", "models/*.yaml", ModelBase, Model),
    Collection("use_cases", "use_cases.yaml", UseCaseBase, UseCase),
    Collection("prices", "prices.yaml", PriceBase, Price),
    Collection(
        "deployment_templates",
        "deployment_templates.yaml",
        DeploymentTemplateBase,
        DeploymentTemplate,
    ),
)


class SeedError(ValueError):
    """The seed files have problems; each names its file and record."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"knowledge-base seed rejected, nothing loaded:\n{listed}{more}")


@dataclass
class Located:
    """A validated record and where it came from."""

    record: Any
    where: str


@dataclass
class SeedSet:
    records: dict[str, list[Located]] = field(default_factory=dict)

    def ids(self, collection: str) -> set[str]:
        return {item.record.id for item in self.records.get(collection, [])}


@dataclass
class LoadReport:
    inserted: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)


def _describe(path: Path, index: int, raw: object) -> str:
    record_id = raw.get("id") if isinstance(raw, dict) else None
    label = f"record '{record_id}'" if record_id else f"record #{index + 1}"
    return (
        f"{path.name if path.parent.name == 'data' else f'{path.parent.name}/{path.name}'}: {label}"
    )


def validation_message(error: ValidationError) -> str:
    """Every problem of a validation error, each named by the field it is about."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _validate(
    raws: Iterable[tuple[str, object]], record: type[BaseModel], problems: list[str]
) -> list[Located]:
    located = []
    for where, raw in raws:
        try:
            located.append(Located(record.model_validate(raw), where))
        except ValidationError as error:
            problems.append(f"{where}: {validation_message(error)}")
    return located


def _read_yaml(path: Path, problems: list[str]) -> list[tuple[str, object]]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        problems.append(f"{path.name}: not valid YAML: {error}")
        return []
    if not isinstance(content, list):
        problems.append(f"{path.name}: expected a list of records, got {type(content).__name__}")
        return []
    return [(_describe(path, i, raw), raw) for i, raw in enumerate(content)]


def read_seed(data_dir: Path = DATA_DIR, measured_dir: Path | None = None) -> SeedSet:
    """Read and validate every seed file; raise SeedError listing every problem."""
    problems: list[str] = []
    seed = SeedSet()
    for collection in CURATED:
        paths = sorted(data_dir.glob(collection.pattern))
        if not paths:
            problems.append(f"{collection.pattern}: no seed file for {collection.name}")
        raws = [item for path in paths for item in _read_yaml(path, problems)]
        seed.records[collection.name] = _validate(raws, collection.record, problems)
    if measured_dir is not None:
        if not measured_dir.is_dir():
            problems.append(f"{measured_dir}: measured data folder not found")
        raws = [r for path in sorted(measured_dir.glob("*.csv")) for r in sample_rows(path)]
        raws += [r for path in sorted(data_dir.glob(PUBLIC)) for r in public_rows(path)]
        seed.records["benchmarks"] = _validate(raws, BenchmarkBase, problems)
    problems += _duplicate_ids(seed) + _dangling_references(seed) + _alias_collisions(seed)
    if problems:
        raise SeedError(problems)
    return seed


def _duplicate_ids(seed: SeedSet) -> list[str]:
    problems = []
    for items in seed.records.values():
        first_seen: dict[str, str] = {}
        for item in items:
            if item.record.id in first_seen:
                problems.append(
                    f"{item.where}: duplicate id, first defined in "
                    f"{first_seen[item.record.id].split(':')[0]}"
                )
            else:
                first_seen[item.record.id] = item.where
    return problems


def _dangling_references(seed: SeedSet) -> list[str]:
    gpus, models = seed.ids("hardware"), seed.ids("models")
    checks: list[tuple[str, str, set[str], str]] = [
        ("prices", "gpu_id", gpus, "GPU"),
        ("deployment_templates", "use_case_id", seed.ids("use_cases"), "use case"),
        ("models", "base_model", models, "base model"),
        ("benchmarks", "model_id", models, "model"),
        ("benchmarks", "gpu_id", gpus, "GPU"),
    ]
    problems = []
    for collection, attribute, known, what in checks:
        for item in seed.records.get(collection, []):
            value = getattr(item.record, attribute)
            if value is not None and value not in known:
                problems.append(f"{item.where}: unknown {what} '{value}' in {attribute}")
    return problems


def _alias_collisions(seed: SeedSet) -> list[str]:
    """An alias must not also be another record's id or alias: it would be ambiguous."""
    problems = []
    for collection in ("models", "hardware"):
        owners: dict[str, str] = {}
        for item in seed.records.get(collection, []):
            for key in sorted(name_keys(item.record.id, item.record.aliases)):
                owner = owners.setdefault(key, item.record.id)
                if owner != item.record.id:
                    problems.append(f"{item.where}: name '{key}' already names '{owner}'")
    return problems


REPLACED = {"prices": "user-", "benchmarks": None}
"""Collections whose stored records the seed replaces: a price or a measured row the files no
longer hold is removed (measured data is corrected upstream, quotes are withdrawn), except a
user's own prices (ids with the prefix). Other collections have dependants and only grow."""


def write_seed(session: Session, seed: SeedSet) -> LoadReport:
    """Insert new records, update changed ones and remove withdrawn ones (see REPLACED), in
    the caller's transaction."""
    report = LoadReport()
    tables = {c.name: c.table for c in CURATED} | {"benchmarks": Benchmark}
    for name, table in tables.items():
        if name not in seed.records:
            continue
        stored = {row.id: row for row in session.exec(select(table))}  # type: ignore[attr-defined]
        if name in REPLACED:
            keep = seed.ids(name)
            kept_prefix = REPLACED[name]
            for row_id, withdrawn in stored.items():
                if row_id not in keep and not (kept_prefix and row_id.startswith(kept_prefix)):
                    session.delete(withdrawn)
                    report.removed[name] += 1
        for item in seed.records[name]:
            values = item.record.model_dump()
            row = stored.get(values["id"])
            if row is None:
                session.add(table.model_validate(values))
                report.inserted[name] += 1
            elif row.model_dump() != values:
                for key, value in values.items():
                    setattr(row, key, value)
                report.updated[name] += 1
            else:
                report.unchanged[name] += 1
        session.flush()
    return report
