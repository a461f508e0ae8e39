"""A knowledge base seeded from the repository's data, in a temporary folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session

from kb.db import session_scope
from kb.migrate import upgrade
from kb.repository import load
from settings import get_settings


@contextmanager
def seeded_session() -> Iterator[Session]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'kb.db'}"
        upgrade(url)
        load(url=url, measured_dir=get_settings().measured_data_dir)
        with session_scope(url) as session:
            yield session
