"""`preflight kb migrate | load | stats | resolve | set-price | add-model`: the knowledge base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli import models as models_cli
from cli.console import fail
from kb.db import session_scope
from kb.migrate import upgrade
from kb.names import UnknownNameError
from kb.records import PricingKind
from kb.repository import gpu_names, load, model_names, set_price, stats
from kb.seed import DATA_DIR, SeedError
from settings import get_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The knowledge base: models, GPUs, prices, data.",
)
app.command("add-model")(models_cli.add_model_command)


@app.command("migrate")
def kb_migrate() -> None:
    """Create or upgrade the knowledge-base schema."""
    upgrade()
    typer.echo(f"migrated {get_settings().resolved_database_url.split('@')[-1]}")


@app.command("load")
def kb_load(
    data_dir: Annotated[Path, typer.Option(help="Folder of curated YAML seed files.")] = DATA_DIR,
    measured_dir: Annotated[
        Path | None, typer.Option(help="Folder of measured benchmark CSVs.")
    ] = None,
) -> None:
    """Migrate, then validate and load the seed data (idempotent, all or nothing)."""
    upgrade()
    try:
        report = load(
            data_dir=data_dir, measured_dir=measured_dir or get_settings().measured_data_dir
        )
    except SeedError as error:
        raise fail(str(error)) from None
    names = set(report.inserted) | set(report.updated) | set(report.unchanged) | set(report.removed)
    for name in sorted(names):
        typer.echo(
            f"{name:22} {report.inserted[name]:6} new {report.updated[name]:6} updated "
            f"{report.unchanged[name]:6} unchanged {report.removed[name]:6} removed"
        )


@app.command("stats")
def kb_stats(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Records per collection, and how many lack a source (must be 0)."""
    with session_scope() as session:
        result = stats(session=session)
    if as_json:
        typer.echo(
            json.dumps(result.model_dump() | {"without_source": result.without_source}, indent=2)
        )
        return
    for name, collection in result.collections.items():
        typer.echo(f"{name:22} {collection.count:6}  ({collection.without_source} without source)")
    typer.echo(f"benchmarks by engine: {result.benchmarks_by_engine}")


@app.command("resolve")
def kb_resolve(
    kind: Annotated[str, typer.Argument(help="model or gpu")],
    name: Annotated[str, typer.Argument(help="A name or alias, e.g. H100 or llama-3.1-8b.")],
) -> None:
    """Print the catalog id a model or GPU name stands for."""
    if kind not in ("model", "gpu"):
        raise fail(f"kind must be 'model' or 'gpu', got '{kind}'")
    with session_scope() as session:
        index = model_names(session=session) if kind == "model" else gpu_names(session=session)
        try:
            typer.echo(index.resolve(name))
        except UnknownNameError as error:
            raise fail(str(error)) from None


@app.command("set-price")
def kb_set_price(
    gpu: Annotated[str, typer.Option(help="GPU name or alias.")],
    usd_per_gpu_hour: Annotated[float, typer.Option(min=0.0001, help="USD per GPU-hour.")],
    provider: Annotated[str, typer.Option(help="Provider name.")] = "on_prem",
    pricing: Annotated[PricingKind, typer.Option(help="Kind of price.")] = "on_prem",
    gpus_per_instance: Annotated[
        int, typer.Option(min=1, help="GPUs in the instance or system the price is for.")
    ] = 8,
) -> None:
    """Record your own price for a GPU, e.g. your amortised on-prem cost or a negotiated rate."""
    with session_scope() as session:
        try:
            price = set_price(
                session=session,
                gpu=gpu,
                usd_per_gpu_hour=usd_per_gpu_hour,
                provider=provider,
                pricing=pricing,
                gpus_per_instance=gpus_per_instance,
            )
        except UnknownNameError as error:
            raise fail(str(error)) from None
        typer.echo(f"{price.id}: ${price.usd_per_gpu_hour:.4f} per GPU-hour")
