"""The cluster's GPUs as `preflight cluster gpus` and `GET /cluster/gpus` report them, read
through the real Kubernetes client from the local API endpoint: nodes labelled by the GPU
operators, allocatable GPUs, pods holding some, taints, a cordon, MIG slices, a product the
catalog does not know; no cluster, and a cluster that refuses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.keys import add_key
from cli.inventory import app as cluster_cli
from deploy.inventory import ClusterReader
from planner.service import PlanningService
from settings import Settings
from tests.conftest import free_port, kb_copy
from tests.fake_apiserver import FakeApiServer, node, pod, running, write_kubeconfig

TOKEN = f"test-bearer-{secrets.token_hex(12)}"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559"}
L4 = {"nvidia.com/gpu.product": "NVIDIA-L4"}
MI300X = {
    "amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
    "amd.com/gpu.device-id": "74a1",
    "amd.com/gpu.vram": "192G",
}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def two_kinds(fake: FakeApiServer) -> None:
    """Two H100 nodes (one half used, one cordoned), an L4 node, an MI300X node, a node of a
    product the catalog lacks, an A100 cut into MIG slices, and a node with no GPU."""
    fake.nodes = [
        node("h100-a", H100, 8, taints=[GPU_TAINT]),
        node("h100-b", H100, 8, unschedulable=True),
        node("l4-a", L4, 4),
        node("mi300x-a", MI300X, 8, "amd.com/gpu"),
        node("gh200-a", {"nvidia.com/gpu.product": "NVIDIA-GH200-480GB"}, 1),
        node(
            "a100-mig",
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            0,
            extra={"nvidia.com/mig-1g.10gb": "7"},
        ),
        node("cpu-a", {}, 0),
    ]
    fake.pods = [
        pod("llama-70b-0", "h100-a", 4),
        pod("batch-0", "h100-a", 2),
        pod("done-0", "h100-a", 8, phase="Succeeded"),  # holds nothing any more
        pod("waiting-0", None, 8, phase="Pending"),  # not on a node yet
        pod("rocm-0", "mi300x-a", 8, "amd.com/gpu"),
        pod("small-0", "l4-a", 1),
    ]


@pytest.fixture
def apiserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_sqlite_url: str
) -> Iterator[FakeApiServer]:
    monkeypatch.setenv("DATABASE_URL", seeded_sqlite_url)  # read only: the catalog's GPUs
    with running(TOKEN) as fake:
        two_kinds(fake)
        monkeypatch.setenv(
            "KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", fake.url, TOKEN))
        )
        yield fake


def gpus(*args: str) -> Any:
    return CliRunner().invoke(cluster_cli, ["gpus", *args])


def test_the_inventory_names_each_nodes_gpus_and_what_is_free(apiserver: FakeApiServer) -> None:
    shown = gpus("--context", "fake")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "cluster fake: 5 kind(s) of GPU on 6 node(s)"
    # Cordoned h100-b offers nothing; h100-a has 8 - 4 - 2 (the finished pod holds none).
    assert "  H100-SXM-80GB: 2 of 16 free on 2 node(s), at most 2 on one node" in lines
    assert "  L4-PCIE-24GB: 3 of 4 free on 1 node(s), at most 3 on one node" in lines
    assert "  MI300X-OAM-192GB: 0 of 8 free on 1 node(s), at most 0 on one node" in lines
    unknown = "  unknown product 'NVIDIA-GH200-480GB' (not in the catalog): 1 of 1 free"
    assert any(line.startswith(unknown) for line in lines), lines
    rows = {line.split()[0]: line.split() for line in lines[7:]}
    assert rows["h100-a"][1:5] == ["H100-SXM-80GB", "8", "6", "2"]
    assert "nvidia.com/gpu=present:NoSchedule" in " ".join(rows["h100-a"])
    assert rows["h100-b"][1:5] == ["H100-SXM-80GB", "8", "0", "0"] and "cordoned" in rows["h100-b"]
    assert rows["a100-mig"][1] == "A100-SXM-80GB" and "1g.10gb" in " ".join(rows["a100-mig"])
    assert "cpu-a" not in rows

    data = json.loads(gpus("--context", "fake", "--json").output)
    assert {k["gpu_id"]: k["free"] for k in data["kinds"]} == {
        "L4-PCIE-24GB": 3,
        "H100-SXM-80GB": 2,
        None: 1,
        "MI300X-OAM-192GB": 0,
        "A100-SXM-80GB": 0,
    }
    # Read with the kubeconfig's credentials, and nothing written.
    assert apiserver.writes() == []


def test_no_cluster_and_a_refusing_cluster_are_said_plainly(
    apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apiserver.denied.add(("", "nodes", "list", ""))
    refused = gpus()
    assert refused.exit_code == 2
    assert "refuses to list nodes" in refused.output and "ClusterRole" in refused.output
    assert TOKEN not in refused.output

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    missing = gpus()
    assert missing.exit_code == 2 and "no cluster configured" in missing.output


def test_the_api_reports_the_servers_cluster_and_says_when_it_has_none(
    apiserver: FakeApiServer, seeded_sqlite_url: str, tmp_path: Path
) -> None:
    keys = {"alice": add_key(tmp_path / "keys.json", "alice", ["requester"])}
    common: dict[str, Any] = {
        "database_url": seeded_sqlite_url,
        "api_keys_file": tmp_path / "keys.json",
        "temporal_address": f"127.0.0.1:{free_port()}",
    }
    alice = {"Authorization": f"Bearer {keys['alice']}"}
    with TestClient(create_app(Settings(kube_context="fake", **common))) as client:
        found = client.get("/cluster/gpus", headers=alice)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["context"] == "fake"
        assert {n["node"]: n["free"] for n in body["nodes"]}["l4-a"] == 3
        assert client.get("/cluster/gpus").status_code == 401
        apiserver.denied.add(("", "pods", "list", ""))
        refused = client.get("/cluster/gpus", headers=alice)
        assert refused.status_code == 502 and "refuses to list pods" in refused.json()["detail"]
    with TestClient(create_app(Settings(**common))) as client:
        gitops = client.get("/cluster/gpus", headers=alice)
        assert gitops.status_code == 404
        assert gitops.json()["detail"].startswith("no cluster configured")


def test_planning_keeps_to_the_cluster_it_deploys_to_and_reads_it_sparingly(
    apiserver: FakeApiServer, seeded_sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=kb_copy(seeded_sqlite_url, tmp_path), kube_context="fake")
    planning = PlanningService(settings, ClusterReader(settings))
    words = "A customer support chatbot for 1,000 employees, answers must start within a second."
    found = planning.plan(words).recommendations
    present = {"H100-SXM-80GB", "L4-PCIE-24GB", "MI300X-OAM-192GB", "A100-SXM-80GB"}
    assert found.options and {r.option.gpu_id for r in found.options} <= present
    assert found.cluster[0].startswith("cluster fake has free now: 3 x L4-PCIE-24GB")
    planning.plan(words)  # within the reader's 30 s: the cluster is not asked again
    assert sum(r.path == "/api/v1/nodes" for r in apiserver.requests) == 1

    apiserver.denied.add(("", "nodes", "list", ""))
    refused = PlanningService(settings, ClusterReader(settings)).plan(words)
    assert refused.recommendations.cluster == []  # planned as without a cluster
