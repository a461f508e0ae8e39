"""Reading a message: the rules, completed by an LLM when one is configured."""

from __future__ import annotations

from planner.assistant import Assistant
from planner.extract import combine
from planner.intent import DeploymentIntent
from settings import Settings, get_settings


def understand(text: str, helper: Assistant, settings: Settings | None = None) -> DeploymentIntent:
    """The rules' intent, with the LLM's reading filling only what the rules left open and
    the text confirms (`planner.extract.combine`); the rules alone without an LLM."""
    settings = settings or get_settings()
    if not settings.llm_base_url:
        return combine(text, helper.read(text), None)  # no OpenAI client to import (1.5 s)
    from activities.llm import llm_intent

    return combine(text, helper.read(text), llm_intent(text, settings))
