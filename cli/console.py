"""How the command line reports a problem (one red line on stderr, exit status 2), and
opens the knowledge base."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlmodel import Session


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@contextmanager
def catalog_session() -> Iterator[Session]:
    """A knowledge-base session, or a clear error when the catalog is not loaded yet."""
    # Imported here: every command reports problems, only some open the knowledge base.
    from kb.db import session_scope
    from kb.repository import NotLoadedError, require_loaded

    with session_scope() as session:
        try:
            require_loaded(session)
        except NotLoadedError as error:
            raise fail(str(error)) from None
        yield session
