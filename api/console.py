"""How the command line reports a problem: one red line on stderr, exit status 2."""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)
