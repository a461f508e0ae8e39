"""GitOps mode: manifests written to a folder with a kustomization.yaml, optionally committed,
for a cluster admin's Argo CD or Flux to pick up (the default when no cluster is configured).

Only files this folder's kustomization.yaml lists are ever removed, so a folder shared with
hand-written files is safe.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from manifests.kinds import APPLY_ORDER, object_ref
from manifests.render import dump
from workflows.payloads import GitOpsResult

KUSTOMIZATION = "kustomization.yaml"
AUTHOR_NAME, AUTHOR_EMAIL = "Preflight", "preflight@localhost"


class GitOpsError(RuntimeError):
    """The folder cannot be written or committed; the message says why."""


def file_name(manifest: dict[str, Any]) -> str:
    """`20-inferenceservice-llama.yaml`: the prefix keeps apply order when sorted by name."""
    ref = object_ref(manifest)
    return f"{APPLY_ORDER.get(ref.kind, 90):02d}-{ref.kind.lower()}-{ref.name}.yaml"


def planned_files(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> YAML text for `manifests` and their kustomization.yaml."""
    files: dict[str, str] = {}
    for manifest in manifests:
        name = file_name(manifest)
        if name in files:
            raise GitOpsError(f"two manifests would both be written to {name}")
        files[name] = dump(manifest)
    ordered = sorted(files)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ordered,
    }
    return {
        **{n: files[n] for n in ordered},
        KUSTOMIZATION: dump(kustomization),
    }


def write(manifests: list[dict[str, Any]], folder: Path, commit: bool) -> GitOpsResult:
    """Write `manifests` to `folder` (idempotent: same manifests, no changed files), drop the
    files a previous write listed that are gone now, and commit if asked."""
    files = planned_files(manifests)
    result = preview(manifests, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in result.changed:
        if name in files:
            (folder / name).write_text(files[name])
        else:
            (folder / name).unlink(missing_ok=True)
    if commit:
        result.commit = _commit(folder, f"preflight: write {len(result.files)} manifests")
    return result


def preview(manifests: list[dict[str, Any]], folder: Path) -> GitOpsResult:
    """What `write` would change in `folder`, without touching it (a dry run)."""
    files = planned_files(manifests)
    changed = [name for name in _listed(folder) if name not in files]
    for name, text in files.items():
        path = folder / name
        if not path.is_file() or path.read_text() != text:
            changed.append(name)
    listed = [n for n in files if n != KUSTOMIZATION]
    return GitOpsResult(folder=folder, files=listed, changed=sorted(changed))


def remove(folder: Path, commit: bool) -> GitOpsResult:
    """Delete what `write` put in `folder` (its listed files and the kustomization)."""
    changed = [*_listed(folder), KUSTOMIZATION] if (folder / KUSTOMIZATION).is_file() else []
    for name in changed:
        (folder / name).unlink(missing_ok=True)
    result = GitOpsResult(folder=folder, files=[], changed=sorted(changed))
    if commit:
        result.commit = _commit(folder, "preflight: remove manifests")
    return result


def is_committed(folder: Path) -> bool:
    """Whether git tracks this folder's kustomization.yaml (so later writes commit too)."""
    if not folder.is_dir():
        return False
    tracked = _git(folder, "ls-files", "--error-unmatch", KUSTOMIZATION, check=False)
    return tracked.returncode == 0


def _listed(folder: Path) -> list[str]:
    path = folder / KUSTOMIZATION
    if not path.is_file():
        return []
    resources = (yaml.safe_load(path.read_text()) or {}).get("resources") or []
    # Only plain file names: a hand-edited entry such as ../other must never be deleted.
    return [r for r in resources if isinstance(r, str) and r == Path(r).name]


def _commit(folder: Path, message: str) -> str | None:
    """Commit the folder's changes (initialising a repository if there is none); None when
    git sees nothing to commit, which also catches files an earlier uncommitted write left."""
    inside = _git(folder, "rev-parse", "--is-inside-work-tree", check=False).returncode == 0
    # A folder another repository ignores (the default under .preflight/) gets its own.
    if not inside or _git(folder, "check-ignore", "--quiet", ".", check=False).returncode == 0:
        _git(folder, "init", "--quiet")
    _git(folder, "add", "--all", "--", ".")
    if _git(folder, "diff", "--cached", "--quiet", "--", ".", check=False).returncode == 0:
        return None
    _git(folder, "commit", "--quiet", "--no-verify", "-m", message, "--", ".")
    return _git(folder, "rev-parse", "HEAD").stdout.strip()


def _git(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    identity = {
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
    }
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=folder,
        env={**os.environ, **identity},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise GitOpsError(f"git {args[0]} failed in {folder}: {done.stderr.strip()}")
    return done
