"""Name resolution: what people type ("H100", "llama-3.1-8b") to a catalog id."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class UnknownNameError(LookupError):
    """A name that matches nothing, or more than one record."""

    def __init__(self, kind: str, name: str, suggestions: list[str], ambiguous: bool = False):
        self.kind, self.name, self.suggestions, self.ambiguous = kind, name, suggestions, ambiguous
        if ambiguous:
            message = f"{kind} '{name}' is ambiguous: it could be {', '.join(suggestions)}"
        elif suggestions:
            message = f"unknown {kind} '{name}'; closest matches: {', '.join(suggestions)}"
        else:
            message = f"unknown {kind} '{name}'"
        super().__init__(message)


def normalise(name: str) -> str:
    """Case, spaces and underscores do not distinguish names."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def name_keys(record_id: str, aliases: Iterable[str]) -> set[str]:
    """The normalised keys a record claims outright: its id and its aliases."""
    return {normalise(record_id)} | {normalise(alias) for alias in aliases}


def short_name(record_id: str) -> str:
    """The id without its organisation ("Llama-3.1-8B-Instruct"), a weaker claim than an alias."""
    return normalise(record_id.rsplit("/", 1)[-1])


@dataclass
class NameIndex:
    """Resolves names of one kind of record (models or accelerators).

    Ids and aliases are looked up first, then ids without their organisation, so that an
    alias such as "llama-3.1-70b" can name the Instruct model although the base model's
    repository is also called Llama-3.1-70B.
    """

    kind: str
    _exact: dict[str, set[str]] = field(default_factory=dict)
    _short: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, kind: str, records: Iterable[tuple[str, Iterable[str]]]) -> NameIndex:
        index = cls(kind)
        for record_id, aliases in records:
            for key in name_keys(record_id, aliases):
                index._exact.setdefault(key, set()).add(record_id)
            index._short.setdefault(short_name(record_id), set()).add(record_id)
        return index

    def resolve(self, name: str) -> str:
        key = normalise(name)
        ids = self._exact.get(key) or self._short.get(key)
        if ids is not None and len(ids) == 1:
            return next(iter(ids))
        if ids:
            raise UnknownNameError(self.kind, name, sorted(ids), ambiguous=True)
        keys = list(self._exact.keys() | self._short.keys())
        suggestions: list[str] = []
        for match in difflib.get_close_matches(key, keys, n=8, cutoff=0.5):
            for record_id in sorted(self._exact.get(match, set()) | self._short.get(match, set())):
                if record_id not in suggestions:
                    suggestions.append(record_id)
        raise UnknownNameError(self.kind, name, suggestions[:5])
