"""The deploy journey and its compensation, recorded in the knowledge base.

Deploy to a cluster: permission check → server-side apply, dry run of every manifest first →
the real apply → record the revision (also when the real apply fails halfway, so a rollback
can undo what got through) → wait until Ready. Deploy to GitOps: write the folder
(and commit) → record the revision. Rollback restores the revision that ran before, or
deletes what the deployment created when there was none; every step lands in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from deploy import cluster, gitops, kubeconfig
from deploy.targets import cluster_label, gitops_label
from kb import deployments
from kb.db import session_scope
from manifests.kinds import object_ref, serving_object
from workflows.payloads import DeployResult, RollbackResult


@dataclass
class ClusterTarget:
    api_client: client.ApiClient
    context: str
    """The kubeconfig context by name (or `in-cluster`), so a rollback reaches the same one."""

    @property
    def label(self) -> str:
        return cluster_label(self.context)


@dataclass
class GitOpsTarget:
    folder: Path
    commit: bool = False

    @property
    def label(self) -> str:
        return gitops_label(self.folder)


class RollbackError(RuntimeError):
    """Nothing to roll back, or the deployment's target is not understood."""


def deploy(
    manifests: list[dict[str, Any]],
    *,
    name: str,
    namespace: str,
    target: ClusterTarget | GitOpsTarget,
    actor: str,
    dry_run: bool = False,
    wait_timeout_s: float = 900.0,
    poll_interval_s: float = 5.0,
    on_progress: Callable[[str], None] = lambda _: None,
    database_url: str | None = None,
    owner: str | None = None,
) -> DeployResult:
    """Deploy `manifests` as deployment `name` in `namespace`; see the module docstring.
    `owner` (who requested it) is recorded when the deployment is first created."""
    for manifest in manifests:
        object_ref(manifest)  # refuse an unknown kind before anything leaves Preflight
    result = DeployResult(target=target.label)
    if isinstance(target, GitOpsTarget):
        if dry_run:
            result.files = gitops.preview(manifests, target.folder)
            return result
        result.files = gitops.write(manifests, target.folder, commit=target.commit)
        summary = f"{len(result.files.changed)} files changed"
        if result.files.commit:
            summary += f", commit {result.files.commit[:12]}"
        _record(result, manifests, name, namespace, actor, "written", summary, database_url, owner)
        return result

    missing = cluster.check_permissions(target.api_client, manifests)
    if missing:
        raise cluster.PermissionMissing(missing)
    result.applied = cluster.apply(target.api_client, manifests, dry_run=True)
    if dry_run:
        return result
    try:
        result.applied = cluster.apply(target.api_client, manifests, dry_run=False)
    except cluster.ApplyFailed as error:
        # Some objects may be live already: record them, so a rollback can undo them.
        _record(
            result, manifests, name, namespace, actor, "failed", str(error), database_url, owner
        )
        error.deployment_id = result.deployment_id
        raise
    counts = {a: sum(o.action == a for o in result.applied) for a in ("created", "configured")}
    unchanged = len(result.applied) - sum(counts.values())
    summary = (
        f"{counts['created']} created, {counts['configured']} configured, {unchanged} unchanged"
    )
    _record(result, manifests, name, namespace, actor, "applied", summary, database_url, owner)
    service = serving_object(manifests)
    if service is None or wait_timeout_s <= 0 or result.deployment_id is None:
        return result
    try:
        result.ready = cluster.wait_ready(
            target.api_client, object_ref(service), wait_timeout_s, on_progress, poll_interval_s
        )
    except cluster.NotReady as error:
        mark(result.deployment_id, "not_ready", actor, str(error), database_url)
        error.deployment_id = result.deployment_id
        raise
    mark(result.deployment_id, "ready", actor, result.ready.url or "", database_url)
    return result


