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
    "predict": "api.predict_cli:predict",
    "calibrate": "api.predict_cli:calibrate_command",
    "capacity": "api.predict_cli:capacity",
    "intent": "api.intent_cli:intent",
    "plan": "api.intent_cli:plan",
    "chat": "api.intent_cli:chat",
    "whatif": "api.intent_cli:whatif",
    "compare": "api.intent_cli:compare_command",
    "render": "api.deploy_cli:render_command",
    "deploy": "api.cluster_cli:deploy_command",
    "rollback": "api.cluster_cli:rollback_command",
    "deployments": "api.cluster_cli:deployments_command",
    "demo": "api.demo:demo",
    "outcomes": "api.outcomes_cli:outcomes",
    "load": "api.load_cli:load",
    "emulate": "api.emulator_cli:emulate",
}
"""Command name: `module:function`."""
GROUPS = {"kb": "api.kb_cli:app", "users": "api.users_cli:app"}
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
    from api.console import fail
    from api.devstack import StackError
    from api.devstack import run as run_stack
    from kb.seed import SeedError

    try:
        raise typer.Exit(run_stack(get_settings()))
    except (StackError, SeedError) as error:
        raise fail(str(error)) from None
