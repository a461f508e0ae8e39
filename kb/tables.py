"""Knowledge-base tables: the record shapes of `kb.records`, stored."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from kb import deployments, sessions, slo_checks  # noqa: F401  (register their tables)
from kb.records import (
    BenchmarkBase,
    DeploymentTemplateBase,
    HardwareBase,
    ModelBase,
    OutcomeBase,
    PriceBase,
    UseCaseBase,
)


class Model(ModelBase, table=True):
    __tablename__ = "model"


class Hardware(HardwareBase, table=True):
    __tablename__ = "hardware"


class Price(PriceBase, table=True):
    __tablename__ = "price"
    gpu_id: str = Field(foreign_key="hardware.id", index=True)


class UseCase(UseCaseBase, table=True):
    __tablename__ = "use_case"


class DeploymentTemplate(DeploymentTemplateBase, table=True):
    __tablename__ = "deployment_template"


class Benchmark(BenchmarkBase, table=True):
    __tablename__ = "benchmark"


class Outcome(OutcomeBase, table=True):
    __tablename__ = "deployment_outcome"


class CatalogRevision(SQLModel, table=True):
    """One row counting changes to the catalog (models, GPUs, prices, measurements), so that
    every process holding a planner built from it knows when to rebuild."""

    __tablename__ = "catalog_revision"
    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0, ge=0)


COLLECTIONS: dict[
    str, type[Model | Hardware | Price | UseCase | DeploymentTemplate | Benchmark | Outcome]
] = {
    "models": Model,
    "hardware": Hardware,
    "prices": Price,
    "use_cases": UseCase,
    "deployment_templates": DeploymentTemplate,
    "benchmarks": Benchmark,
    "outcomes": Outcome,
}
"""The seven collections of the design, by the name `kb stats` reports."""
