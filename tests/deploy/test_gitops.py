"""GitOps mode: one file per manifest plus kustomization.yaml, idempotent, committed on request,
and recorded and rolled back like a cluster deploy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy import gitops, rollout
from kb import deployments
from kb.db import session_scope
from tests.k8s_manifests import serving_manifests
from workflows.payloads import DeployResult

FILES = [
    "10-servingruntime-llama-8b-vllm.yaml",
    "20-inferenceservice-llama-8b.yaml",
    "30-horizontalpodautoscaler-llama-8b.yaml",
    "40-poddisruptionbudget-llama-8b.yaml",
    "50-servicemonitor-llama-8b.yaml",
]


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_writes_one_file_per_manifest_and_a_kustomization(tmp_path: Path) -> None:
    manifests = serving_manifests()
    result = gitops.write(list(reversed(manifests)), tmp_path / "out", commit=False)

    assert result.files == FILES
    assert result.changed == sorted([*FILES, "kustomization.yaml"])
    assert result.commit is None
    kustomization = yaml.safe_load((tmp_path / "out" / "kustomization.yaml").read_text())
    assert kustomization == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": FILES,
    }
    text = (tmp_path / "out" / FILES[1]).read_text()
    assert yaml.safe_load(text) == manifests[1]
    assert text.startswith("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n")
    assert "&id" not in text and "*id" not in text
    assert not (tmp_path / "out" / ".git").exists()


def test_writing_the_same_manifests_again_changes_no_file(tmp_path: Path) -> None:
    gitops.write(serving_manifests(), tmp_path, commit=False)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}

    again = gitops.write(serving_manifests(), tmp_path, commit=False)

    assert again.changed == []
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_files_of_dropped_manifests_go_and_other_files_stay(tmp_path: Path) -> None:
    gitops.write(serving_manifests(alerts=True), tmp_path, commit=False)
    (tmp_path / "README.md").write_text("hand-written\n")

    result = gitops.write(serving_manifests(), tmp_path, commit=False)

    assert result.changed == ["60-prometheusrule-llama-8b.yaml", "kustomization.yaml"]
    assert not (tmp_path / "60-prometheusrule-llama-8b.yaml").exists()
    assert (tmp_path / "README.md").read_text() == "hand-written\n"


def test_preview_changes_nothing(tmp_path: Path) -> None:
    planned = gitops.preview(serving_manifests(), tmp_path / "out")
    assert planned.changed == sorted([*FILES, "kustomization.yaml"])
    assert not (tmp_path / "out").exists()


@pytest.mark.integration  # a `preflight` process
def test_commits_when_asked_initialising_the_repository(tmp_path: Path) -> None:
    first = gitops.write(serving_manifests(), tmp_path, commit=True)

    assert first.commit is not None
    assert git(tmp_path, "rev-parse", "HEAD") == first.commit
    assert git(tmp_path, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "Preflight <preflight@localhost>|Preflight <preflight@localhost>"
    )
    assert git(tmp_path, "ls-files").split("\n") == sorted([*FILES, "kustomization.yaml"])
    assert git(tmp_path, "status", "--porcelain") == ""

    assert gitops.write(serving_manifests(), tmp_path, commit=True).commit is None
    changed = gitops.write(serving_manifests(max_num_seqs=256), tmp_path, commit=True)
    assert changed.changed == [FILES[0]]
    assert changed.commit is not None
    assert git(tmp_path, "rev-list", "--count", "HEAD") == "2"


@pytest.mark.integration  # a `preflight` process
def test_gitops_deploy_is_recorded_and_rolled_back(tmp_path: Path, database_url: str) -> None:
    folder = tmp_path / "gitops"
    target = rollout.GitOpsTarget(folder=folder, commit=True)

    def deploy(max_num_seqs: int) -> DeployResult:
        return rollout.deploy(
            serving_manifests(max_num_seqs=max_num_seqs),
            name="llama-8b",
            namespace="ml",
            target=target,
            actor="tester",
            database_url=database_url,
        )

    first = deploy(128)
    second = deploy(256)
    assert first.deployment_id == second.deployment_id
    assert second.revision == 2
    deployment_id = first.deployment_id
    assert deployment_id is not None

    restored = rollout.rollback(deployment_id, actor="admin", database_url=database_url)

    assert restored.restored_revision == 1
    assert "--max-num-seqs=128" in (folder / FILES[0]).read_text()
    assert git(folder, "rev-list", "--count", "HEAD") == "3"

    deleted = rollout.rollback(deployment_id, actor="admin", database_url=database_url)
    assert deleted.action == "delete"
    assert sorted(p.name for p in folder.iterdir()) == [".git"]
    with session_scope(database_url) as session:
        record = deployments.read_deployment(session=session, deployment_id=deployment_id)
        trail = deployments.audit_trail(session=session, deployment_id=deployment_id)
    assert record.target == f"gitops:{folder.resolve()}"
    assert [e.action for e in trail] == ["deploy", "deploy", "rollback", "delete"]


@pytest.mark.integration  # a `preflight` process
def test_a_folder_an_outer_repository_ignores_gets_its_own(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    (tmp_path / ".gitignore").write_text("state/\n")
    folder = tmp_path / "state" / "gitops"

    result = gitops.write(serving_manifests(), folder, commit=True)

    assert result.commit is not None
    assert git(folder, "rev-parse", "--show-toplevel") == str(folder)
    assert gitops.is_committed(folder)


def test_two_manifests_for_one_file_are_refused(tmp_path: Path) -> None:
    manifests = serving_manifests()
    with pytest.raises(gitops.GitOpsError, match=re.escape("20-inferenceservice-llama-8b.yaml")):
        gitops.write([*manifests, manifests[1]], tmp_path, commit=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration  # a `preflight` process
def test_deploy_a_plan_to_a_gitops_folder(tmp_path: Path, seeded_sqlite_url: str) -> None:
    """`preflight deploy --plan` renders, validates and writes what `render` writes."""
    from tests.cli.test_cli import preflight
    from tests.conftest import kb_copy

    golden = Path(__file__).parents[1] / "golden" / "llama-8b-l4"
    env_url = kb_copy(seeded_sqlite_url, tmp_path)  # the deploy is recorded: a private copy
    folder = tmp_path / "gitops"
    result = preflight(
        "deploy", "--plan", str(golden / "plan.json"), "--gitops", str(folder), database_url=env_url
    )
    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".yaml"}
    expected = {p.name: p.read_text() for p in golden.iterdir() if p.suffix == ".yaml"}
    assert written == expected
    again = preflight(
        "deploy", "--plan", str(golden / "plan.json"), "--gitops", str(folder), database_url=env_url
    )
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".yaml"} == expected
