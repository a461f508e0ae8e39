"""Planning with a cluster known: recommendations keep to its GPUs (by policy), say what it
has free and whether each option fits now, and a selection that does not fit the free GPUs,
one node per replica, is refused before approval with what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.cluster import ClusterGpus, ClusterPolicy
from planner.service import PlanningError, PlanningService
from settings import Settings
from tests.conftest import kb_copy

H100, L4, A100 = "H100-SXM-80GB", "L4-PCIE-24GB", "A100-SXM-80GB"
WORDS = "A customer support chatbot for 1,000 employees, answers must start within a second."
CLUSTER = ClusterGpus(context="prod", free={H100: [0, 0], L4: [8, 3]})
"""Two H100 nodes, all in use; two L4 nodes with eleven free."""


def service(url: str, policy: ClusterPolicy, cluster: ClusterGpus = CLUSTER) -> PlanningService:
    return PlanningService(Settings(database_url=url, cluster_gpus=policy), lambda _: cluster)


@pytest.fixture(scope="module")
def url(seeded_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return kb_copy(seeded_sqlite_url, Path(tmp_path_factory.mktemp("kb")))


@pytest.mark.parametrize(
    ("policy", "gpus"), [("present", {H100, L4}), ("free", {L4}), ("any", None)]
)
def test_recommendations_keep_to_the_clusters_gpus_and_say_what_is_free(
    url: str, policy: ClusterPolicy, gpus: set[str] | None
) -> None:
    planned = service(url, policy).plan(WORDS)
    found = planned.recommendations
    assert found.options
    used = {r.option.gpu_id for r in found.options}
    if gpus is None:
        assert used - {H100, L4}, used  # not kept to the cluster
    else:
        assert used <= gpus, used
    assert found.cluster[0] == (
        "cluster prod has free now: 11 x L4-PCIE-24GB (at most 8 on one node); "
        "0 x H100-SXM-80GB (at most 0 on one node)"
    )
    for r, note in zip(found.options, found.cluster[2:], strict=True):
        assert note.startswith(f"{r.id}: ") and f"x {r.option.gpu_id}, each on one node" in note
    # The specification is the person's, not the cluster's.
    assert planned.specification.constraints.gpus is None
    assert found.specification.constraints.gpus is None


def test_a_selection_that_does_not_fit_the_free_gpus_is_refused_with_what_is_missing(
    url: str,
) -> None:
    planning = service(url, "present")
    planned = planning.plan(WORDS)
    pinned = planning.replan(planned.intent, {"available_gpus": [H100]}).recommendations
    on_h100 = pinned.options[0]
    assert on_h100.option.gpu_id == H100
    with pytest.raises(PlanningError) as refused:
        planning.prepare(on_h100, pinned.specification, "support-bot", "ml")
    message = str(refused.value)
    assert message.startswith("the cluster cannot run it now: ")
    assert f"x {H100}, each on one node: the cluster has room for 0 now (free per node: 0, 0)" in (
        message
    )
    assert "more free GPUs" in message and "missing" in message

    on_l4 = planning.replan(planned.intent, {"available_gpus": [L4]}).recommendations
    prepared = planning.prepare(on_l4.options[0], on_l4.specification, "support-bot", "ml")
    assert prepared.plan.accelerator.gpu_id == L4
    # Without a cluster nothing is checked.
    free = PlanningService(Settings(database_url=url))
    assert free.prepare(on_h100, pinned.specification, "support-bot", "ml").plan
