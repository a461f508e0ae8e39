"""The model catalog over HTTP: list it, and (admins) add a model of your own from its
config.json, the counterpart of `preflight kb add-model`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.dependencies import AppSettings
from api.errors import ReadableValidation, problems
from api.identity import Caller, require
from kb.checkpoints import Checkpoint, model_record
from kb.db import session_scope
from kb.model_config import ConfigError
from kb.records import ModelOrigin, Precision
from kb.repository import ModelExistsError, add_model
from kb.tables import Model
from planner.deployment_plan import MODEL_ID

MAX_CONFIG_KEYS = 500
"""A config.json has a few dozen keys (a few hundred with a layer list); more is not one."""


class ModelSummary(BaseModel):
    id: str
    display_name: str
    origin: ModelOrigin
    precision: Precision
    params_total_b: float
    params_active_b: float
    max_context_tokens: int
    weights_bytes: int | None
    """The checkpoint's size where known (else the planner estimates it from parameters)."""
    weights_source: str | None
    license: str
    tasks: list[str]


class AddModelRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "meta-llama/Llama-2-7b-hf",
                    "config": {
                        "model_type": "llama",
                        "hidden_size": 4096,
                        "intermediate_size": 11008,
                        "num_attention_heads": 32,
                        "num_hidden_layers": 32,
                        "num_key_value_heads": 32,
                        "max_position_embeddings": 4096,
                        "vocab_size": 32000,
                        "torch_dtype": "float16",
                    },
                    "precision": "bf16",
                    "license": "llama2",
                }
            ]
        },
    )
    id: str = Field(min_length=3, max_length=200, pattern=MODEL_ID.pattern)
    """Catalog id, ORG/NAME (the Hugging Face repository)."""
    config: dict[str, Any] = Field(max_length=MAX_CONFIG_KEYS)
    """The model's config.json, as published."""
    precision: Precision | None = None
    """Weight precision served (default: what the config states)."""
    weights_bytes: int | None = Field(default=None, gt=0)
    """The checkpoint's size (its safetensors index `total_size`)."""
    license: str | None = Field(default=None, max_length=100)
    quality_mmlu_pro: float | None = Field(default=None, gt=0, le=100)
    tasks: list[str] = Field(default=["chat"], min_length=1, max_length=20)
    languages: list[str] = Field(default=[], max_length=50)


def summary(model: Model) -> ModelSummary:
    return ModelSummary.model_validate(model, from_attributes=True)


router = APIRouter(prefix="/models", tags=["models"], route_class=ReadableValidation)


def listed(url: str) -> list[ModelSummary]:
    with session_scope(url) as session:
        return [summary(m) for m in session.exec(select(Model).order_by(col(Model.id)))]


def added(url: str, request: AddModelRequest) -> ModelSummary:
    try:
        record = model_record(
            Checkpoint(request.config, "the request body"),
            model_id=request.id,
            precision=request.precision,
            weights_bytes=request.weights_bytes,
            license=request.license,
            quality_mmlu_pro=request.quality_mmlu_pro,
            tasks=request.tasks,
            languages=request.languages,
        )
    except ConfigError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    with session_scope(url) as session:
        try:
            return summary(add_model(session=session, record=record))
        except ModelExistsError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        except ValueError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.get(
    "",
    summary="List the model catalog",
    response_description="Every model, curated or user-added, by id.",
    responses=problems(401, 403),
)
async def list_route(
    settings: AppSettings,
    _caller: Annotated[Caller, Depends(require("requester"))],
) -> list[ModelSummary]:
    """The catalog's models with where their weight size comes from. Needs the requester
    role."""
    return await run_in_threadpool(listed, settings.resolved_database_url)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a model of your own from its config.json",
    response_description="The model as the catalog now holds it, marked user-added.",
    responses=problems(401, 403, 409, 422),
)
async def add_route(
    settings: AppSettings,
    request: AddModelRequest,
    _caller: Annotated[Caller, Depends(require("admin"))],
) -> ModelSummary:
    """Read the config.json (dense, GQA/MHA, MoE, MLA, sliding-window and hybrid layers;
    a field it cannot read is named in a 422), count the parameters from the shapes and
    add the model, marked `user-added`: predictions, plans and deployments take it at
    once. Needs the admin role."""
    return await run_in_threadpool(added, settings.resolved_database_url, request)
