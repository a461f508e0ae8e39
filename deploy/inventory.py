"""What GPUs a cluster has, where, and how many are free: read from its nodes (the labels GPU
operators set, allocatable resources, taints, cordons) and its pods (what they request), and
matched to the catalog's accelerators by those labels. A product the catalog does not know
is reported by its label, never guessed."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, computed_field

from deploy.targets import ClusterError, deploy_target
from planner.cluster import ClusterGpus
from planner.deployment_plan import GpuK8s
from settings import Settings

if TYPE_CHECKING:
    from kubernetes import client

# The Kubernetes client (deploy.cluster, deploy.kubeconfig) is imported when a cluster is
# read: the API imports this module for its types and starts without the client (2.5 s).

log = logging.getLogger(__name__)
PRODUCT_LABELS = (
    "nvidia.com/gpu.product",  # NVIDIA GPU Feature Discovery
    "amd.com/gpu.product-name",  # AMD GPU operator's node labeller
    "feature.node.kubernetes.io/pci-1da3.present",  # NFD: a Habana (Intel Gaudi) PCI device
)
"""The node label that names the accelerator, one per vendor's operator."""
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "habana.ai/gaudi")
MIG_PREFIX = "nvidia.com/mig-"
"""MIG slices are resources of their own (`nvidia.com/mig-1g.10gb`, the mixed strategy)."""
FINISHED = ("Succeeded", "Failed")
"""Pod phases that hold no resources."""


class NodeGpus(BaseModel):
    """One node's accelerators."""

    node: str
    gpu_id: str | None
    """The catalog's accelerator; None when its product is not in the catalog."""
    product: str
    """What the node's product label says (or that it has none)."""
    resource: str
    """The extended resource pods request, e.g. `nvidia.com/gpu`."""
    allocatable: int
    requested: int
    """By the node's pods that have not finished."""
    schedulable: bool
    """False when cordoned: nothing new lands there."""
    taints: list[str] = []
    """`key=value:effect`; a deployment needs a toleration for each NoSchedule one."""
    mig: dict[str, int] = {}
    """MIG profile -> slices allocatable (the mixed strategy)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def free(self) -> int:
        return max(self.allocatable - self.requested, 0) if self.schedulable else 0


class GpuKind(BaseModel):
    """One kind of accelerator across the cluster."""

    gpu_id: str | None
    product: str
    nodes: int
    allocatable: int
    free: int
    most_free_on_one_node: int
    """A replica's GPUs must share a node: the largest replica that fits now."""


class Inventory(BaseModel):
    context: str
    nodes: list[NodeGpus]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kinds(self) -> list[GpuKind]:
        """Per kind of accelerator, most free first."""
        grouped: dict[tuple[str | None, str], list[NodeGpus]] = defaultdict(list)
        for node in self.nodes:
            grouped[(node.gpu_id, node.product)].append(node)
        kinds = [
            GpuKind(
                gpu_id=gpu_id,
                product=product,
                nodes=len(nodes),
                allocatable=sum(n.allocatable for n in nodes),
                free=sum(n.free for n in nodes),
                most_free_on_one_node=max(n.free for n in nodes),
            )
            for (gpu_id, product), nodes in grouped.items()
        ]
        return sorted(kinds, key=lambda k: (-k.free, k.product))

    def gpus(self) -> ClusterGpus:
        """The free GPUs of each catalog accelerator, node by node, as planning reads them."""
        found: dict[str, list[int]] = defaultdict(list)
        for node in self.nodes:
            if node.gpu_id is not None and node.schedulable:
                found[node.gpu_id].append(node.free)
        return ClusterGpus(context=self.context, free=dict(found))


class NoClusterError(ClusterError):
    """Nothing says which cluster to read."""


NO_CLUSTER = (
    "no cluster configured: Preflight reads the cluster of KUBECONFIG (or ~/.kube/config), "
    "of PREFLIGHT_KUBE_CONTEXT for the server, or the one it runs in"
)


def inventory(context: str | None, catalog: Mapping[str, GpuK8s]) -> Inventory:
    """The inventory of `context`'s cluster (None: the kubeconfig's current one, or the
    cluster Preflight runs in)."""
    from deploy.kubeconfig import active_context, cluster_configured, connect

    if context is None and not cluster_configured():
        raise NoClusterError(NO_CLUSTER)
    name = active_context(context)
    return read_inventory(connect(name), name, catalog)


def read_inventory(
    api_client: client.ApiClient, context: str, catalog: Mapping[str, GpuK8s]
) -> Inventory:
    """The cluster's accelerators, node by node; ClusterError says what cannot be read."""
    nodes = _items(api_client, "/api/v1/nodes", "nodes")
    pods = _items(api_client, "/api/v1/pods", "pods")
    requested = _requested(p for p in pods if p.get("status", {}).get("phase") not in FINISHED)
    found = [
        gpus
        for node in nodes
        if (gpus := _node_gpus(node, requested.get(_name(node), {}), catalog)) is not None
    ]
    return Inventory(context=context, nodes=sorted(found, key=lambda n: n.node))