def rollback(
    deployment_id: str,
    *,
    actor: str,
    connect: Callable[[str], client.ApiClient] = kubeconfig.connect,
    database_url: str | None = None,
) -> RollbackResult:
    """Restore the revision that ran before the current one (re-apply its manifests, delete
    objects only the current one had), or delete everything when there is no earlier one."""
    with session_scope(database_url) as session:
        deployment = deployments.read_deployment(session=session, deployment_id=deployment_id)
        current = deployments.current_revision(session=session, deployment_id=deployment_id)
        previous = deployments.previous_revision(session=session, deployment_id=deployment_id)
    if current is None:
        raise RollbackError(f"deployment {deployment_id} has nothing deployed to roll back")
    kind, _, where = deployment.target.partition(":")
    restored = previous.manifests if previous is not None else []
    if kind == "cluster":
        api_client = connect(where)
        missing = cluster.check_permissions(api_client, current.manifests + restored)
        if missing:
            raise cluster.PermissionMissing(missing)
        if restored:
            cluster.apply(api_client, restored, dry_run=True)
            cluster.apply(api_client, restored, dry_run=False)
        kept = {object_ref(m) for m in restored}
        gone = cluster.delete(
            api_client, [m for m in current.manifests if object_ref(m) not in kept]
        )
        detail = f"deleted {len(gone)} objects"
    elif kind == "gitops":
        folder = Path(where)
        commit = gitops.is_committed(folder)
        files = (
            gitops.write(restored, folder, commit) if restored else gitops.remove(folder, commit)
        )
        detail = f"{len(files.changed)} files changed"
    else:
        raise RollbackError(f"deployment {deployment_id} has an unknown target {kind!r}")

    action: deployments.AuditAction = "rollback" if previous is not None else "delete"
    number = previous.number if previous is not None else None
    if previous is not None:
        detail = f"revision {current.number} -> {previous.number}: re-applied, {detail}"
    with session_scope(database_url) as session:
        deployments.set_state(
            session=session,
            deployment_id=deployment_id,
            status="rolled_back" if previous is not None else "deleted",
            current_revision=number,
        )
        deployments.audit(
            session=session, deployment_id=deployment_id, action=action, actor=actor, detail=detail
        )
    return RollbackResult(
        deployment_id=deployment_id, action=action, restored_revision=number, detail=detail
    )


def _record(
    result: DeployResult,
    manifests: list[dict[str, Any]],
    name: str,
    namespace: str,
    actor: str,
    status: deployments.DeploymentStatus,
    summary: str,
    database_url: str | None,
    owner: str | None,
) -> None:
    """Record the deploy in its own transaction, so it is kept even if waiting fails."""
    with session_scope(database_url) as session:
        deployment = deployments.find_or_create_deployment(
            session=session, name=name, namespace=namespace, target=result.target, owner=owner
        )
        revision, new = deployments.record_revision(
            session=session, deployment_id=deployment.id, manifests=manifests
        )
        deployments.set_state(
            session=session,
            deployment_id=deployment.id,
            status=status,
            current_revision=revision.number,
        )
        detail = f"revision {revision.number}{'' if new else ' (unchanged)'}: {summary}"
        deployments.audit(
            session=session,
            deployment_id=deployment.id,
            action="deploy",
            actor=actor,
            detail=detail,
        )
        result.deployment_id, result.revision, result.new_revision = (
            deployment.id,
            revision.number,
            new,
        )


def mark(
    deployment_id: str,
    status: deployments.DeploymentStatus,
    actor: str,
    detail: str,
    database_url: str | None,
) -> None:
    with session_scope(database_url) as session:
        deployment = deployments.read_deployment(session=session, deployment_id=deployment_id)
        deployments.set_state(
            session=session,
            deployment_id=deployment_id,
            status=status,
            current_revision=deployment.current_revision,
        )
        action: deployments.AuditAction = "ready" if status == "ready" else "not_ready"
        deployments.audit(
            session=session, deployment_id=deployment_id, action=action, actor=actor, detail=detail
        )
