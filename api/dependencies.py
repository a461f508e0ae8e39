"""What a route depends on, one home: the caller (`api.identity`), and the app's one
planning service and way to the session workflows, made by `api.app.create_app`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.sessions import SessionWorkflows
from planner.service import PlanningService
from settings import Settings


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(app_settings)]


def planning_service(request: Request) -> PlanningService:
    service: PlanningService = request.app.state.planning
    return service


Planning = Annotated[PlanningService, Depends(planning_service)]


def session_workflows(request: Request) -> SessionWorkflows:
    sessions: SessionWorkflows = request.app.state.sessions
    return sessions


Sessions = Annotated[SessionWorkflows, Depends(session_workflows)]
