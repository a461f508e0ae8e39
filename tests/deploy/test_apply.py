"""The apply path up to the wire: every request the `kubernetes` client sends for a deploy
(permission check, dry run, apply, wait, rollback) against a local endpoint that answers as
the API server does (tests/fake_apiserver.py), and what the knowledge base records."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from typer import Typer
from typer.testing import CliRunner

from cli import cluster as cluster_cli
from deploy import cluster, kubeconfig, rollout
from deploy.targets import ClusterError
from kb import deployments
from kb.db import session_scope
from manifests.kinds import UnsupportedManifestError, serving_ref
from tests.conftest import kb_copy
from tests.fake_apiserver import KSERVE_0_20, FakeApiServer, running, write_kubeconfig
from tests.k8s_manifests import serving_manifests
from tests.manifests.test_manifests import GOLDEN_DIR
from workflows.payloads import DeployResult

TOKEN = f"test-bearer-{secrets.token_hex(12)}"
PLURALS = [
    "servingruntimes",
    "inferenceservices",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "servicemonitors",
]
SERVED = serving_ref("InferenceService", "llama-8b", "ml")


@pytest.fixture
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    with running(TOKEN) as fake:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, TOKEN)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield fake


@pytest.fixture
def api_client(apiserver: FakeApiServer) -> client.ApiClient:
    return kubeconfig.connect("fake")


@pytest.fixture
def target(api_client: client.ApiClient) -> rollout.ClusterTarget:
    return rollout.ClusterTarget(api_client=api_client, context="fake")


def deploy(
    target: rollout.ClusterTarget, url: str, manifests: list[dict[str, Any]], **kwargs: Any
) -> DeployResult:
    options: dict[str, Any] = {"wait_timeout_s": 0, "poll_interval_s": 0.02, **kwargs}
    return rollout.deploy(
        manifests,
        name="llama-8b",
        namespace="ml",
        target=target,
        actor="tester",
        database_url=url,
        **options,
    )


def patches(fake: FakeApiServer) -> list[Any]:
    return [r for r in fake.requests if r.method == "PATCH"]


def test_permission_check_lists_what_is_missing_and_applies_nothing(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    apiserver.denied = {
        ("serving.kserve.io", "inferenceservices", "patch", "ml"),
        ("policy", "poddisruptionbudgets", "create", "ml"),
    }
    with pytest.raises(cluster.PermissionMissing) as refused:
        deploy(target, database_url, serving_manifests())

    assert refused.value.missing == [
        "cannot patch inferenceservices.serving.kserve.io in namespace ml",
        "cannot create poddisruptionbudgets.policy in namespace ml",
    ]
    reviews = [r for r in apiserver.requests if r.path.endswith("/selfsubjectaccessreviews")]
    asked = {
        tuple(r.body["spec"]["resourceAttributes"][k] for k in ("resource", "verb", "namespace"))
        for r in reviews
    }
    assert asked == {(p, v, "ml") for p in PLURALS for v in ("get", "create", "patch", "delete")}
    assert len(reviews) == len(asked)
    assert all(r.method == "POST" for r in apiserver.requests)
    assert apiserver.objects == {}
    with session_scope(database_url) as session:
        assert deployments.list_deployments(session=session) == []


def test_dry_run_then_real_apply_in_order_with_field_manager(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    manifests = serving_manifests()
    result = deploy(target, database_url, manifests)

    sent = patches(apiserver)
    assert [r.query.get("dryRun") for r in sent] == [["All"]] * 5 + [None] * 5
    assert all(r.query["fieldManager"] == ["preflight"] for r in sent)
    assert all("force" not in r.query for r in sent)
    assert {r.content_type for r in sent} == {"application/apply-patch+yaml"}
    assert [r.body for r in sent] == manifests + manifests
    assert [r.path.split("/")[-2] for r in sent[5:]] == PLURALS
    assert (
        sent[6].path == "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/llama-8b"
    )
    assert [a.action for a in result.applied] == ["created"] * 5
    assert apiserver.stored("inferenceservices", "ml", "llama-8b") is not None


def test_dry_run_flag_sends_only_dry_runs_and_records_nothing(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    result = deploy(target, database_url, serving_manifests(), dry_run=True)

    assert [a.dry_run for a in result.applied] == [True] * 5
    assert all(r.query.get("dryRun") == ["All"] for r in patches(apiserver))
    assert apiserver.objects == {}
    assert result.deployment_id is None


def test_applying_the_same_manifests_twice_changes_nothing(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    first = deploy(target, database_url, serving_manifests())
    stored = {key: obj["metadata"]["resourceVersion"] for key, obj in apiserver.objects.items()}
    second = deploy(target, database_url, serving_manifests())

    assert [a.action for a in second.applied] == ["unchanged"] * 5
    assert {k: o["metadata"]["resourceVersion"] for k, o in apiserver.objects.items()} == stored
    assert second.deployment_id == first.deployment_id
    assert (second.revision, second.new_revision) == (1, False)
    assert first.deployment_id is not None
    with session_scope(database_url) as session:
        assert len(deployments.revisions(session=session, deployment_id=first.deployment_id)) == 1

    changed = deploy(target, database_url, serving_manifests(max_num_seqs=256))
    assert [a.action for a in changed.applied] == ["configured"] + ["unchanged"] * 4
    assert (changed.revision, changed.new_revision) == (2, True)


def test_wait_ready_reports_progress_until_the_fake_flips_ready(
    apiserver: FakeApiServer, api_client: client.ApiClient
) -> None:
    cluster.apply(api_client, serving_manifests(), dry_run=False)
    apiserver.set_ready("ml", "llama-8b", False, "Pulling model hf://meta-llama")
    flip = threading.Timer(0.3, apiserver.set_ready, ("ml", "llama-8b", True))
    flip.start()
    progress: list[str] = []
    try:
        ready = cluster.wait_ready(api_client, SERVED, 10, progress.append, 0.02)
    finally:
        flip.cancel()

    assert progress == [
        "Ready=False (PredictorNotReady): Pulling model hf://meta-llama",
        "Ready=True",
    ]
    assert ready.url == "http://llama-8b.ml.example.com"
    assert all(r.method == "GET" for r in apiserver.requests[-3:])


def test_wait_ready_times_out_clearly_with_the_last_conditions(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    deploy(target, database_url, serving_manifests())  # objects exist, no status yet
    apiserver.set_ready("ml", "llama-8b", False, "0/4 nodes: insufficient nvidia.com/gpu")

    with pytest.raises(cluster.NotReady) as timed_out:
        deploy(target, database_url, serving_manifests(), wait_timeout_s=0.2)

    message = str(timed_out.value)
    assert message.startswith("InferenceService ml/llama-8b not Ready after 0.2 s")
    assert "insufficient nvidia.com/gpu" in message
    deployment_id = timed_out.value.deployment_id
    assert deployment_id is not None
    with session_scope(database_url) as session:
        record = deployments.read_deployment(session=session, deployment_id=deployment_id)
        trail = deployments.audit_trail(session=session, deployment_id=deployment_id)
    assert record.status == "not_ready"
    assert [e.action for e in trail] == ["deploy", "deploy", "not_ready"]


def test_ready_deploy_is_recorded(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    cluster.apply(target.api_client, serving_manifests(), dry_run=False)
    apiserver.set_ready("ml", "llama-8b", True)
    result = deploy(target, database_url, serving_manifests(), wait_timeout_s=5)

    assert result.ready is not None
    with session_scope(database_url) as session:
        assert result.deployment_id is not None
        record = deployments.read_deployment(session=session, deployment_id=result.deployment_id)
        trail = deployments.audit_trail(session=session, deployment_id=result.deployment_id)
    assert (record.status, record.target, record.current_revision) == ("ready", "cluster:fake", 1)
    assert [(e.action, e.actor) for e in trail] == [("deploy", "tester"), ("ready", "tester")]


def test_rollback_restores_the_previous_revision_then_deletes(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    first = deploy(target, database_url, serving_manifests(max_num_seqs=128))
    deploy(target, database_url, serving_manifests(max_num_seqs=256, alerts=True))
    assert apiserver.stored("prometheusrules", "ml", "llama-8b") is not None
    deployment_id = first.deployment_id
    assert deployment_id is not None

    def connect(context: str) -> client.ApiClient:
        assert context == "fake"
        return target.api_client

    restored = rollout.rollback(
        deployment_id, actor="admin", connect=connect, database_url=database_url
    )

    runtime = apiserver.stored("servingruntimes", "ml", "llama-8b-vllm")
    assert runtime is not None
    assert "--max-num-seqs=128" in runtime["spec"]["containers"][0]["args"]
    assert apiserver.stored("prometheusrules", "ml", "llama-8b") is None
    assert (restored.action, restored.restored_revision) == ("rollback", 1)

    deleted = rollout.rollback(
        deployment_id, actor="admin", connect=connect, database_url=database_url
    )
    assert (deleted.action, deleted.restored_revision) == ("delete", None)
    assert apiserver.objects == {}
    deletes = [r.path.split("/")[-2] for r in apiserver.requests if r.method == "DELETE"]
    assert deletes == ["prometheusrules", *reversed(PLURALS)]

    with pytest.raises(rollout.RollbackError, match="nothing deployed"):
        rollout.rollback(deployment_id, actor="admin", connect=connect, database_url=database_url)
    with session_scope(database_url) as session:
        record = deployments.read_deployment(session=session, deployment_id=deployment_id)
        trail = deployments.audit_trail(session=session, deployment_id=deployment_id)
    assert (record.status, record.current_revision) == ("deleted", None)
    assert [(e.action, e.actor) for e in trail] == [
        ("deploy", "tester"),
        ("deploy", "tester"),
        ("rollback", "admin"),
        ("delete", "admin"),
    ]
    assert trail[2].detail.startswith("revision 2 -> 1")


def test_apply_failure_carries_the_api_servers_message(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    apiserver.failures[("inferenceservices", "llama-8b")] = (
        422,
        'InferenceService.serving.kserve.io "llama-8b" is invalid: spec.predictor: Required',
    )
    with pytest.raises(cluster.ApplyFailed) as failed:
        deploy(target, database_url, serving_manifests())

    assert failed.value.status == 422
    assert "spec.predictor: Required" in str(failed.value)
    assert [r.query.get("dryRun") for r in patches(apiserver)] == [["All"], ["All"]]
    assert apiserver.objects == {}


def test_a_real_apply_failing_halfway_is_recorded_and_rolled_back(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    first = deploy(target, database_url, serving_manifests(max_num_seqs=128))
    apiserver.real_failures[("servicemonitors", "llama-8b")] = (403, "exceeded quota: monitors")

    with pytest.raises(cluster.ApplyFailed) as failed:
        deploy(target, database_url, serving_manifests(max_num_seqs=256))

    assert failed.value.deployment_id == first.deployment_id
    assert "exceeded quota: monitors" in str(failed.value)
    runtime = apiserver.stored("servingruntimes", "ml", "llama-8b-vllm")
    assert runtime is not None and "--max-num-seqs=256" in runtime["spec"]["containers"][0]["args"]
    assert first.deployment_id is not None
    with session_scope(database_url) as session:
        record = deployments.read_deployment(session=session, deployment_id=first.deployment_id)
    assert (record.status, record.current_revision) == ("failed", 2)

    apiserver.real_failures.clear()  # the quota freed up again
    rollout.rollback(
        first.deployment_id,
        actor="admin",
        connect=lambda _: target.api_client,
        database_url=database_url,
    )
    runtime = apiserver.stored("servingruntimes", "ml", "llama-8b-vllm")
    assert runtime is not None and "--max-num-seqs=128" in runtime["spec"]["containers"][0]["args"]


def test_unknown_kind_is_refused_before_any_request(
    apiserver: FakeApiServer, target: rollout.ClusterTarget, database_url: str
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "ml"}}
    hostile = serving_manifests()[:1]
    hostile[0]["metadata"]["name"] = "../../etc"
    for manifests in ([*serving_manifests(), secret], hostile):
        with pytest.raises(UnsupportedManifestError):
            deploy(target, database_url, manifests)
    assert apiserver.requests == []


def test_the_token_never_reaches_errors_or_logs(
    apiserver: FakeApiServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    good = kubeconfig.connect("fake")
    wrong_token = f"wrong-{secrets.token_hex(8)}"
    wrong = write_kubeconfig(tmp_path / "wrong", apiserver.url, wrong_token, context="wrong")
    monkeypatch.setenv("KUBECONFIG", str(wrong))
    wrong_client = kubeconfig.connect("wrong")
    messages = []
    for failing in (
        lambda: cluster.check_permissions(wrong_client, serving_manifests()),
        lambda: cluster.apply(wrong_client, serving_manifests(), dry_run=True),
        lambda: cluster.wait_ready(
            good, serving_ref("InferenceService", "absent", "ml"), 0.05, lambda _: None, 0.01
        ),
        lambda: kubeconfig.connect("no-such-context"),
    ):
        with pytest.raises(ClusterError) as error:
            failing()
        messages.append(str(error.value))
    apiserver.echo_credentials = True
    with pytest.raises(cluster.ApplyFailed) as echoed:
        cluster.apply(good, serving_manifests(), dry_run=True)
    messages.append(str(echoed.value))
    assert "[redacted]" in messages[-1]
    assert "401" in messages[0] or "Unauthorized" in messages[0]
    assert "Unauthorized" in messages[1]
    output = capsys.readouterr()
    seen = "\n".join([*messages, caplog.text, output.out, output.err])
    for token in (TOKEN, wrong_token):
        assert token not in seen
    assert any(
        r.method == "POST" and r.path.endswith("selfsubjectaccessreviews")
        for r in apiserver.requests
    )


def test_cli_deploys_from_a_manifest_folder_and_rolls_back(
    apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'kb.db'}")
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for index, manifest in enumerate(serving_manifests()):
        del manifest["metadata"]["namespace"]  # --namespace fills it in
        (rendered / f"{index}.yaml").write_text(yaml.safe_dump(manifest))
    app = Typer()
    app.command("deploy")(cluster_cli.deploy_command)
    app.command("rollback")(cluster_cli.rollback_command)
    app.command("deployments")(cluster_cli.deployments_command)
    runner = CliRunner()
    common = ["deploy", "--manifests", str(rendered), "--context", "fake", "--namespace", "ml"]

    refused = runner.invoke(app, ["deploy", "--plan", "plan.json", "--manifests", "x"])
    assert refused.exit_code == 2 and "one of them" in refused.output
    dry = runner.invoke(app, [*common, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert apiserver.objects == {}
    done = runner.invoke(app, [*common, "--wait-timeout-s", "0"])
    assert done.exit_code == 0, done.output
    assert "created    InferenceService ml/llama-8b" in done.output
    deployment_id = done.output.split("deployment ")[-1].split()[0]
    listed = runner.invoke(app, ["deployments"])
    assert deployment_id in listed.output
    undone = runner.invoke(app, ["rollback", deployment_id])
    assert undone.exit_code == 0, undone.output
    assert undone.output.startswith(f"delete of deployment {deployment_id}")
    assert apiserver.objects == {}
    history = runner.invoke(app, ["deployments", deployment_id])
    assert "deploy" in history.output and "delete" in history.output
    assert TOKEN not in done.output + undone.output + history.output


@pytest.mark.parametrize(
    ("served", "kind"),
    [
        (KSERVE_0_20, "LLMInferenceService"),
        (
            {"serving.kserve.io/v1beta1": {"inferenceservices": "InferenceService"}},
            "InferenceService",
        ),
    ],
    ids=["kserve-0.20", "kserve-0.15"],
)
def test_deploying_a_plan_renders_what_the_cluster_serves(
    served: dict[str, dict[str, str]],
    kind: str,
    apiserver: FakeApiServer,
    seeded_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    apiserver.served = served
    monkeypatch.setenv("DATABASE_URL", kb_copy(seeded_sqlite_url, tmp_path))  # it records
    app = Typer()
    app.command("deploy")(cluster_cli.deploy_command)
    app.command("rollback")(cluster_cli.rollback_command)
    plan = GOLDEN_DIR / "llama-8b-l4-llmisvc" / "plan.json"

    done = CliRunner().invoke(
        app, ["deploy", "--plan", str(plan), "--context", "fake", "--wait-timeout-s", "0"]
    )

    assert done.exit_code == 0, done.output
    assert f"the cluster serves {kind} (" in done.output
    applied = {r.body["kind"] for r in patches(apiserver)}
    assert kind in applied
    assert ({"LLMInferenceService", "InferenceService"} - {kind}).isdisjoint(applied)


def test_deploying_to_a_cluster_without_kserve_says_so_and_sends_nothing(
    apiserver: FakeApiServer,
    seeded_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    apiserver.served = {}
    monkeypatch.setenv("DATABASE_URL", kb_copy(seeded_sqlite_url, tmp_path))
    app = Typer()
    app.command("deploy")(cluster_cli.deploy_command)
    app.command("rollback")(cluster_cli.rollback_command)
    plan = GOLDEN_DIR / "llama-8b-l4-llmisvc" / "plan.json"

    refused = CliRunner().invoke(app, ["deploy", "--plan", str(plan), "--context", "fake"])

    assert refused.exit_code == 2
    assert "the cluster serves neither LLMInferenceService (serving.kserve.io/v1alpha2) nor " in (
        refused.output
    )
    assert apiserver.writes() == []


def test_cli_writes_gitops_when_no_cluster_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("PREFLIGHT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'kb.db'}")
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    (rendered / "all.yaml").write_text(yaml.safe_dump_all(serving_manifests()))
    app = Typer()
    app.command("deploy")(cluster_cli.deploy_command)
    app.command("rollback")(cluster_cli.rollback_command)

    done = CliRunner().invoke(app, ["deploy", "--manifests", str(rendered)])

    assert done.exit_code == 0, done.output
    folder = tmp_path / "state" / "gitops" / "ml" / "llama-8b"
    assert (folder / "kustomization.yaml").is_file()
    assert (folder / "20-inferenceservice-llama-8b.yaml").is_file()
    assert "gitops:" in done.output
