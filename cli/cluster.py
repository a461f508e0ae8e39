"""`preflight deploy | rollback | deployments`: put rendered manifests on a cluster or in a
GitOps folder, record them, and undo the last deploy."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cli.console import fail
from cli.deploy import checked_manifests
from deploy import cluster, gitops, kubeconfig, rollout
from deploy.targets import ClusterError
from kb import deployments
from kb.db import session_scope
from kb.migrate import upgrade
from manifests.kinds import (
    APPLY_ORDER,
    SERVING_KINDS,
    UnsupportedManifestError,
    object_ref,
    serving_object,
)
from settings import get_settings
from workflows.payloads import DeployResult


def deploy_command(
    manifests: Annotated[
        Path | None,
        typer.Option(help="Folder of rendered YAML manifests (what `preflight render -o` writes)."),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(help="A deployment plan (JSON) to render, validate and deploy."),
    ] = None,
    gitops_dir: Annotated[
        Path | None,
        typer.Option("--gitops", help="Write to this GitOps folder instead of a cluster."),
    ] = None,
    commit: Annotated[bool, typer.Option(help="Commit the GitOps folder with git.")] = False,
    context: Annotated[str | None, typer.Option(help="kubeconfig context to deploy to.")] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace for manifests that name none.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Server-side dry run only; records nothing.")
    ] = False,
    wait_timeout_s: Annotated[
        float, typer.Option(help="Seconds to wait for Ready (0: do not wait).", min=0)
    ] = 900.0,
) -> None:
    """Deploy rendered manifests: to a cluster (permission check, dry run, apply, wait), or
    to a GitOps folder, the default when no cluster is configured."""
    if (plan is None) == (manifests is None):
        raise fail("say what to deploy: --plan PLAN or --manifests DIR (one of them)")
    try:
        if plan is not None:
            loaded = checked_manifests(plan)[1]
        else:
            assert manifests is not None
            loaded = read_manifests(manifests, namespace)
        name, ns = deployment_name(loaded)
        target = _target(gitops_dir, commit, context, name, ns)
        if plan is not None and isinstance(target, rollout.ClusterTarget):
            # Render what this cluster serves: LLMInferenceService where it can.
            api = cluster.serving_api(target.api_client)
            loaded = checked_manifests(plan, api)[1]
            api_version, kind = SERVING_KINDS[api]
            typer.echo(f"the cluster serves {kind} ({api_version}): deploying one")
    except (OSError, yaml.YAMLError, UnsupportedManifestError, ClusterError) as error:
        raise fail(str(error)) from None
    upgrade()
    try:
        result = rollout.deploy(
            loaded,
            name=name,
            namespace=ns,
            target=target,
            actor=_actor(),
            dry_run=dry_run,
            wait_timeout_s=wait_timeout_s,
            on_progress=lambda line: typer.echo(f"  waiting: {line}"),
        )
    except ClusterError as error:
        hint = f"\n`preflight rollback {error.deployment_id}` undoes this deploy"
        raise fail(f"{error}{hint if error.deployment_id else ''}") from None
    except gitops.GitOpsError as error:
        raise fail(str(error)) from None
    _report(result, dry_run)


def rollback_command(
    deployment_id: Annotated[str, typer.Argument(help="The id `preflight deploy` printed.")],
) -> None:
    """Restore the previous revision of a deployment, or delete it if it had none."""
    upgrade()
    try:
        result = rollout.rollback(deployment_id, actor=_actor())
    except (
        deployments.UnknownDeploymentError,
        rollout.RollbackError,
        ClusterError,
        gitops.GitOpsError,
    ) as error:
        raise fail(str(error)) from None
    typer.echo(f"{result.action} of deployment {result.deployment_id}: {result.detail}")


def deployments_command(
    deployment_id: Annotated[
        str | None, typer.Argument(help="Show one deployment's revisions and audit trail.")
    ] = None,
) -> None:
    """The deployments Preflight made, or one deployment's history."""
    upgrade()
    with session_scope() as session:
        if deployment_id is None:
            for d in deployments.list_deployments(session=session):
                typer.echo(
                    f"{d.id}  {d.namespace}/{d.name}  {d.target}  {d.status}  "
                    f"revision {d.current_revision}"
                )
            return
        try:
            deployments.read_deployment(session=session, deployment_id=deployment_id)
        except deployments.UnknownDeploymentError as error:
            raise fail(str(error)) from None
        for r in deployments.revisions(session=session, deployment_id=deployment_id):
            typer.echo(
                f"revision {r.number}  {r.applied_at:%Y-%m-%d %H:%M:%S}  "
                f"{len(r.manifests)} manifests  previous {r.previous_number}"
            )
        for e in deployments.audit_trail(session=session, deployment_id=deployment_id):
            typer.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action}  {e.detail}")


def read_manifests(folder: Path, namespace: str | None) -> list[dict[str, Any]]:
    """Every manifest in the folder's YAML files (kustomization.yaml aside), in apply order;
    `namespace` fills in a missing one and must agree with any that is set."""
    if not folder.is_dir():
        raise OSError(f"{folder} is not a folder")
    loaded: list[dict[str, Any]] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        if path.name == gitops.KUSTOMIZATION:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            if not isinstance(document, dict):
                raise UnsupportedManifestError(f"{path.name}: a document is not a mapping")
            metadata = document.setdefault("metadata", {})
            if namespace is not None:
                found = metadata.setdefault("namespace", namespace)
                if found != namespace:
                    raise UnsupportedManifestError(
                        f"{path.name}: namespace {found!r} differs from --namespace {namespace!r}"
                    )
            object_ref(document)
            loaded.append(document)
    if not loaded:
        raise UnsupportedManifestError(f"no manifests in {folder}")
    return sorted(loaded, key=lambda m: APPLY_ORDER.get(m["kind"], 90))


def deployment_name(manifests: list[dict[str, Any]]) -> tuple[str, str]:
    """The deployment is named for what serves its model (else its first object)."""
    main = serving_object(manifests) or manifests[0]
    ref = object_ref(main)
    return ref.name, ref.namespace


def _target(
    gitops_dir: Path | None, commit: bool, context: str | None, name: str, namespace: str
) -> rollout.ClusterTarget | rollout.GitOpsTarget:
    if gitops_dir is not None:
        return rollout.GitOpsTarget(folder=gitops_dir, commit=commit)
    if context is not None or kubeconfig.cluster_configured():
        chosen = kubeconfig.active_context(context)
        return rollout.ClusterTarget(api_client=kubeconfig.connect(chosen), context=chosen)
    folder = get_settings().state_dir / "gitops" / namespace / name
    typer.echo(f"no cluster configured: writing GitOps manifests to {folder}")
    return rollout.GitOpsTarget(folder=folder, commit=commit)


def _report(result: DeployResult, dry_run: bool) -> None:
    verb = "would be" if dry_run else "were"
    for applied in result.applied:
        typer.echo(f"{applied.action:10} {applied.kind} {applied.namespace}/{applied.name}")
    if result.files is not None:
        typer.echo(f"{len(result.files.changed)} files {verb} changed in {result.files.folder}")
        for name in result.files.changed:
            typer.echo(f"  {name}")
        if result.files.commit:
            typer.echo(f"commit {result.files.commit}")
    if result.ready is not None:
        typer.echo(f"ready after {result.ready.waited_s:.0f} s: {result.ready.url or ''}")
    if result.deployment_id is not None:
        typer.echo(
            f"deployment {result.deployment_id} revision {result.revision} ({result.target})"
        )


def _actor() -> str:
    """Who to name in the audit trail: the operating-system user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
