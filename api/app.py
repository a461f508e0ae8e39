"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from kb.db import get_engine
from settings import Settings, get_settings


class ComponentHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: ComponentHealth
    temporal: ComponentHealth


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.temporal = None
        yield

    app = FastAPI(
        title="Preflight",
        version="0.1.0",
        summary="Plan, deploy and watch LLM serving on Kubernetes (KServe + vLLM).",
        lifespan=lifespan,
    )

    async def temporal_client() -> Client:
        if app.state.temporal is None:
            app.state.temporal = await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace
            )
        client: Client = app.state.temporal
        return client

    @app.get("/health", tags=["operations"])
    async def health() -> Health:
        """Whether the API can reach its database and the Temporal server."""
        try:
            with get_engine(settings.resolved_database_url).connect() as connection:
                connection.execute(text("SELECT 1"))
            database = ComponentHealth(status="ok")
        except SQLAlchemyError as error:
            database = ComponentHealth(status="unavailable", detail=type(error).__name__)
        try:
            await (await temporal_client()).service_client.check_health(
                timeout=timedelta(seconds=2)
            )
            temporal = ComponentHealth(status="ok")
        except Exception as error:  # any failure to reach Temporal is reported, not raised
            app.state.temporal = None
            temporal = ComponentHealth(status="unavailable", detail=type(error).__name__)
        healthy = database.status == temporal.status == "ok"
        return Health(status="ok" if healthy else "degraded", database=database, temporal=temporal)

    return app
