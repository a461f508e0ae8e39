"""The REST API's stateless planning (`/plan`, `/whatif`) and deployment routes, signed in
with API keys from a temporary keys file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import add_key
from api.plan_routes import LoadCurveRequest
from deploy import rollout
from kb import deployments
from kb.db import session_scope
from kb.migrate import upgrade
from kb.slo_checks import record_slo_check
from settings import Settings
from tests.conftest import free_port, kb_copy
from tests.k8s_manifests import serving_manifests

USERS: dict[str, list[str]] = {
    "alice": ["requester"],
    "dave": ["requester"],
    "bob": ["requester", "approver"],
    "carol": ["approver"],
    "root": ["admin"],
}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("auth") / "api_keys.json"
    return path, {user: add_key(path, user, roles) for user, roles in USERS.items()}


def as_user(keys: dict[str, str], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[user]}"}


def settings_for(url: str, keys: Path) -> Settings:
    return Settings(
        database_url=url, api_keys_file=keys, temporal_address=f"127.0.0.1:{free_port()}"
    )


@pytest.fixture(scope="module")
def planning(
    seeded_sqlite_url: str, keys_file: tuple[Path, dict[str, str]]
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One app over the seeded catalog for the module: its assistant is built once."""
    path, keys = keys_file
    with TestClient(create_app(settings_for(seeded_sqlite_url, path))) as client:
        yield client, keys


def post(planning: tuple[TestClient, dict[str, str]], path: str, body: Any) -> Any:
    client, keys = planning
    return client.post(path, json=body, headers=as_user(keys, "alice"))


