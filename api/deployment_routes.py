"""What Preflight deployed: `GET /deployments`, one deployment's history, and its SLO
checks. A requester sees the deployments they own; an approver or admin sees all."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlmodel import Session

from api.dependencies import AppSettings
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from kb import deployments
from kb.db import session_scope
from kb.slo_checks import SloCheckStatus, slo_checks
from manifests.kinds import object_ref

Reader = Annotated[Caller, Depends(require("requester", "approver"))]


class DeploymentView(BaseModel):
    id: str
    name: str
    namespace: str
    target: str
    """`cluster:<context>` or `gitops:<folder>`."""
    status: deployments.DeploymentStatus
    current_revision: int | None
    """The revision running now; null once everything was deleted."""
    owner: str | None
    """Who requested it; null for deployments made from the command line."""
    created_at: dt.datetime


class RevisionView(BaseModel):
    number: int
    applied_at: dt.datetime
    previous_number: int | None
    """The revision that ran before this one (what a rollback restores)."""
    objects: list[str]
    """`Kind namespace/name` of each manifest."""


class AuditView(BaseModel):
    at: dt.datetime
    actor: str
    action: deployments.AuditAction
    detail: str


class DeploymentDetail(BaseModel):
    deployment: DeploymentView
    revisions: list[RevisionView]
    audit: list[AuditView]


class SloCheckView(BaseModel):
    at: dt.datetime
    status: SloCheckStatus
    detail: str
    measurements: dict[str, float]
    """Metric -> observed value; empty when nothing was measured."""
    targets: dict[str, float]
    predicted: dict[str, float] | None
    """What the planner predicts at the load observed, metric by metric (None when there
    was no traffic to compare at): the dashboard's predicted against actual."""


class SloReport(BaseModel):
    deployment_id: str
    targets: dict[str, float]
    """The SLO targets of the latest check (empty before the first)."""
    source: Literal["measured", "none"]
    """`measured` when at least one check read real metrics; `none` otherwise, and then
    there are no numbers at all (nothing is estimated in their place)."""
    note: str
    checks: list[SloCheckView]
    """Oldest first."""


def _view(deployment: deployments.Deployment) -> DeploymentView:
    return DeploymentView.model_validate(deployment, from_attributes=True)


def _objects(revision: deployments.DeploymentRevision) -> list[str]:
    return [str(object_ref(m)) for m in revision.manifests]


router = APIRouter(prefix="/deployments", tags=["deployments"], route_class=ReadableValidation)


def visible(session: Session, caller: Caller, deployment_id: str) -> deployments.Deployment:
    """The deployment if the caller may see it; 404 for someone else's as for a missing
    one, so a requester cannot probe which ids exist."""
    missing = HTTPException(status.HTTP_404_NOT_FOUND, f"no deployment {deployment_id!r}")
    try:
        found = deployments.read_deployment(session=session, deployment_id=deployment_id)
    except deployments.UnknownDeploymentError:
        raise missing from None
    if not caller.can("approver") and found.owner != caller.user:
        raise missing
    return found


@router.get(
    "",
    summary="List deployments",
    response_description="Deployments, oldest first.",
    responses=problems(401, 403, 503),
)
def list_all(settings: AppSettings, caller: Reader) -> list[DeploymentView]:
    """The deployments the caller may see: their own for a requester, every one for an
    approver or admin."""
    owner = None if caller.can("approver") else caller.user
    with session_scope(settings.resolved_database_url) as session:
        return [_view(d) for d in deployments.list_deployments(session=session, owner=owner)]


@router.get(
    "/{deployment_id}",
    summary="One deployment with its revisions and audit trail",
    responses=problems(401, 403, 404, 503),
)
def read_one(settings: AppSettings, deployment_id: str, caller: Reader) -> DeploymentDetail:
    """The deployment, every revision (what was applied, and what ran before it) and
    who did what to it, when."""
    with session_scope(settings.resolved_database_url) as session:
        found = visible(session, caller, deployment_id)
        history = deployments.revisions(session=session, deployment_id=found.id)
        trail = deployments.audit_trail(session=session, deployment_id=found.id)
        return DeploymentDetail(
            deployment=_view(found),
            revisions=[
                RevisionView(
                    number=r.number,
                    applied_at=r.applied_at,
                    previous_number=r.previous_number,
                    objects=_objects(r),
                )
                for r in history
            ],
            audit=[AuditView.model_validate(e, from_attributes=True) for e in trail],
        )


@router.get(
    "/{deployment_id}/slo",
    summary="SLO targets and the checks of a deployment over time",
    responses=problems(401, 403, 404, 422, 503),
)
def read_slo(
    settings: AppSettings,
    deployment_id: str,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recent checks.")] = 100,
) -> SloReport:
    """What the monitoring saw at each check: the measured latencies against the
    targets, `breach` when one was missed. Without a metrics source the checks say
    `no_source` and carry no numbers; `source` is then `none`."""
    with session_scope(settings.resolved_database_url) as session:
        found = visible(session, caller, deployment_id)
        checks = slo_checks(session=session, deployment_id=found.id, limit=limit)
    views = [SloCheckView.model_validate(c, from_attributes=True) for c in checks]
    measured = any(c.measurements for c in views)
    if not views:
        note = "no SLO check has run yet: there are no measurements"
    elif not measured:
        note = "no metrics source: the checks found nothing to measure, so no numbers"
    else:
        note = f"{sum(bool(c.measurements) for c in views)} of {len(views)} checks measured"
    return SloReport(
        deployment_id=found.id,
        targets=views[-1].targets if views else {},
        source="measured" if measured else "none",
        note=note,
        checks=views,
    )
