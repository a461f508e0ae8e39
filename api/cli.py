"""The `preflight` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api import (
    cluster_cli,
    demo,
    deploy_cli,
    emulator_cli,
    intent_cli,
    load_cli,
    models_cli,
    outcomes_cli,
    predict_cli,
    users_cli,
)
from api.console import fail
from kb.db import session_scope
from kb.migrate import upgrade
from kb.names import UnknownNameError
from kb.records import PricingKind
from kb.repository import gpu_names, load, model_names, set_price, stats
from kb.seed import DATA_DIR, SeedError
from settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Preflight: plan, deploy and watch LLM serving.")
kb_app = typer.Typer(no_args_is_help=True, help="The knowledge base: models, GPUs, prices, data.")
app.add_typer(kb_app, name="kb")
kb_app.command("add-model")(models_cli.add_model_command)
app.add_typer(users_cli.app, name="users")
app.command("predict")(predict_cli.predict)
app.command("calibrate")(predict_cli.calibrate_command)
app.command("capacity")(predict_cli.capacity)
app.command("intent")(intent_cli.intent)
app.command("plan")(intent_cli.plan)
app.command("chat")(intent_cli.chat)
app.command("whatif")(intent_cli.whatif)
app.command("compare")(intent_cli.compare_command)
app.command("render")(deploy_cli.render_command)
app.command("deploy")(cluster_cli.deploy_command)
app.command("rollback")(cluster_cli.rollback_command)
app.command("deployments")(cluster_cli.deployments_command)
app.command("demo")(demo.demo)
app.command("outcomes")(outcomes_cli.outcomes)
app.command("load")(load_cli.load)
app.command("emulate")(emulator_cli.emulate)


@app.command()
def run() -> None:
    """Start the embedded stack (Temporal dev server, worker, API) until Ctrl-C."""
    from api.devstack import StackError
    from api.devstack import run as run_stack

    try:
        raise typer.Exit(run_stack(get_settings()))
    except (StackError, SeedError) as error:
        raise fail(str(error)) from None


@kb_app.command("migrate")
def kb_migrate() -> None:
    """Create or upgrade the knowledge-base schema."""
    upgrade()
    typer.echo(f"migrated {get_settings().resolved_database_url.split('@')[-1]}")


@kb_app.command("load")
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


@kb_app.command("stats")
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


@kb_app.command("resolve")
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


@kb_app.command("set-price")
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
