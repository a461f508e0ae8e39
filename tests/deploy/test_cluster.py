"""The deploy journey against a real cluster (`make test-cluster`): permission check, dry run,
apply, apply again (nothing changes), a second revision, rollback, delete; and the GPU
inventory of its nodes.

Runs only when KUBECONFIG names a kubeconfig file; its current context (or
PREFLIGHT_TEST_CONTEXT) must reach a cluster where PREFLIGHT_TEST_NAMESPACE (default
`default`) exists. Uses a ConfigMap and a PodDisruptionBudget, which every cluster serves,
plus a small KServe InferenceService (sklearn example model) waited on until Ready when the
cluster serves serving.kserve.io/v1beta1. Everything it creates is deleted at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deploy import cluster, kubeconfig, rollout
from deploy.inventory import read_inventory
from kb import deployments
from kb.catalog import gpu_k8s
from kb.db import session_scope
from kb.migrate import upgrade
from workflows.payloads import DeployResult

KUBECONFIG = os.environ.get("KUBECONFIG", "")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG or not all(Path(p).is_file() for p in KUBECONFIG.split(os.pathsep) if p),
    reason="no real cluster: set KUBECONFIG to a kubeconfig file to run `make test-cluster`",
)

NAMESPACE = os.environ.get("PREFLIGHT_TEST_NAMESPACE", "default")
READY_TIMEOUT_S = float(os.environ.get("PREFLIGHT_TEST_READY_TIMEOUT_S", "600"))


def journey_manifests(name: str, greeting: str, kserve: bool) -> list[dict[str, Any]]:
    meta = {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": name}}
    manifests: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"hello": greeting}},
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": meta["labels"]}},
        },
    ]
    if kserve:
        manifests.append(
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": meta,
                "spec": {
                    "predictor": {
                        "model": {
                            "modelFormat": {"name": "sklearn"},
                            "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                        }
                    }
                },
            }
        )
    return manifests


@pytest.fixture
def context() -> str:
    return kubeconfig.active_context(os.environ.get("PREFLIGHT_TEST_CONTEXT"))


@pytest.fixture
def api_client(context: str) -> Iterator[client.ApiClient]:
    api_client = kubeconfig.connect(context)
    yield api_client
    api_client.close()  # type: ignore[no-untyped-call]


def test_deploy_journey_on_a_real_cluster(
    api_client: client.ApiClient, context: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(url)
    name = f"preflight-e2e-{secrets.token_hex(3)}"
    kserve = cluster.served(api_client, "serving.kserve.io/v1beta1")
    first, second = (journey_manifests(name, g, kserve) for g in ("one", "two"))
    target = rollout.ClusterTarget(api_client=api_client, context=context)

    def deploy(manifests: list[dict[str, Any]]) -> DeployResult:
        return rollout.deploy(
            manifests,
            name=name,
            namespace=NAMESPACE,
            target=target,
            actor="make-test-cluster",
            wait_timeout_s=READY_TIMEOUT_S if kserve else 0,
            on_progress=print,
            database_url=url,
        )

    try:
        assert cluster.check_permissions(api_client, first) == []
        created = deploy(first)
        assert {a.action for a in created.applied} == {"created"}
        assert (created.ready is not None) == kserve
        again = deploy(first)
        assert {a.action for a in again.applied} == {"unchanged"}
        assert not again.new_revision
        changed = deploy(second)
        assert changed.revision == 2
        assert (cluster.read(api_client, second[0]) or {})["data"] == {"hello": "two"}

        assert changed.deployment_id is not None
        rollout.rollback(changed.deployment_id, actor="make-test-cluster", database_url=url)
        assert (cluster.read(api_client, first[0]) or {})["data"] == {"hello": "one"}
        rollout.rollback(changed.deployment_id, actor="make-test-cluster", database_url=url)
        with session_scope(url) as session:
            trail = deployments.audit_trail(session=session, deployment_id=changed.deployment_id)
        assert [e.action for e in trail][-2:] == ["rollback", "delete"]
    finally:
        cluster.delete(api_client, first)
    assert all(cluster.read(api_client, m) is None for m in first if m["kind"] == "ConfigMap")


def test_the_inventory_of_a_real_cluster(
    api_client: client.ApiClient, context: str, seeded_sqlite_url: str
) -> None:
    """Every node listed with GPUs has a resource, sane counts, and a product; a cluster
    without GPUs lists none. (Needs get/list on nodes and pods.)"""
    with session_scope(seeded_sqlite_url) as session:
        catalog = gpu_k8s(session=session)
    found = read_inventory(api_client, context, catalog)
    print(found.model_dump_json(indent=2))
    for node in found.nodes:
        assert node.allocatable >= 0 and 0 <= node.free <= node.allocatable
        assert node.product and (node.allocatable or node.mig)
    assert sum(kind.nodes for kind in found.kinds) == len(found.nodes)
