"""What a cluster's GPUs allow, in the planner's terms: which catalog accelerators it has and
how many are free on each node, which GPUs a recommendation may use (a policy), and whether
a deployment's replicas fit now, each on one node. Read from the cluster by
`deploy.inventory`; nothing here talks to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel

from planner.deployment_plan import GpuK8s

ClusterPolicy = Literal["free", "present", "any"]
"""Which GPUs recommendations use with a cluster known: only kinds with a free GPU now, kinds
the cluster has, or any (options on kinds it lacks say so)."""


class Room(BaseModel):
    """Whether `needed` replicas of `tp` GPUs each, every replica on one node, fit the free
    GPUs of one kind now."""

    gpu_id: str
    tp: int
    needed: int
    fits: int
    """Replicas that fit: each node holds as many whole replicas as its free GPUs allow."""
    free_per_node: list[int]

    @property
    def enough(self) -> bool:
        return self.fits >= self.needed

    def sentence(self) -> str:
        shape = f"{self.needed} replica(s) of {self.tp} x {self.gpu_id}, each on one node"
        if not self.free_per_node:
            return f"{shape}: the cluster has no schedulable {self.gpu_id} node"
        free = ", ".join(str(n) for n in sorted(self.free_per_node, reverse=True))
        if self.enough:
            return f"{shape}: room for {self.fits} now (free per node: {free})"
        missing = (self.needed - self.fits) * self.tp
        return (
            f"{shape}: the cluster has room for {self.fits} now (free per node: {free}); "
            f"{missing} more free GPUs, {self.tp} to a node, are missing"
        )


class ClusterGpus(BaseModel):
    context: str
    free: dict[str, list[int]]
    """Catalog accelerator -> free GPUs on each of its schedulable nodes."""

    def room(self, gpu_id: str, tp: int, needed: int) -> Room:
        free = self.free.get(gpu_id, [])
        return Room(
            gpu_id=gpu_id, tp=tp, needed=needed, fits=sum(n // tp for n in free), free_per_node=free
        )

    def allowed(self, policy: ClusterPolicy) -> set[str] | None:
        """The accelerators recommendations may use (None: any)."""
        if policy == "any":
            return None
        return {g for g, nodes in self.free.items() if policy == "present" or sum(nodes) > 0}

    def summary(self) -> str:
        if not self.free:
            return f"cluster {self.context} has no GPU the catalog knows"
        kinds = sorted(self.free.items(), key=lambda kind: (-sum(kind[1]), kind[0]))
        return f"cluster {self.context} has free now: " + "; ".join(
            f"{sum(nodes)} x {gpu_id} (at most {max(nodes)} on one node)" for gpu_id, nodes in kinds
        )


ClusterGpusReader = Callable[[Mapping[str, GpuK8s]], ClusterGpus | None]
"""The target cluster's GPUs matched to the given catalog; None without one (`deploy.inventory`)."""
