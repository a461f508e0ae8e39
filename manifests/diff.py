"""What deploying a set of manifests would change against what runs: a unified diff of the
YAML and a count of objects new, changed, unchanged and removed.

Pure: the caller reads the running revision; this only compares. It lives with the other
manifest code (rendering, object references) that the planner may not depend on.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from manifests.kinds import object_ref
from manifests.render import to_yaml

Change = Literal["new", "changed", "unchanged", "removed"]
ORDER: tuple[Change, ...] = ("new", "changed", "unchanged", "removed")


class ManifestChanges(BaseModel):
    diff: str
    """Unified diff of the running YAML against the new; every line an addition when nothing
    runs, empty when nothing changes."""
    summary: str
    """`3 objects new`, `1 object changed, 6 unchanged`."""
    objects: dict[str, Change]
    """`Kind namespace/name` -> what happens to it."""


def compare(
    running: Sequence[dict[str, Any]] | None,
    new: Sequence[dict[str, Any]],
    running_label: str = "running",
    new_label: str = "selected",
) -> ManifestChanges:
    """`new` against `running` (None: nothing runs), object by object and as YAML text."""
    before = {str(object_ref(m)): m for m in running or ()}
    after = {str(object_ref(m)): m for m in new}
    objects: dict[str, Change] = {}
    for ref, manifest in after.items():
        old = before.get(ref)
        objects[ref] = "new" if old is None else "unchanged" if old == manifest else "changed"
    for ref in sorted(before.keys() - after.keys()):
        objects[ref] = "removed"
    old_text = to_yaml(list(running)) if running else ""
    diff = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        to_yaml(list(new)).splitlines(keepends=True),
        fromfile=running_label,
        tofile=new_label,
    )
    return ManifestChanges(diff="".join(diff), summary=summary(objects), objects=objects)


def summary(objects: dict[str, Change]) -> str:
    counts = [(n, change) for change in ORDER if (n := sum(c == change for c in objects.values()))]
    if not counts:
        return "no objects"
    (n, change), rest = counts[0], counts[1:]
    head = f"{n} object{'' if n == 1 else 's'} {change}"
    return ", ".join([head, *(f"{n} {change}" for n, change in rest)])
