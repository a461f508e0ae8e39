"""What the planning service (`planner.service`) answers: plain types, which the Temporal
contract carries too."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from planner.conversation import Conversation, Question, Reply
from planner.deployment_plan import DeploymentPlan
from planner.intent import DeploymentIntent, DeploymentSpecification
from planner.recommendation import Recommendations


class Turn(BaseModel):
    conversation: Conversation
    reply: Reply
    recommendations: Recommendations | None
    """Options once no essential question is open (None while asking)."""
    seconds: float = 0.0
    """How long the turn took to answer (its driver measures it)."""


class Planned(BaseModel):
    """A plan from one message or one intent, nothing remembered."""

    intent: DeploymentIntent
    specification: DeploymentSpecification
    reply: str
    questions: list[Question]
    recommendations: Recommendations


class Evaluation(BaseModel):
    intent: DeploymentIntent
    specification: DeploymentSpecification
    recommendations: Recommendations


class Prepared(BaseModel):
    plan: DeploymentPlan
    manifests: list[dict[str, Any]]
    yaml: str
    notes: list[str] = []
    """What serves the model, and what Preflight left to KServe's controller."""
