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
    """Every normalised key a record answers to: its id, the id without the org, its aliases."""
    keys = {normalise(record_id), normalise(record_id.rsplit("/", 1)[-1])}
    keys.update(normalise(alias) for alias in aliases)
    return keys


@dataclass
class NameIndex:
    """Resolves names of one kind of record (models or accelerators)."""

    kind: str
    _ids_by_key: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, kind: str, records: Iterable[tuple[str, Iterable[str]]]) -> NameIndex:
        index = cls(kind)
        for record_id, aliases in records:
            for key in name_keys(record_id, aliases):
                index._ids_by_key.setdefault(key, set()).add(record_id)
        return index

    def resolve(self, name: str) -> str:
        key = normalise(name)
        ids = self._ids_by_key.get(key)
        if ids is not None and len(ids) == 1:
            return next(iter(ids))
        if ids:
            raise UnknownNameError(self.kind, name, sorted(ids), ambiguous=True)
        close = difflib.get_close_matches(key, list(self._ids_by_key), n=8, cutoff=0.5)
        suggestions: list[str] = []
        for match in close:
            for record_id in sorted(self._ids_by_key[match]):
                if record_id not in suggestions:
                    suggestions.append(record_id)
        raise UnknownNameError(self.kind, name, suggestions[:5])
