"""The FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Literal

from fastapi import FastAPI, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from api import (
    cluster_routes,
    deployment_routes,
    insights_routes,
    model_routes,
    plan_routes,
    session_routes,
    web_routes,
)
from api.errors import allowed_methods
from api.identity import authenticator
from api.sessions import SessionWorkflows
from deploy.inventory import ClusterReader
from kb.db import get_engine
from planner.service import PlanningService
from settings import Settings, get_settings
from workflows.client import connect


class TemporalConnection:
    """The app's one Temporal client, connected on first use (the API may start before
    Temporal does) and dropped after a failed health check, so the next use reconnects."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        async with self._lock:  # concurrent first requests share one connection
            if self._client is None:
                self._client = await connect(self._settings)
            return self._client

    def reset(self) -> None:
        self._client = None


class ComponentHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: ComponentHealth
    temporal: ComponentHealth


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    temporal = TemporalConnection(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        temporal.reset()

    app = FastAPI(
        title="Preflight",
        version="0.1.0",
        summary="Plan, deploy and watch LLM serving on Kubernetes (KServe + vLLM).",
        lifespan=lifespan,
        docs_url=None,  # served by web_routes from local files: FastAPI's loads from a CDN
        redoc_url=None,
    )
    # Every route but /health and /metrics asks for a caller (`api.identity.current_caller`).
    app.state.settings = settings
    app.state.authenticate = authenticator(settings)
    app.state.planning = PlanningService(settings, ClusterReader(settings))
    app.include_router(plan_routes.router)
    app.include_router(deployment_routes.router)
    app.include_router(model_routes.router)
    app.state.sessions = SessionWorkflows(settings, temporal.get)
    app.include_router(session_routes.router)
    app.include_router(cluster_routes.router)
    app.include_router(insights_routes.router)
    web_routes.mount(app, settings)
    app.state.temporal = temporal

    @app.exception_handler(StarletteHTTPException)
    async def refusal(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            error.headers = {
                **(error.headers or {}),
                "Allow": allowed_methods(app, request.url.path),
            }
        return await http_exception_handler(request, error)

    @app.get("/health", tags=["operations"], summary="Health of the API's dependencies")
    async def health() -> Health:
        """Whether the API can reach its database and the Temporal server. Needs no
        credentials (load balancers and `make run` poll it)."""
        try:
            with get_engine(settings.resolved_database_url).connect() as connection:
                connection.execute(text("SELECT 1"))
            database = ComponentHealth(status="ok")
        except SQLAlchemyError as error:
            database = ComponentHealth(status="unavailable", detail=type(error).__name__)
        try:
            await (await temporal.get()).service_client.check_health(timeout=timedelta(seconds=2))
        except Exception as error:  # any failure to reach Temporal is reported, not raised
            temporal.reset()
            reached = ComponentHealth(status="unavailable", detail=type(error).__name__)
        else:
            reached = ComponentHealth(status="ok")
        healthy = database.status == reached.status == "ok"
        return Health(status="ok" if healthy else "degraded", database=database, temporal=reached)

    return app
