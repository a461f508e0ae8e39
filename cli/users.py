"""`preflight users add | list`: API keys of the people who use the REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from api.keys import ROLES, KeysFileError, add_key, load_keys
from cli.console import fail
from settings import get_settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="API users, their roles and keys."
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user's name, as the audit trail shows it.")],
    roles: Annotated[
        list[str],
        typer.Option("--role", help=f"A role to grant ({', '.join(ROLES)}); repeat for more."),
    ],
) -> None:
    """Create a key for NAME (replacing any key NAME had) and print it once: only its hash
    is stored."""
    path = get_settings().resolved_api_keys_file
    try:
        key = add_key(path, name, roles)
    except (ValueError, KeysFileError) as error:
        raise fail(str(error)) from None
    typer.echo(f"added {name} ({', '.join(sorted(set(roles)))}) to {path}")
    typer.echo("API key (shown once; send it as `Authorization: Bearer <key>`):")
    typer.echo(key)


@app.command("list")
def list_users() -> None:
    """The users and their roles (never their keys)."""
    path = get_settings().resolved_api_keys_file
    try:
        entries = load_keys(path)
    except KeysFileError as error:
        raise fail(str(error)) from None
    if not entries:
        typer.echo(f"no users in {path}: add one with `preflight users add NAME --role ROLE`")
    for entry in sorted(entries, key=lambda e: e.user):
        typer.echo(f"{entry.user:24} {', '.join(entry.roles)}")
