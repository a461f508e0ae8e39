"""Everything the assistant plans with, bundled once: the planner, the names it
recognises, the use-case templates, the model cards and the GPU prices."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.capacity import GpuPrice
from planner.deployment import GpuK8s, plan_for
from planner.deployment_plan import DeploymentPlan, ServingApi
from planner.extract import extract
from planner.intent import DeploymentIntent, DeploymentSpecification, UseCaseProfile
from planner.predict import Planner
from planner.recommend import TOP, WIDE_TOP, recommend
from planner.recommendation import ModelCard, Recommendation, Recommendations
from planner.specification import specify
from planner.vocabulary import Vocabulary, key
from planner.whatif import WhatIfError, with_changes

NAMED_FIELDS = {
    "model": "models",
    "preferred_models": "models",
    "excluded_models": "models",
    "pinned_models": "models",
    "gpu": "gpus",
    "available_gpus": "gpus",
    "excluded_gpus": "gpus",
}
"""Change fields whose values are model or GPU names."""
REMEMBERED = 256
"""Recommendations kept per catalog (a few hundred kB)."""


@dataclass(frozen=True)
class Assistant:
    planner: Planner
    vocabulary: Vocabulary
    use_cases: Mapping[str, UseCaseProfile]
    cards: Mapping[str, ModelCard]
    prices: Sequence[GpuPrice]
    gpu_k8s: Mapping[str, GpuK8s] = field(default_factory=dict)
    approved_models: frozenset[str] | None = None
    """Models a cluster admin allows (None: the whole catalog)."""
    _answers: dict[tuple[str, bool], Recommendations] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Recommendations already made over this catalog, by specification: people who leave
    the essentials to the defaults ask the same question (a new catalog is a new Assistant)."""
    _answers_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def read(self, text: str) -> DeploymentIntent:
        """The rules' reading of one message."""
        return extract(text, self.vocabulary)

    def resolved(self, name: str, value: Any) -> Any:
        """Names in model and GPU fields as catalog ids (a GPU family names every variant);
        WhatIfError for a name the catalog does not know."""
        if name not in NAMED_FIELDS or value is None:
            return value
        names: Mapping[str, tuple[str, ...]] = getattr(self.vocabulary, NAMED_FIELDS[name])
        known = set().union(*names.values())
        ids: list[str] = []
        for item in value if isinstance(value, list) else [value]:
            found = names.get(key(str(item))) or ((str(item),) if str(item) in known else None)
            if found is None:
                kind = "GPU" if NAMED_FIELDS[name] == "gpus" else "model"
                raise WhatIfError(f"{name}: unknown {kind} '{item}'")
            ids += found
        return sorted(set(ids))

    def changed(self, intent: DeploymentIntent, changes: Mapping[str, Any]) -> DeploymentIntent:
        """`planner.whatif.with_changes` with names resolved first."""
        return with_changes(intent, {k: self.resolved(k, v) for k, v in changes.items()})

    def specify(self, intent: DeploymentIntent) -> DeploymentSpecification:
        return specify(intent, self.use_cases, self.vocabulary.gpu_vendors)

    def recommend(self, spec: DeploymentSpecification, wide: bool = False) -> Recommendations:
        key = (spec.model_dump_json(), wide)
        with self._answers_lock:
            answer = self._answers.get(key)
        if answer is None:
            top = WIDE_TOP if wide else TOP
            answer = recommend(
                spec,
                self.planner,
                self.cards,
                self.use_cases,
                self.prices,
                top,
                self.approved_models,
            )
            with self._answers_lock:
                while len(self._answers) >= REMEMBERED:
                    del self._answers[next(iter(self._answers))]  # the oldest
                self._answers[key] = answer
        return answer

    def deployment_plan(
        self,
        chosen: Recommendation,
        spec: DeploymentSpecification,
        name: str,
        namespace: str,
        api: ServingApi = "llminferenceservice",
    ) -> DeploymentPlan:
        """What to render for the chosen option (`planner.deployment.plan_for`)."""
        o = chosen.option
        return plan_for(
            o,
            spec,
            self.planner.models[o.model_id],
            self.planner.gpus[o.gpu_id],
            self.gpu_k8s[o.gpu_id],
            name,
            namespace,
            api=api,
            engine=spec.engine,
        )
