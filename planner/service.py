"""The planning service: every planning use case, once, for REST, the CLI and the activities.

Read a message, take a chat turn, plan from words or an intent, re-plan with changes,
compare what-ifs, prepare a deployment. One catalog cache per service knows when the
knowledge base changed (its revision), so `kb load` reaches every driver at its next call,
and the same specification over the same catalog is answered from memory
(`Assistant.recommend`). A driver's own job is only to translate: a `PlanningError` is bad
input whose message names what is wrong (422, a refused update, a red line), a
`NotLoadedError` an empty knowledge base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from kb.catalog import CatalogCache, freeze_long_lived
from manifests.render import ManifestError, render, serving_notes, to_yaml, validate
from planner.answers import Evaluation, Planned, Prepared, Turn
from planner.assistant import NAMED_FIELDS, Assistant
from planner.catalog_index import CatalogIndex
from planner.cluster import ClusterGpusReader, ClusterPolicy
from planner.conversation import Conversation, Reply, respond
from planner.deployment import PlanError
from planner.deployment_plan import ServingApi, describe
from planner.extract import combine
from planner.intent import DeploymentIntent, DeploymentSpecification
from planner.recommendation import Recommendation, Recommendations
from planner.specification import SpecificationError
from planner.whatif import ScenarioRow, WhatIfError, compare
from settings import Settings

POLICY_NOTES: dict[ClusterPolicy, str] = {
    "present": "options use only the GPUs the cluster has",
    "free": "options use only GPUs with one free now",
    "any": "options may use GPUs the cluster lacks (PREFLIGHT_CLUSTER_GPUS=any)",
}


WARM_UP = (
    "A support chatbot for 2,000 employees in English and German, answers within a second, "
    "about 5 requests/s at peak, prompts of 1k tokens, under $15k a month, no Llama, on H100s."
)
"""A message that reads through every kind of rule, so that `warm` compiles their patterns."""


class PlanningError(ValueError):
    """Input a planning use case cannot take; the message says what is wrong and where."""


class PlanningService:
    """The use cases over the catalog at `settings.resolved_database_url`."""

    def __init__(self, settings: Settings, cluster: ClusterGpusReader | None = None) -> None:
        """`cluster` reads the target cluster's GPUs, matched to the catalog it is given
        (None where there is no cluster, or it cannot be read): recommendations then keep to
        them (`settings.cluster_gpus`) and a selection must fit what is free."""
        self._settings = settings
        self._catalog = CatalogCache(settings.resolved_database_url, settings.approved_models)
        self._cluster: ClusterGpusReader = cluster or (lambda _catalog: None)

    def assistant(self) -> Assistant:
        """The catalog now; `NotLoadedError`, saying what to run, while it is empty."""
        return self._catalog.get()

    def warm(self) -> None:
        """What a first call would otherwise wait a second for: the catalog, its index under
        vLLM's default settings, the rules' patterns (some five hundred, compiled on first
        use: 0.2 s), and the LLM client's import (with an LLM)."""
        if self._settings.llm_base_url:
            import planner.llm  # noqa: F401

        helper = self.assistant()
        CatalogIndex.of(helper.planner)
        helper.read(WARM_UP)
        freeze_long_lived()

    def read(self, text: str, helper: Assistant | None = None) -> DeploymentIntent:
        """The rules' intent, with the LLM's reading filling only what the rules left open and
        the text confirms (`planner.extract.combine`); the rules alone without an LLM."""
        helper = helper or self.assistant()
        if not self._settings.llm_base_url:
            return combine(text, helper.read(text), None)  # no OpenAI client to import (1.5 s)
        from planner.llm import llm_intent

        return combine(text, helper.read(text), llm_intent(text, self._settings))

    def turn(self, conversation: Conversation, message: str) -> Turn:
        """One chat turn; options once the essentials are known (or left to defaults)."""
        helper = self.assistant()
        state, reply = self._respond(
            helper, conversation, message, lambda text: self.read(text, helper)
        )
        options = (
            None
            if reply.questions
            else self._recommend(helper, reply.specification, wide=reply.wide)
        )
        return Turn(conversation=state, reply=reply, recommendations=options)

    def plan(self, message: str | None = None, intent: DeploymentIntent | None = None) -> Planned:
        """From plain words or from an intent (exactly one), the specification, what is still
        open, and the options assuming the defaults."""
        if (message is None) == (intent is None):
            raise PlanningError("give either a message (plain words) or an intent, not both")
        helper = self.assistant()
        given = None if intent is None else self._named(helper, intent, "intent")

        def reading(text: str) -> DeploymentIntent:
            # An intent is the turn's whole news, as if words had said it.
            return self.read(text, helper) if given is None else given

        state, reply = self._respond(helper, Conversation(), message or "", reading)
        return Planned(
            intent=state.intent,
            specification=reply.specification,
            reply=reply.text,
            questions=reply.questions,
            recommendations=self._recommend(helper, reply.specification, wide=reply.wide),
        )

    def replan(
        self, intent: DeploymentIntent, changes: dict[str, Any], wide: bool = False
    ) -> Evaluation:
        """The intent with `changes` applied (all or nothing), specified and re-planned."""
        helper = self.assistant()
        try:
            changed = helper.changed(intent, changes)
            specification = helper.specify(changed)
        except (WhatIfError, SpecificationError) as error:
            raise PlanningError(str(error)) from None
        return Evaluation(
            intent=changed,
            specification=specification,
            recommendations=self._recommend(helper, specification, wide=wide),
        )

    def compare(
        self,
        intent: DeploymentIntent,
        scenarios: Sequence[tuple[str, dict[str, Any]]],
        baseline: str,
    ) -> list[ScenarioRow]:
        """The intent (named `baseline`) and each scenario's changes of it, side by side:
        the best option of each and how it differs from the first."""
        helper = self.assistant()
        base = self._named(helper, intent, "intent")
        intents = [(baseline, base)]
        for i, (name, changes) in enumerate(scenarios):
            try:
                intents.append((name, helper.changed(base, changes)))
            except WhatIfError as error:
                raise PlanningError(f"scenarios.{i}.changes ({name}): {error}") from None
        return compare(self._plans(helper, intents))

    def compare_intents(self, intents: Sequence[tuple[str, DeploymentIntent]]) -> list[ScenarioRow]:
        """Whole intents side by side (`preflight compare` of specification files)."""
        helper = self.assistant()
        return compare(self._plans(helper, intents))

    def _plans(
        self, helper: Assistant, intents: Sequence[tuple[str, DeploymentIntent]]
    ) -> list[tuple[str, Recommendations]]:
        try:
            return [(name, self._recommend(helper, helper.specify(i))) for name, i in intents]
        except SpecificationError as error:
            raise PlanningError(str(error)) from None

    def prepare(
        self,
        recommendation: Recommendation,
        specification: DeploymentSpecification,
        name: str,
        namespace: str,
        api: ServingApi = "llminferenceservice",
    ) -> Prepared:
        """The option's deployment plan and manifests for `api`, rendered and validated
        (schemas, policy, memory fit); a refusal lists every problem."""
        helper = self.assistant()
        try:
            plan = helper.deployment_plan(recommendation, specification, name, namespace, api)
            manifests = render(plan)
        except (PlanError, ManifestError) as error:
            raise PlanningError(str(error)) from None
        except ValidationError as error:
            raise PlanningError(f"the deployment plan is not valid: {describe(error)}") from None
        problems = validate(manifests, plan, helper.planner)
        if problems:
            raise PlanningError("the manifests are not valid: " + "; ".join(problems))
        cluster = self._cluster(helper.gpu_k8s)
        if cluster is not None:
            room = cluster.room(
                plan.accelerator.gpu_id,
                plan.vllm.tensor_parallel_size,
                plan.serving.replicas_at_start,
            )
            if not room.enough:
                raise PlanningError(f"the cluster cannot run it now: {room.sentence()}")
        return Prepared(
            plan=plan, manifests=manifests, yaml=to_yaml(manifests), notes=serving_notes(plan)
        )

    def _recommend(
        self, helper: Assistant, spec: DeploymentSpecification, wide: bool = False
    ) -> Recommendations:
        """The options for `spec`, kept to the cluster's GPUs where one is known, saying
        what it has free and whether each option fits it now."""
        cluster = self._cluster(helper.gpu_k8s)
        if cluster is None:
            return helper.recommend(spec, wide=wide)
        policy = self._settings.cluster_gpus
        allowed = cluster.allowed(policy)
        searched = spec
        if allowed is not None:
            wanted = set(spec.constraints.gpus) if spec.constraints.gpus is not None else allowed
            limited = spec.constraints.model_copy(update={"gpus": sorted(wanted & allowed)})
            searched = spec.model_copy(update={"constraints": limited})
        found = helper.recommend(searched, wide=wide)
        notes = [cluster.summary(), POLICY_NOTES[policy]]
        for r in found.options:
            o = r.option
            notes.append(f"{r.id}: {cluster.room(o.gpu_id, o.tp, o.min_replicas).sentence()}")
        return found.model_copy(update={"specification": spec, "cluster": notes})

    @staticmethod
    def _respond(
        helper: Assistant,
        conversation: Conversation,
        message: str,
        reading: Callable[[str], DeploymentIntent],
    ) -> tuple[Conversation, Reply]:
        """The conversation after `message`, read by `reading`."""
        try:
            return respond(
                conversation, message, reading, helper.use_cases, helper.vocabulary.gpu_vendors
            )
        except SpecificationError as error:
            raise PlanningError(str(error)) from None

    @staticmethod
    def _named(helper: Assistant, intent: DeploymentIntent, where: str) -> DeploymentIntent:
        """The intent with model and GPU names as catalog ids ("h100" names every H100)."""
        named = {k: v for k, v in intent.model_dump(exclude_none=True).items() if k in NAMED_FIELDS}
        try:
            return helper.changed(intent, named)
        except WhatIfError as error:
            raise PlanningError(f"{where}.{error}") from None
