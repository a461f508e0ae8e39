"""Reads and writes of the knowledge base that the rest of Preflight uses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import func, inspect, or_
from sqlmodel import Session, select

from kb.db import session_scope
from kb.names import NameIndex
from kb.records import ModelBase, PriceBase, PricingKind
from kb.seed import DATA_DIR, LoadReport, read_seed, write_seed
from kb.tables import COLLECTIONS, Benchmark, CatalogRevision, Hardware, Model, Price, UseCase


class CollectionStats(BaseModel):
    count: int
    without_source: int


class KnowledgeBaseStats(BaseModel):
    collections: dict[str, CollectionStats]
    benchmarks_by_engine: dict[str, int]
    benchmarks_by_kind: dict[str, int]

    @property
    def without_source(self) -> int:
        return sum(c.without_source for c in self.collections.values())


class NotLoadedError(RuntimeError):
    """The knowledge base has no catalog yet."""


def require_loaded(session: Session) -> None:
    """Raise NotLoadedError, saying what to run, unless the catalog is there."""
    bind = session.get_bind()
    if not inspect(bind).has_table("model") or not session.exec(select(Model.id).limit(1)).first():
        where = bind.engine.url.render_as_string(hide_password=True)
        raise NotLoadedError(f"the knowledge base at {where} is empty: run `preflight kb load`")


def catalog_revision(*, session: Session) -> int:
    """How many times the catalog has changed (0 before the first change)."""
    row = session.get(CatalogRevision, 1)
    return row.revision if row is not None else 0


def catalog_changed(*, session: Session) -> None:
    """Count a change to the catalog, in the caller's transaction."""
    row = session.get(CatalogRevision, 1) or CatalogRevision()
    row.revision += 1
    session.add(row)


def load(
    *, url: str | None = None, data_dir: Path = DATA_DIR, measured_dir: Path | None = None
) -> LoadReport:
    """Validate every seed file, then write them all in one transaction."""
    seed = read_seed(data_dir, measured_dir)
    with session_scope(url) as session:
        report = write_seed(session, seed)
        if report.inserted or report.updated or report.removed:
            catalog_changed(session=session)
        return report


def stats(*, session: Session) -> KnowledgeBaseStats:
    collections = {}
    for name, table in COLLECTIONS.items():
        source = getattr(table, "source")  # noqa: B009  (every collection has one)
        count = session.exec(select(func.count()).select_from(table)).one()
        missing = session.exec(
            select(func.count()).select_from(table).where(or_(source.is_(None), source == ""))
        ).one()
        collections[name] = CollectionStats(count=count, without_source=missing)
    by_engine = session.exec(select(Benchmark.engine, func.count()).group_by(Benchmark.engine))
    by_kind = session.exec(select(Benchmark.kind, func.count()).group_by(Benchmark.kind))
    return KnowledgeBaseStats(
        collections=collections,
        benchmarks_by_engine=dict(by_engine.all()),
        benchmarks_by_kind=dict(by_kind.all()),
    )


def model_names(*, session: Session) -> NameIndex:
    rows = session.exec(select(Model.id, Model.aliases)).all()
    return NameIndex.build("model", rows)


def gpu_names(*, session: Session) -> NameIndex:
    rows = session.exec(select(Hardware.id, Hardware.aliases)).all()
    return NameIndex.build("GPU", rows)


def set_price(
    *,
    session: Session,
    gpu: str,
    usd_per_gpu_hour: float,
    provider: str = "on_prem",
    pricing: PricingKind = "on_prem",
    instance_type: str = "set by the user",
    gpus_per_instance: int = 8,
    source: str = "set by the user",
) -> Price:
    """Record a price the user knows (e.g. their own amortised on-prem cost, per GPU of a
    system of `gpus_per_instance`: replicas of up to that TP are priced from it)."""
    gpu_id = gpu_names(session=session).resolve(gpu)
    record = PriceBase(
        id=f"user-{provider}-{pricing}-{gpu_id}",
        gpu_id=gpu_id,
        provider=provider,
        pricing=pricing,
        instance_type=instance_type,
        gpus_per_instance=gpus_per_instance,
        usd_per_gpu_hour=usd_per_gpu_hour,
        source=source,
        retrieved=dt.datetime.now(dt.UTC).date(),
    )
    price = session.get(Price, record.id) or Price(**record.model_dump())
    for key, value in record.model_dump().items():
        setattr(price, key, value)
    session.add(price)
    catalog_changed(session=session)
    return price


class ModelExistsError(ValueError):
    """The catalog already has a model of that id."""


def known_tasks(*, session: Session) -> set[str]:
    """Task tags the catalog's models and use cases use: what a model may be tagged with."""
    tags: set[str] = set()
    for tasks in session.exec(select(Model.tasks)):
        tags |= set(tasks)
    for tasks in session.exec(select(UseCase.tasks)):
        tags |= set(tasks)
    return tags


def add_model(*, session: Session, record: ModelBase) -> Model:
    """Add a model of the user's own to the catalog (in the caller's transaction); refused,
    naming the problem, for an id already taken or a task the catalog does not know."""
    existing = session.get(Model, record.id)
    if existing is not None:
        raise ModelExistsError(
            f"model '{record.id}' is already in the catalog ({existing.origin}); "
            "choose another --id"
        )
    known = known_tasks(session=session)
    unknown = sorted(set(record.tasks) - known)
    if unknown:
        raise ValueError(
            f"model '{record.id}': tasks: unknown {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    model = Model.model_validate(record.model_dump())
    session.add(model)
    catalog_changed(session=session)
    return model
