"""`preflight outcomes`: what live deployments showed against the predictions, per
configuration (the corrections later predictions take) and overall (the model's bias)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.console import catalog_session
from kb.catalog import observed_outcomes
from planner import observed


def outcomes(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Observed / predicted TTFT and TPOT p90 per (model, GPU, precision), and the bias."""
    with catalog_session() as session:
        found = observed_outcomes(session=session)
    corrections = observed.factors(found)
    overall = observed.bias(found)
    if as_json:
        body = {
            "corrections": {k: f.model_dump() for k, f in corrections.items()},
            "bias": overall.model_dump() if overall else None,
            "outcomes": len(found),
        }
        typer.echo(json.dumps(body, indent=2))
        return
    if overall is None:
        typer.echo("no outcomes yet: deployments report them from their SLO checks")
        return
    for name, factor in sorted(corrections.items()):
        typer.echo(f"{name.replace('|', ' on ', 1).replace('|', ', ')}: {factor.describe()}")
    waiting = len({observed.key(o.model_id, o.gpu_id, o.precision) for o in found}) - len(
        corrections
    )
    if waiting:
        typer.echo(f"{waiting} configuration(s) need {observed.MIN_OUTCOMES} checks to count")
    typer.echo(
        f"bias over all deployments: {overall.describe()}: TTFT {_lean(overall.ttft)}, "
        f"TPOT {_lean(overall.tpot)}"
    )


def _lean(factor: float) -> str:
    """Observed / predicted, in words."""
    if factor > 1.1:
        return "slower than predicted"
    return "faster than predicted" if factor < 0.9 else "as predicted"
