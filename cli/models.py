"""`preflight kb add-model`: a model of your own, from its config.json, into the catalog."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.console import catalog_session, fail
from kb.checkpoints import Checkpoint, fetch_from_hub, model_record, read_checkpoint
from kb.model_config import ConfigError
from kb.records import ModelBase
from kb.repository import ModelExistsError, add_model
from planner.memory import kv_bytes_per_token_per_gpu, weight_bytes
from planner.specs import ModelSpec, Precision, ServingConfig


def add_model_command(
    config: Annotated[
        Path | None,
        typer.Option(
            help="config.json, or a local snapshot folder (its safetensors index "
            "gives the true weight bytes)."
        ),
    ] = None,
    model_id: Annotated[
        str | None, typer.Option("--id", help="Catalog id, ORG/NAME (the Hub repository).")
    ] = None,
    from_hub: Annotated[
        str | None,
        typer.Option(
            help="Fetch config.json and the safetensors index of ORG/NAME from the "
            "Hugging Face Hub (needs a network)."
        ),
    ] = None,
    precision: Annotated[
        Precision | None, typer.Option(help="Weight precision served (default: the config's).")
    ] = None,
    weights_bytes: Annotated[
        int | None, typer.Option(help="Bytes of the checkpoint's weights (safetensors total).")
    ] = None,
    license: Annotated[str | None, typer.Option(help="Licence, SPDX id where one exists.")] = None,
    quality_mmlu_pro: Annotated[
        float | None, typer.Option(min=0, max=100, help="MMLU-Pro score, 0-100.")
    ] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option(help="What it is for (repeat or comma-separate): chat, code, rag, ..."),
    ] = None,
    languages: Annotated[
        list[str] | None, typer.Option(help="ISO 639-1 codes it speaks (repeat or comma-separate).")
    ] = None,
) -> None:
    """Add a model of your own from its Hugging Face config.json, marked user-added: every
    command and the API can then predict, plan and deploy it."""
    if (config is None) == (from_hub is None):
        raise fail("give --config PATH (a config.json or a snapshot folder) or --from-hub ORG/NAME")
    if model_id is None and from_hub is None:
        raise fail("--config needs --id ORG/NAME")
    with tempfile.TemporaryDirectory() as folder:
        try:
            checkpoint: Checkpoint = (
                read_checkpoint(config)
                if config is not None
                else fetch_from_hub(str(from_hub), Path(folder))
            )
            record = model_record(
                checkpoint,
                model_id=model_id or str(from_hub),
                precision=precision,
                weights_bytes=weights_bytes,
                license=license,
                quality_mmlu_pro=quality_mmlu_pro,
                tasks=_listed(tasks) or ["chat"],
                languages=_listed(languages),
            )
        except ConfigError as error:
            raise fail(str(error)) from None
    with catalog_session() as session:
        try:
            add_model(session=session, record=record)
        except (ModelExistsError, ValueError) as error:
            raise fail(str(error)) from None
    typer.echo(describe(record))


def _listed(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def describe(record: ModelBase) -> str:
    """What the planner will take the new model to be."""
    spec = ModelSpec.model_validate(record.model_dump(include=set(ModelSpec.model_fields)))
    weights = weight_bytes(spec, spec.precision)
    kv = kv_bytes_per_token_per_gpu(spec, ServingConfig(precision=spec.precision))
    active = (
        f", {spec.params_active_b:.2f}B active"
        if spec.params_active_b < spec.params_total_b
        else ""
    )
    return (
        f"added {record.id} (user-added): {record.family}, {spec.params_total_b:.2f}B parameters"
        f"{active}, {spec.attention}, {spec.precision}; weights {weights.total / 1e9:.1f} GB "
        f"({weights.basis}); KV cache {kv:,.0f} bytes per token; context "
        f"{spec.max_context_tokens:,} tokens"
    )
