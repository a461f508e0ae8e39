"""What a route depends on, one home: the caller (`api.identity`), and the app's one
planning service and Temporal client, made by `api.app.create_app`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from planner.service import PlanningService


def planning_service(request: Request) -> PlanningService:
    service: PlanningService = request.app.state.planning
    return service


Planning = Annotated[PlanningService, Depends(planning_service)]
