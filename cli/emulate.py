"""`preflight emulate`: serve the vLLM emulator (demos, end-to-end tests, rehearsals only)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from cli.console import catalog_session, fail
from emulator.server import EmulatorError, create_emulator, emulator_config
from kb.catalog import planner
from kb.names import UnknownNameError
from kb.repository import gpu_names, model_names
from kb.seed import validation_message
from planner.specs import Precision


def emulate(
    model: Annotated[str, typer.Option(help="Model name or alias.")],
    gpu: Annotated[str, typer.Option(help="GPU name or alias.")],
    tp: Annotated[int, typer.Option(min=1, help="Tensor-parallel degree.")] = 1,
    precision: Annotated[Precision | None, typer.Option(help="Weight precision.")] = None,
    slowdown: Annotated[
        float, typer.Option(help="Multiply every step time (above 0; 2 = twice as slow).")
    ] = 1.0,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8001,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    served_model_name: Annotated[
        str | None, typer.Option(help="Model name clients ask for (default: the catalog id).")
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option(min=16, help="Context length (default: the model's).")
    ] = None,
    max_num_seqs: Annotated[
        int | None, typer.Option(min=1, help="vLLM max_num_seqs (default: vLLM's on the GPU).")
    ] = None,
    max_num_batched_tokens: Annotated[
        int | None,
        typer.Option(min=16, help="vLLM max_num_batched_tokens (default: vLLM's on the GPU)."),
    ] = None,
) -> None:
    """Serve an EMULATED vLLM (OpenAI API + vLLM metrics), timed by the performance model.

    For demos, end-to-end tests and rehearsals only: it runs no model and answers with
    filler words. Every response carries the header X-Preflight-Emulator: true.
    """
    with catalog_session() as session:
        engine = planner(session=session)
        try:
            model_id = model_names(session=session).resolve(model)
            gpu_id = gpu_names(session=session).resolve(gpu)
        except UnknownNameError as error:
            raise fail(str(error)) from None
    try:
        config = emulator_config(
            engine,
            model_id,
            gpu_id,
            tp=tp,
            precision=precision,
            slowdown=slowdown,
            served_model_name=served_model_name,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens,
        )
    except EmulatorError as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        raise fail(validation_message(error)) from None
    typer.echo(
        f"EMULATED vLLM (no model runs; demos and tests only): {config.served_model_name} as "
        f"{model_id} on {tp} x {gpu_id}, slowdown {slowdown}, on http://{host}:{port}",
    )
    uvicorn.run(create_emulator(config), host=host, port=port, log_level="warning")
