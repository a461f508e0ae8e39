"""The `preflight` command line.

Each command's module is imported when that command runs, so a command pays only for what it
uses: importing every command took seconds (the Kubernetes client alone, 2.5 s) before
`preflight plan` had read a word.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click.core import Command  # Typer's own Click, which its groups hold

from settings import get_settings

COMMANDS = {
    "predict": "cli.predict:predict",
    "calibrate": "cli.predict:calibrate_command",
    "capacity": "cli.predict:capacity",
    "intent": "cli.plan:intent",
    "plan": "cli.plan:plan",
    "chat": "cli.plan:chat",
    "whatif": "cli.plan:whatif",
    "compare": "cli.plan:compare_command",
    "render": "cli.deploy:render_command",
    "deploy": "cli.cluster:deploy_command",
    "rollback": "cli.cluster:rollback_command",
    "deployments": "cli.cluster:deployments_command",
    "demo": "cli.demo:demo",
    "outcomes": "cli.outcomes:outcomes",
    "load": "cli.load:load",
    "emulate": "cli.emulate:emulate",
}
"""Command name: `module:function`."""
GROUPS = {
    "kb": "cli.knowledge_base:app",
    "users": "cli.users:app",
    "cluster": "cli.inventory:app",
}
"""Command group name: `module:Typer app`."""


def _load(reference: str) -> Any:
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


class _Lazy(TyperGroup):
    """Commands and groups imported by name, when asked for."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return sorted({*super().list_commands(ctx), *COMMANDS, *GROUPS})

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Command | None:  # type: ignore[override]
        if cmd_name in COMMANDS:
            one = typer.Typer(add_completion=False)
            one.command(cmd_name)(_load(COMMANDS[cmd_name]))
            return typer.main.get_command(one)
        if cmd_name in GROUPS:
            group = typer.main.get_command(_load(GROUPS[cmd_name]))
            group.name = cmd_name
            return group
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_Lazy, no_args_is_help=True, help="Preflight: plan, deploy and watch LLM serving."
)


@app.callback()
def main() -> None:
    """Preflight: plan, deploy and watch LLM serving."""


@app.command()
def run() -> None:
    """Start the embedded stack (Temporal dev server, worker, API) until Ctrl-C."""
    from cli.console import fail
    from cli.stack import StackError
    from cli.stack import run as run_stack
    from kb.seed import SeedError

    try:
        raise typer.Exit(run_stack(get_settings()))
    except (StackError, SeedError) as error:
        raise fail(str(error)) from None
