"""The cluster this server deploys to, as planning needs it: `GET /cluster/gpus`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from api.dependencies import AppSettings, Planning
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from deploy.inventory import Inventory, NoClusterError, inventory
from deploy.targets import ClusterError, deploy_target
from kb.repository import NotLoadedError
from planner.service import PlanningService
from settings import Settings

router = APIRouter(prefix="/cluster", tags=["cluster"], route_class=ReadableValidation)

NOT_A_CLUSTER = (
    "no cluster configured: this server deploys to a GitOps folder; set "
    "PREFLIGHT_KUBE_CONTEXT (or PREFLIGHT_DEPLOY_MODE=cluster) to deploy to, and plan on, a "
    "cluster"
)


def read(settings: Settings, planning: PlanningService) -> Inventory:
    try:
        catalog = planning.assistant().gpu_k8s
    except NotLoadedError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
    target = deploy_target(settings)
    if target.kind != "cluster":
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_A_CLUSTER)
    try:
        return inventory(target.context, catalog)
    except NoClusterError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except ClusterError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(error)) from None


@router.get(
    "/gpus",
    summary="The cluster's GPUs, node by node, and how many are free",
    response_description="Each node's accelerators and a summary per kind.",
    responses=problems(401, 403, 404, 502, 503),
)
async def gpus_route(
    settings: AppSettings,
    planning: Planning,
    _caller: Annotated[Caller, Depends(require("requester", "approver"))],
) -> Inventory:
    """The accelerators of the cluster this server deploys to: product (from the GPU
    operators' node labels) matched to the catalog (an unknown product is named by its
    label), allocatable, requested by unfinished pods, and free per node; taints, cordons and
    MIG slices. 404 when the server deploys to a GitOps folder. Needs the requester role."""
    return await run_in_threadpool(read, settings, planning)
