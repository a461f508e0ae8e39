"""Where a deployment goes, and how the knowledge base records it, without the cluster
client: the API reads what runs at a target with no Kubernetes import."""

from __future__ import annotations

from pathlib import Path

from settings import Settings
from workflows.payloads import DeployTarget


class ClusterError(RuntimeError):
    """Something on the cluster side went wrong; the message is safe to show and log."""

    deployment_id: str | None = None
    """Set when the failure came after the deploy was recorded, so the caller can offer
    `preflight rollback` for what did reach the cluster."""


def cluster_label(context: str) -> str:
    """How a deployment records a cluster target: `cluster:<context>`."""
    return f"cluster:{context}"


def gitops_label(folder: Path) -> str:
    """How a deployment records a GitOps target: `gitops:<folder, resolved>`."""
    return f"gitops:{folder.resolve()}"


def recorded_target(target: DeployTarget) -> str:
    """The target as a deploy to it is recorded in the knowledge base (the folder resolved,
    the context by name), to find what runs there."""
    if target.kind == "gitops":
        if not target.folder:
            raise ValueError("a GitOps target needs a folder")
        return gitops_label(Path(target.folder))
    if target.context:
        return cluster_label(target.context)
    from deploy import kubeconfig  # the kubeconfig's current context: the client's import

    return cluster_label(kubeconfig.active_context())


def deploy_target(settings: Settings) -> DeployTarget:
    """Where sessions deploy, from the settings: the cluster when configured, else the GitOps
    folder. Callers never choose it, so nobody can point a deployment elsewhere."""
    mode = settings.deploy_mode
    if mode == "auto":
        mode = "cluster" if settings.kube_context else "gitops"
    if mode == "cluster":
        return DeployTarget(
            kind="cluster", context=settings.kube_context, endpoint=settings.smoke_endpoint
        )
    # Absolute: the worker resolves it, possibly in another working directory.
    folder = (settings.gitops_dir or settings.state_dir / "gitops").absolute()
    return DeployTarget(kind="gitops", folder=str(folder), endpoint=settings.smoke_endpoint)
