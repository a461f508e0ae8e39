"""The planning service every driver calls: one catalog that follows the knowledge base, and
refusals that name what is wrong."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from kb.db import session_scope
from kb.migrate import upgrade
from kb.repository import NotLoadedError, catalog_changed
from planner.intent import DeploymentIntent
from planner.service import PlanningError, PlanningService
from settings import Settings
from tests.conftest import kb_copy


def service_on(url: str, folder: Path) -> PlanningService:
    return PlanningService(Settings(database_url=url, state_dir=folder))


def test_the_catalog_is_built_once_and_again_when_the_knowledge_base_changes(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    url = kb_copy(seeded_sqlite_url, tmp_path)
    service = service_on(url, tmp_path)
    first = service.assistant()
    assert service.assistant() is first
    with session_scope(url) as session:  # what `kb load` or an added model does
        catalog_changed(session=session)
    assert service.assistant() is not first


def test_the_catalog_in_use_is_left_out_of_full_collections(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    """A full collection walked every object of the catalog, about 100 ms in the middle of a
    turn now and then: warmed, and again once rebuilt, the catalog is frozen out of it."""

    def collected(obj: object) -> bool:
        return any(o is obj for o in gc.get_objects(generation=2))

    url = kb_copy(seeded_sqlite_url, tmp_path)
    service = service_on(url, tmp_path)
    service.warm()
    first = service.assistant()
    assert not collected(first.planner)
    with session_scope(url) as session:
        catalog_changed(session=session)
    second = service.assistant()
    assert second is not first and not collected(second.planner)


def test_an_empty_knowledge_base_says_what_to_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(NotLoadedError, match="preflight kb load"):
        service_on(url, tmp_path).assistant()
    upgrade(url)
    with pytest.raises(NotLoadedError, match="preflight kb load"):
        service_on(url, tmp_path).plan("A chatbot for 500 employees")


def test_bad_input_is_named(seeded_sqlite_url: str, tmp_path: Path) -> None:
    service = service_on(seeded_sqlite_url, tmp_path)
    with pytest.raises(PlanningError, match="either a message"):
        service.plan("A chatbot", DeploymentIntent(use_case="chatbot"))
    with pytest.raises(PlanningError, match=r"scenarios\.0\.changes \(bigger\)"):
        service.compare(
            DeploymentIntent(use_case="chatbot"), [("bigger", {"no_such_field": 1})], "now"
        )
    planned = service.plan(intent=DeploymentIntent(use_case="chatbot", concurrent_users=300))
    assert planned.recommendations.options and planned.intent.concurrent_users == 300