def matched(labels: Mapping[str, str], catalog: Mapping[str, GpuK8s]) -> str | None:
    """The catalog accelerator whose product label the node carries, the one agreeing on
    most of its other labels (memory, device id) where several do; None when none does."""
    best: tuple[int, str] | None = None
    for gpu_id, k8s in catalog.items():
        product = next((key for key in PRODUCT_LABELS if key in k8s.node_labels), None)
        if product is None or labels.get(product) != k8s.node_labels[product]:
            continue
        shared = [key for key in k8s.node_labels if key in labels]
        if any(labels[key] != k8s.node_labels[key] for key in shared):
            continue
        if best is None or len(shared) > best[0]:
            best = (len(shared), gpu_id)
    return best[1] if best else None


def _node_gpus(
    node: dict[str, Any], requested: Mapping[str, int], catalog: Mapping[str, GpuK8s]
) -> NodeGpus | None:
    allocatable = node.get("status", {}).get("allocatable", {})
    resource = next((r for r in GPU_RESOURCES if _count(allocatable.get(r)) > 0), None)
    mig = {
        name.removeprefix(MIG_PREFIX): _count(value)
        for name, value in allocatable.items()
        if name.startswith(MIG_PREFIX) and _count(value) > 0
    }
    if resource is None and not mig:
        return None
    labels: dict[str, str] = node.get("metadata", {}).get("labels") or {}
    product = next((labels[key] for key in PRODUCT_LABELS if key in labels), "no product label")
    spec = node.get("spec", {})
    return NodeGpus(
        node=_name(node),
        gpu_id=matched(labels, catalog),
        product=product,
        resource=resource or "nvidia.com/gpu",
        allocatable=_count(allocatable.get(resource)) if resource else 0,
        requested=requested.get(resource, 0) if resource else 0,
        schedulable=not spec.get("unschedulable", False),
        taints=[_taint(t) for t in spec.get("taints") or []],
        mig=mig,
    )


def _requested(pods: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Node -> resource -> requested by its pods: each pod asks the larger of its containers'
    sum and its largest init container (init containers run one at a time, before)."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod in pods:
        spec = pod.get("spec", {})
        node = spec.get("nodeName")
        if not node:
            continue  # not scheduled yet: it holds nothing
        for resource in GPU_RESOURCES:
            running = sum(_asks(c, resource) for c in spec.get("containers") or [])
            first = max((_asks(c, resource) for c in spec.get("initContainers") or []), default=0)
            found[node][resource] += max(running, first)
    return found


def _asks(container: dict[str, Any], resource: str) -> int:
    resources = container.get("resources") or {}
    # Extended resources may give limits alone: requests then default to them.
    for part in ("requests", "limits"):
        value = (resources.get(part) or {}).get(resource)
        if value is not None:
            return _count(value)
    return 0


def _items(api_client: client.ApiClient, path: str, what: str) -> list[dict[str, Any]]:
    from deploy.cluster import call

    status, answer = call(api_client, "GET", path)
    if status == 403:
        raise ClusterError(
            f"the cluster refuses to list {what}: the inventory needs get and list on nodes "
            "and pods across namespaces (a ClusterRole)"
        )
    if status >= 300:
        raise ClusterError(f"listing {what} answered {status}: {answer.get('message', '')}")
    items: list[dict[str, Any]] = answer.get("items") or []
    return items


def _count(value: Any) -> int:
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0  # a device count is a whole number; anything else is not a GPU count


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def _taint(taint: dict[str, Any]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


class ClusterReader:
    """The GPUs of the cluster sessions deploy to, for planning: read at most every
    `ttl_s` seconds (a chat turn must not wait on the API server each time); None without a
    cluster target, or when it cannot be read (planning then goes on as without one)."""

    def __init__(self, settings: Settings, ttl_s: float = 30.0) -> None:
        self._settings, self._ttl_s = settings, ttl_s
        self._read: tuple[float, ClusterGpus | None] | None = None

    def __call__(self, catalog: Mapping[str, GpuK8s]) -> ClusterGpus | None:
        target = deploy_target(self._settings)
        if target.kind != "cluster":
            return None
        now = time.monotonic()
        if self._read is not None and now - self._read[0] < self._ttl_s:
            return self._read[1]
        found: ClusterGpus | None
        try:
            found = inventory(target.context, catalog).gpus()
        except ClusterError as error:
            log.warning("planning without the cluster's GPUs: %s", error)
            found = None
        self._read = (now, found)
        return found