def test_no_key_or_an_unknown_key_is_refused(planning: tuple[TestClient, dict[str, str]]) -> None:
    client = planning[0]
    missing = client.post("/plan", json={"message": "a chatbot"})
    assert missing.status_code == 401
    assert missing.json()["detail"] == (
        "missing API key: send Authorization: Bearer <key> or X-API-Key"
    )
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")

    wrong = "pf_not-a-real-key"
    unknown = client.post("/plan", json={"message": "a chatbot"}, headers={"X-API-Key": wrong})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown API key"
    assert wrong not in unknown.text
    assert "WWW-Authenticate" in unknown.headers

    assert client.get("/deployments", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_key_added_while_running_works_at_once(
    planning: tuple[TestClient, dict[str, str]], keys_file: tuple[Path, dict[str, str]]
) -> None:
    key = add_key(keys_file[0], "erin", ["requester"])
    response = planning[0].get("/deployments", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json() == []


def test_health_needs_no_key(planning: tuple[TestClient, dict[str, str]]) -> None:
    assert planning[0].get("/health").status_code == 200


def test_planning_needs_the_requester_role(planning: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = planning
    refused = client.post("/plan", json={"message": "a chatbot"}, headers=as_user(keys, "carol"))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "carol needs the requester role"
    allowed = client.post(
        "/plan", json={"message": "a chatbot"}, headers={"X-API-Key": keys["root"]}
    )
    assert allowed.status_code == 200  # an admin holds every role


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "send either `message` (plain words) or `intent`"),
        ({"message": "a chatbot", "intent": {}}, "send either"),
        ({"message": ""}, "message: String should have at least 1 character"),
        ({"message": "a chatbot", "mode": "fast"}, "mode: Extra inputs are not permitted"),
        ({"intent": {"colour": "red"}}, "intent.colour: Extra inputs are not permitted"),
        ({"intent": {"traffic": {"peak_qps": -3}}}, "intent.traffic.peak_qps: Input should be"),
        ({"intent": {"available_gpus": ["tpu-v9"]}}, "intent.available_gpus: unknown GPU"),
        ([1, 2], "Input should be a valid dictionary"),
    ],
)
def test_malformed_plan_bodies_name_the_field(
    planning: tuple[TestClient, dict[str, str]], body: Any, named: str
) -> None:
    response = post(planning, "/plan", body)
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_plan_from_words(planning: tuple[TestClient, dict[str, str]]) -> None:
    response = post(
        planning, "/plan", {"message": "A support chatbot for 2,000 employees, only A100s"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["intent"]["use_case"] == "chatbot"
    assert body["intent"]["concurrent_users"] == 2000
    assert body["specification"]["use_case"] == "chatbot"
    assert "2,000 users" in body["reply"]
    assert all(q["field"] and q["text"] for q in body["questions"])
    options = body["recommendations"]["options"]
    assert options
    assert all("A100" in o["option"]["gpu_id"] for o in options)
    assert all(o["option"]["usd_per_month"] > 0 for o in options)


def test_plan_from_an_intent_resolves_names(planning: tuple[TestClient, dict[str, str]]) -> None:
    intent = {"use_case": "chatbot", "concurrent_users": 500, "available_gpus": ["h100"]}
    response = post(planning, "/plan", {"intent": intent})
    assert response.status_code == 200
    body = response.json()
    assert body["intent"]["available_gpus"]
    assert all(g.startswith("H100") for g in body["intent"]["available_gpus"])
    assert "available_gpus" in body["reply"]
    options = body["recommendations"]["options"]
    assert options and all(o["option"]["gpu_id"].startswith("H100") for o in options)


def test_whatif_pinning_a_gpu_moves_the_options(
    planning: tuple[TestClient, dict[str, str]],
) -> None:
    body = {
        "intent": {"use_case": "chatbot", "concurrent_users": 2000},
        "scenarios": [
            {"name": "on A100", "changes": {"gpu": "a100"}},
            {"name": "twice the users", "changes": {"concurrent_users": 4000}},
        ],
    }
    response = post(planning, "/whatif", body)
    assert response.status_code == 200
    rows = response.json()["scenarios"]
    assert [r["scenario"] for r in rows] == ["as specified", "on A100", "twice the users"]
    assert "A100" in rows[1]["gpus"]
    assert rows[0]["gpus"] != rows[1]["gpus"]
    assert any(d.startswith("gpus:") for d in rows[1]["differences"])
    assert rows[0]["differences"] == []
    assert rows[2]["capacity_qps"] >= rows[0]["capacity_qps"]


@pytest.mark.parametrize(
    ("scenarios", "named"),
    [
        ([], "scenarios: List should have at least 1 item"),
        ([{"name": "x", "changes": {"colour": "red"}}], "scenarios.0.changes (x): unknown field"),
        ([{"name": "x", "changes": {"gpu": "tpu-v9"}}], "unknown GPU 'tpu-v9'"),
        (
            [{"name": "x", "changes": {}}, {"name": "y", "changes": {"traffic.peak_qps": 0}}],
            "scenarios.1.changes (y): traffic.peak_qps: "
            "Input should be greater than or equal to 0.000001",
        ),
        ([{"name": "x", "changes": {}}, {"name": "x", "changes": {}}], "1.name 'x' is taken"),
        ([{"name": "x"}], "scenarios.0.changes: Field required"),
    ],
)
def test_malformed_whatifs_name_the_field(
    planning: tuple[TestClient, dict[str, str]], scenarios: list[Any], named: str
) -> None:
    response = post(
        planning, "/whatif", {"intent": {"use_case": "chatbot"}, "scenarios": scenarios}
    )
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_load_curve_of_a_planned_option(planning: tuple[TestClient, dict[str, str]]) -> None:
    plan = post(planning, "/plan", {"intent": {"use_case": "chatbot", "concurrent_users": 2000}})
    assert plan.status_code == 200
    body = plan.json()
    recommendation = body["recommendations"]["options"][0]
    option = recommendation["option"]
    assert recommendation["source"] in ("measured", "interpolated", "modelled", "observed")
    band = recommendation["uncertainty"]
    assert band["ttft_low"] <= 1 <= band["ttft_high"] and band["basis"]
    landscape = body["recommendations"]["landscape"]
    assert recommendation["id"] in {p["id"] for p in landscape}
    assert any(p["pareto"] for p in landscape)

    request = {
        **{k: option[k] for k in ("model_id", "gpu_id", "tp", "precision")},
        "traffic": body["specification"]["traffic"],
        "up_to_qps": option["max_qps_per_replica"],
        "points": 8,
    }
    response = post(planning, "/load-curve", request)
    assert response.status_code == 200, response.text
    curve = response.json()
    assert curve["candidate"]["gpu_id"] == option["gpu_id"] and curve["fits"]
    points = curve["points"]
    assert len(points) == 8
    assert set(points[0]) == {"qps", "ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms", "stable", "source"}
    assert points[0]["qps"] < option["max_qps_per_replica"] < points[-1]["qps"]
    shown = [p["ttft_p90_ms"] for p in points if p["stable"]]
    assert shown == sorted(shown) and len(shown) >= 2

    carol = planning[0].post("/load-curve", json=request, headers=as_user(planning[1], "carol"))
    assert carol.status_code == 403


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"gpu_id": "TPU-v9"}, "gpu_id: unknown GPU 'TPU-v9'"),
        ({"model_id": "acme/nope"}, "model_id: unknown model 'acme/nope'"),
        ({"up_to_qps": 0}, "up_to_qps: Input should be greater than or equal to 0.000001"),
        ({"points": 3}, "points: Input should be greater than or equal to 4"),
        ({"points": 65}, "points: Input should be less than or equal to 64"),
        ({"tp": 0}, "tp: Input should be 1, 2, 4 or 8"),
        ({"precision": "fp3"}, "precision: Input should be"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"traffic": {"peak_qps": 1}}, "traffic.prompt_tokens_mean: Field required"),
    ],
)
def test_malformed_load_curves_name_the_field(
    planning: tuple[TestClient, dict[str, str]], change: dict[str, Any], named: str
) -> None:
    example = LoadCurveRequest.model_json_schema()["examples"][0]  # the documented body
    body = {**example, **change}
    response = post(planning, "/load-curve", body)
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_an_empty_knowledge_base_is_unavailable(
    tmp_path: Path, keys_file: tuple[Path, dict[str, str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    with TestClient(create_app(settings_for(url, keys_file[0]))) as client:
        response = client.post(
            "/plan", json={"message": "a chatbot"}, headers=as_user(keys_file[1], "alice")
        )
    assert response.status_code == 503
    assert "run `preflight kb load`" in response.json()["detail"]


def test_every_route_is_documented(planning: tuple[TestClient, dict[str, str]]) -> None:
    spec = planning[0].get("/openapi.json").json()
    paths = (
        "/plan",
        "/whatif",
        "/predict",
        "/load-curve",
        "/models",
        "/deployments",
        "/deployments/{deployment_id}/slo",
    )
    for path in paths:
        for operation in spec["paths"][path].values():
            assert operation["summary"] and operation["description"]
            assert {"401", "403"} <= set(operation["responses"])
            assert {"200", "201"} & set(operation["responses"])
            assert operation["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


@pytest.fixture
def deployed(
    database_url: str, tmp_path: Path, keys_file: tuple[Path, dict[str, str]]
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """Deployments of alice and of dave (through the GitOps rollout) and one made from the
    command line (no owner), on each database kind; (client, keys, {name: id})."""
    ids = {}
    for name, owner in (("alice-bot", "alice"), ("dave-bot", "dave")):
        result = rollout.deploy(
            serving_manifests(name),
            name=name,
            namespace="ml",
            target=rollout.GitOpsTarget(folder=tmp_path / name),
            actor=owner,
            owner=owner,
            database_url=database_url,
        )
        assert result.deployment_id is not None
        ids[name] = result.deployment_id
    with session_scope(database_url) as session:
        ids["cli-bot"] = deployments.find_or_create_deployment(
            session=session, name="cli-bot", namespace="ml", target="gitops:/elsewhere"
        ).id
    with TestClient(create_app(settings_for(database_url, keys_file[0]))) as client:
        yield client, keys_file[1], ids


def test_a_requester_lists_only_their_own_deployments(
    deployed: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, keys, _ = deployed

    def names(user: str) -> list[str]:
        response = client.get("/deployments", headers=as_user(keys, user))
        assert response.status_code == 200
        return sorted(d["name"] for d in response.json())

    assert names("alice") == ["alice-bot"]
    assert names("dave") == ["dave-bot"]
    everything = ["alice-bot", "cli-bot", "dave-bot"]
    assert names("bob") == names("carol") == names("root") == everything


def test_one_deployment_with_its_history_and_no_leaks(
    deployed: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, keys, ids = deployed
    mine = client.get(f"/deployments/{ids['alice-bot']}", headers=as_user(keys, "alice"))
    assert mine.status_code == 200
    body = mine.json()
    assert body["deployment"]["owner"] == "alice"
    assert body["deployment"]["status"] == "written"
    [revision] = body["revisions"]
    assert revision["number"] == 1
    assert "InferenceService ml/alice-bot" in revision["objects"]
    assert [(e["action"], e["actor"]) for e in body["audit"]] == [("deploy", "alice")]

    others = client.get(f"/deployments/{ids['dave-bot']}", headers=as_user(keys, "alice"))
    missing = client.get("/deployments/nope", headers=as_user(keys, "alice"))
    assert others.status_code == missing.status_code == 404
    assert others.json()["detail"] == f"no deployment {ids['dave-bot']!r}"
    assert missing.json()["detail"] == "no deployment 'nope'"
    slo = client.get(f"/deployments/{ids['dave-bot']}/slo", headers=as_user(keys, "alice"))
    assert slo.status_code == 404

    approver = client.get(f"/deployments/{ids['dave-bot']}", headers=as_user(keys, "carol"))
    assert approver.status_code == 200


def test_slo_history_says_when_nothing_was_measured(
    deployed: tuple[TestClient, dict[str, str], dict[str, str]], database_url: str
) -> None:
    client, keys, ids = deployed
    path, headers = f"/deployments/{ids['alice-bot']}/slo", as_user(keys, "alice")
    empty = client.get(path, headers=headers).json()
    assert empty["source"] == "none" and empty["checks"] == [] and empty["targets"] == {}
    assert "no SLO check has run yet" in empty["note"]

    targets = {"ttft_p90_ms": 500.0, "tpot_p90_ms": 50.0}
    with session_scope(database_url) as session:
        record_slo_check(
            session=session,
            deployment_id=ids["alice-bot"],
            status="no_source",
            detail="no Prometheus",
            targets=targets,
        )
    unmeasured = client.get(path, headers=headers).json()
    assert unmeasured["source"] == "none"
    assert "no metrics source" in unmeasured["note"]
    assert unmeasured["checks"][0]["measurements"] == {}

    with session_scope(database_url) as session:
        record_slo_check(
            session=session,
            deployment_id=ids["alice-bot"],
            status="breach",
            detail="TTFT p90 above target",
            measurements={"ttft_p90_ms": 640.0, "tpot_p90_ms": 31.0},
            targets=targets,
        )
    measured = client.get(path, headers=headers).json()
    assert measured["source"] == "measured"
    assert measured["targets"] == targets
    assert [c["status"] for c in measured["checks"]] == ["no_source", "breach"]
    assert measured["checks"][1]["measurements"]["ttft_p90_ms"] == 640.0
    assert [
        c["status"] for c in client.get(f"{path}?limit=1", headers=headers).json()["checks"]
    ] == ["breach"]

    bad = client.get(f"{path}?limit=0", headers=headers)
    assert bad.status_code == 422
    assert "limit: Input should be greater than or equal to 1" in bad.json()["detail"]


def test_predict_one_configuration(planning: tuple[TestClient, dict[str, str]]) -> None:
    query = {
        "model_id": "llama-3.1-8b",
        "gpu_id": "L40S",
        "isl": 1000,
        "osl": 200,
        "qps": 2,
        "arrival": "gamma",
        "burstiness": 0.5,
        "kv_cache_dtype": "fp8",
        "max_num_seqs": 128,
    }
    body = post(planning, "/predict", query).json()
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct" and body["gpu"] == "L40S-PCIE-48GB"
    assert body["engine"]["kv_cache_dtype"] == "fp8" and body["engine"]["max_num_seqs"] == 128
    assert set(body["e2e_ms"]) == {"mean", "p50", "p90", "p95", "p99"} and body["stable"]
    assert body["memory"]["max_concurrent_sequences"] <= 128
    refused = post(planning, "/predict", query | {"burstiness": 0.5, "arrival": "poisson"})
    assert refused.status_code == 422 and "set arrival to gamma" in refused.json()["detail"]
    unknown = post(planning, "/predict", query | {"gpu_id": "tpu-v5"})
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith("gpu_id: unknown")
    family = post(planning, "/predict", query | {"gpu_id": "h100"})
    assert family.status_code == 422 and "pick one" in family.json()["detail"]


def test_an_admin_adds_a_model_and_everyone_can_predict_it(
    seeded_sqlite_url: str, tmp_path: Path, keys_file: tuple[Path, dict[str, str]]
) -> None:
    path, keys = keys_file
    config = json.loads(
        (
            Path(__file__).parents[1] / "data/configs/meta-llama__Llama-2-7b-hf/config.json"
        ).read_text()
    )
    request = {"id": "meta-llama/Llama-2-7b-hf", "config": config, "precision": "bf16"}
    with TestClient(create_app(settings_for(kb_copy(seeded_sqlite_url, tmp_path), path))) as client:
        query: dict[str, object] = {"model_id": "meta-llama/Llama-2-7b-hf", "isl": 500}
        query |= {"gpu_id": "A10G-PCIE-24GB", "osl": 100, "concurrency": 4}
        # The catalog is built before the model exists: predictions must see it once added.
        before = client.post("/predict", json=query, headers=as_user(keys, "alice"))
        assert before.status_code == 422
        refused = client.post("/models", json=request, headers=as_user(keys, "alice"))
        assert refused.status_code == 403
        added = client.post("/models", json=request, headers=as_user(keys, "root"))
        assert added.status_code == 201, added.text
        assert added.json()["origin"] == "user-added"
        assert added.json()["params_total_b"] == pytest.approx(6.74, abs=0.01)
        again = client.post("/models", json=request, headers=as_user(keys, "root"))
        assert again.status_code == 409 and "already in the catalog" in again.json()["detail"]
        broken = request | {
            "id": "me/broken",
            "config": {k: v for k, v in config.items() if k != "vocab_size"},
        }
        unreadable = client.post("/models", json=broken, headers=as_user(keys, "root"))
        assert unreadable.status_code == 422
        assert unreadable.json()["detail"] == "config.json: vocab_size is missing"
        predicted = client.post("/predict", json=query, headers=as_user(keys, "alice"))
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["memory"]["kv_bytes_per_token_per_gpu"] == 524_288
        listed = client.get("/models", headers=as_user(keys, "alice")).json()
        origins = {m["id"]: m["origin"] for m in listed}
        assert origins["meta-llama/Llama-2-7b-hf"] == "user-added"
        assert "me/broken" not in origins and origins["Qwen/Qwen3-8B"] == "catalog"
