"""Activities of an assistant session: read a message, re-plan, compare, prepare a deploy.

Each is a thin wrapper over the pure planner with the catalog from the knowledge base. Bad
input (an unknown field, a model the catalog lacks, an option that cannot run) is a
non-retryable `ApplicationError` whose message says what is wrong; anything else is
transient and retried by the workflow's policy.
"""

from __future__ import annotations

import contextlib

from pydantic import ValidationError
from temporalio import activity

from activities.intent import understand
from kb.catalog import CatalogCache
from kb.db import session_scope
from kb.repository import NotLoadedError
from kb.sessions import record_session_event
from manifests.render import ManifestError, render, to_yaml, validate
from planner.assistant import Assistant
from planner.catalog_index import CatalogIndex
from planner.conversation import respond
from planner.deployment import PlanError
from planner.deployment_plan import describe
from planner.specification import SpecificationError
from planner.whatif import ScenarioRow, WhatIfError, compare
from settings import Settings
from workflows.payloads import (
    CompareInput,
    ConverseInput,
    EditInput,
    Evaluation,
    Prepared,
    PrepareInput,
    SessionEvent,
    Turn,
    invalid,
)


class SessionActivities:
    """Planning activities over the catalog at `settings.resolved_database_url`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._catalog = CatalogCache(settings.resolved_database_url, settings.approved_models)

    def warm(self) -> None:
        """What a worker's first turn would otherwise wait a second for: the catalog, its
        index under vLLM's default settings, and the LLM client's import (with an LLM)."""
        if self._settings.llm_base_url:
            import activities.llm  # noqa: F401

        with contextlib.suppress(NotLoadedError):
            helper = self._catalog.get()
            CatalogIndex.of(helper.planner)

    def _assistant(self) -> Assistant:
        try:
            return self._catalog.get()
        except NotLoadedError as error:
            raise invalid(str(error)) from None

    @activity.defn
    def converse(self, request: ConverseInput) -> Turn:
        """One chat turn; options once the essentials are known (or left to defaults)."""
        helper = self._assistant()
        try:
            conversation, reply = respond(
                request.conversation,
                request.message,
                lambda text: understand(text, helper, self._settings),
                helper.use_cases,
                helper.vocabulary.gpu_vendors,
            )
        except SpecificationError as error:
            raise invalid(str(error)) from None
        options = (
            None if reply.questions else helper.recommend(reply.specification, wide=reply.wide)
        )
        return Turn(conversation=conversation, reply=reply, recommendations=options)

    @activity.defn
    def evaluate(self, request: EditInput) -> Evaluation:
        """The intent with `changes` applied (all or nothing), specified and re-planned."""
        helper = self._assistant()
        try:
            intent = helper.changed(request.intent, request.changes)
            specification = helper.specify(intent)
        except (WhatIfError, SpecificationError) as error:
            raise invalid(str(error)) from None
        return Evaluation(
            intent=intent,
            specification=specification,
            recommendations=helper.recommend(specification, wide=request.wide),
        )

    @activity.defn
    def compare_scenarios(self, request: CompareInput) -> list[ScenarioRow]:
        """The current intent and each what-if scenario side by side, best option each."""
        helper = self._assistant()
        try:
            intents = [("current", request.intent)] + [
                (s.name, helper.changed(request.intent, s.changes)) for s in request.scenarios
            ]
            return compare([(name, helper.recommend(helper.specify(i))) for name, i in intents])
        except (WhatIfError, SpecificationError) as error:
            raise invalid(str(error)) from None

    @activity.defn
    def prepare_deployment(self, request: PrepareInput) -> Prepared:
        """The chosen option's plan and manifests, rendered and validated (schemas, policy,
        memory fit); a refusal lists every problem."""
        helper = self._assistant()
        try:
            plan = helper.deployment_plan(
                request.recommendation,
                request.specification,
                request.name,
                request.namespace,
            )
            manifests = render(plan)
        except PlanError as error:
            raise invalid(str(error)) from None
        except ValidationError as error:
            raise invalid(f"the deployment plan is not valid: {describe(error)}") from None
        except ManifestError as error:
            raise invalid(str(error)) from None
        problems = validate(manifests, plan, helper.planner)
        if problems:
            raise invalid("the manifests are not valid: " + "; ".join(problems))
        return Prepared(plan=plan, manifests=manifests, yaml=to_yaml(manifests))

    @activity.defn
    def record_event(self, event: SessionEvent) -> bool:
        """Write one state change to the audit table (idempotent: retries write it once)."""
        with session_scope(self._settings.resolved_database_url) as session:
            return record_session_event(
                session=session,
                session_id=event.session_id,
                seq=event.seq,
                actor=event.actor,
                action=event.action,
                detail=event.detail,
            )
