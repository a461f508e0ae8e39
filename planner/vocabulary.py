"""The names the extractor recognises in free text: models, GPUs, use cases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.intent import UseCaseProfile

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")
MAX_NAME_TOKENS = 8


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; dots stay inside version numbers ("3.1")."""
    return _TOKEN.findall(text.lower())


def key(name: str) -> str:
    """What a name looks like once case, spaces, hyphens and slashes no longer matter."""
    return "-".join(tokens(name))


@dataclass(frozen=True)
class Mention:
    ids: tuple[str, ...]
    start: int
    end: int
    """Token positions of the mention."""


@dataclass(frozen=True)
class Vocabulary:
    """Catalog names, keyed by `key(name)`.

    A GPU family word ("A100") names every variant of the family; a specific name
    ("A100 40GB") only its own.
    """

    models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gpus: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gpu_vendors: dict[str, str] = field(default_factory=dict)
    use_cases: tuple[UseCaseProfile, ...] = ()

    @classmethod
    def build(
        cls,
        models: Iterable[tuple[str, Iterable[str]]],
        gpus: Iterable[tuple[str, str, Iterable[str]]],
        use_cases: Iterable[UseCaseProfile] = (),
    ) -> Vocabulary:
        """From (id, aliases) of models and (id, vendor, aliases) of GPUs."""
        # Ids and aliases claim a name outright; a repository name without its
        # organisation only where nothing claims it (as in kb.names).
        model_names: dict[str, set[str]] = {}
        short: dict[str, set[str]] = {}
        for model_id, aliases in models:
            for name in (model_id, *aliases):
                model_names.setdefault(key(name), set()).add(model_id)
            short.setdefault(key(model_id.rsplit("/", 1)[-1]), set()).add(model_id)
        for name, ids in short.items():
            model_names.setdefault(name, ids)
        gpu_names: dict[str, set[str]] = {}
        vendors = {}
        for gpu_id, vendor, aliases in gpus:
            vendors[gpu_id] = vendor
            family = tokens(gpu_id)[0]
            gpu_names.setdefault(family, set()).add(gpu_id)
            # A family named without its generation ("Gaudi" for Gaudi3).
            bare = family.rstrip("0123456789")
            if len(bare) >= 4 and bare != family:
                gpu_names.setdefault(bare, set()).add(gpu_id)
            for name in (gpu_id, *aliases):
                if key(name) != family:
                    gpu_names.setdefault(key(name), set()).add(gpu_id)
        return cls(
            models={k: tuple(sorted(v)) for k, v in model_names.items() if len(v) == 1},
            gpus={k: tuple(sorted(v)) for k, v in gpu_names.items()},
            gpu_vendors=vendors,
            use_cases=tuple(use_cases),
        )

    def find(self, words: list[str], names: dict[str, tuple[str, ...]]) -> list[Mention]:
        """Longest names first, without overlaps; a plural "s" is forgiven ("A100s")."""
        found = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_NAME_TOKENS, len(words) - i), 0, -1):
                candidate = "-".join(words[i : i + n])
                ids = names.get(candidate)
                if ids is None and candidate.endswith("s"):
                    ids = names.get(candidate[:-1])
                if ids is not None:
                    found.append(Mention(ids, i, i + n))
                    i += n
                    break
            else:
                i += 1
        return found
