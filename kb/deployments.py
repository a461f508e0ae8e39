"""Deployments Preflight made, their revisions (the manifests each time) and an audit trail.

A revision is immutable: rolling back moves the deployment's `current_revision` pointer to an
older revision instead of rewriting history, so the trail always shows what ran when.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from sqlalchemy import JSON, String, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

DeploymentStatus = Literal[
    "applied", "failed", "ready", "not_ready", "rolled_back", "deleted", "written"
]
AuditAction = Literal["deploy", "ready", "not_ready", "rollback", "delete"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Deployment(SQLModel, table=True):
    """One named serving deployment in one place (a cluster namespace or a GitOps folder)."""

    __tablename__ = "deployment"
    id: str = Field(primary_key=True)
    name: str
    namespace: str
    target: str
    """`cluster:<context>` or `gitops:<folder>`."""
    status: DeploymentStatus = Field(sa_type=String)
    current_revision: int | None = None
    """The revision that runs now; None once everything was deleted."""
    created_at: dt.datetime = Field(default_factory=_now)
    owner: str | None = Field(default=None, index=True)
    """Who requested it (an API user); None for deployments made from the command line."""


class DeploymentRevision(SQLModel, table=True):
    """The manifests applied at one point, and the revision that ran before them."""

    __tablename__ = "deployment_revision"
    __table_args__ = (UniqueConstraint("deployment_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(foreign_key="deployment.id", index=True)
    number: int = Field(ge=1)
    manifests: list[dict[str, Any]] = Field(sa_type=JSON)
    applied_at: dt.datetime = Field(default_factory=_now)
    previous_number: int | None = None


class AuditEvent(SQLModel, table=True):
    """Who did what to a deployment, and when."""

    __tablename__ = "deployment_audit_event"
    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(foreign_key="deployment.id", index=True)
    at: dt.datetime = Field(default_factory=_now)
    action: AuditAction = Field(sa_type=String)
    actor: str
    detail: str = ""


class UnknownDeploymentError(LookupError):
    """No deployment has that id."""


def find_or_create_deployment(
    *, session: Session, name: str, namespace: str, target: str, owner: str | None = None
) -> Deployment:
    """The deployment of `name` in `namespace` at `target`, created on first use, so that
    deploying the same thing again adds a revision instead of a second deployment. `owner`
    is set on creation only: a redeploy by someone else does not take it over."""
    found = find_deployment(session=session, name=name, namespace=namespace, target=target)
    if found is not None:
        return found
    deployment = Deployment(
        id=uuid.uuid4().hex[:12],
        name=name,
        namespace=namespace,
        target=target,
        status="applied",
        owner=owner,
    )
    session.add(deployment)
    session.flush()
    return deployment


def find_deployment(
    *, session: Session, name: str, namespace: str, target: str
) -> Deployment | None:
    """The deployment of `name` in `namespace` at `target` (None: never deployed there)."""
    return session.exec(
        select(Deployment).where(
            Deployment.name == name, Deployment.namespace == namespace, Deployment.target == target
        )
    ).first()


def read_deployment(*, session: Session, deployment_id: str) -> Deployment:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise UnknownDeploymentError(f"no deployment with id {deployment_id!r}")
    return deployment


def list_deployments(*, session: Session, owner: str | None = None) -> list[Deployment]:
    """Every deployment, oldest first; only `owner`'s when one is named."""
    query = select(Deployment)
    if owner is not None:
        query = query.where(Deployment.owner == owner)
    return list(session.exec(query.order_by(col(Deployment.created_at))).all())


def revisions(*, session: Session, deployment_id: str) -> list[DeploymentRevision]:
    query = select(DeploymentRevision).where(DeploymentRevision.deployment_id == deployment_id)
    return list(session.exec(query.order_by(col(DeploymentRevision.number))).all())


def read_revision(*, session: Session, deployment_id: str, number: int) -> DeploymentRevision:
    found = session.exec(
        select(DeploymentRevision).where(
            DeploymentRevision.deployment_id == deployment_id, DeploymentRevision.number == number
        )
    ).first()
    if found is None:
        raise UnknownDeploymentError(f"deployment {deployment_id!r} has no revision {number}")
    return found


def current_revision(*, session: Session, deployment_id: str) -> DeploymentRevision | None:
    deployment = read_deployment(session=session, deployment_id=deployment_id)
    if deployment.current_revision is None:
        return None
    return read_revision(
        session=session, deployment_id=deployment_id, number=deployment.current_revision
    )


def previous_revision(*, session: Session, deployment_id: str) -> DeploymentRevision | None:
    """The revision that ran before the current one (what a rollback restores)."""
    current = current_revision(session=session, deployment_id=deployment_id)
    if current is None or current.previous_number is None:
        return None
    return read_revision(
        session=session, deployment_id=deployment_id, number=current.previous_number
    )


def record_revision(
    *, session: Session, deployment_id: str, manifests: list[dict[str, Any]]
) -> tuple[DeploymentRevision, bool]:
    """Make `manifests` the current revision; (revision, whether it is new).

    The same manifests as the current revision add nothing, so deploying twice is a no-op."""
    deployment = read_deployment(session=session, deployment_id=deployment_id)
    current = current_revision(session=session, deployment_id=deployment_id)
    if current is not None and current.manifests == manifests:
        return current, False
    numbers = [r.number for r in revisions(session=session, deployment_id=deployment_id)]
    revision = DeploymentRevision(
        deployment_id=deployment_id,
        number=max(numbers, default=0) + 1,
        manifests=manifests,
        previous_number=deployment.current_revision,
    )
    session.add(revision)
    deployment.current_revision = revision.number
    session.add(deployment)
    session.flush()
    return revision, True


def set_state(
    *,
    session: Session,
    deployment_id: str,
    status: DeploymentStatus,
    current_revision: int | None,
) -> Deployment:
    deployment = read_deployment(session=session, deployment_id=deployment_id)
    deployment.status = status
    deployment.current_revision = current_revision
    session.add(deployment)
    session.flush()
    return deployment


def audit(
    *, session: Session, deployment_id: str, action: AuditAction, actor: str, detail: str = ""
) -> AuditEvent:
    event = AuditEvent(deployment_id=deployment_id, action=action, actor=actor, detail=detail)
    session.add(event)
    session.flush()
    return event


def audit_trail(*, session: Session, deployment_id: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.deployment_id == deployment_id)
    return list(session.exec(query.order_by(col(AuditEvent.at), col(AuditEvent.id))).all())
