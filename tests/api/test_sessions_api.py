"""The session routes against a real Temporal dev server and an in-process worker running the
real activities: who may see and change a session, the refusals (401/403/404/409/422), and
a whole journey from plain words to an approved GitOps deployment and its rollback.

One server, worker and app serve the whole module (starting Temporal takes seconds)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.keys import add_key
from deploy.targets import deploy_target
from settings import Settings
from tests.conftest import free_port, kb_copy, temporal_dev_server
from worker import build_worker
from workflows.payloads import SessionState

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

USERS: dict[str, list[str]] = {
    "alice": ["requester"],
    "bob": ["requester", "approver"],
    "carol": ["requester"],
    "admin": ["admin"],
}
DESCRIBE = (
    "a customer support chatbot for 1000 employees, budget $20,000 a month, "
    "answers must start within 1 second"
)
UNKNOWN_ID = "session-" + "0" * 32


@dataclass
class Stack:
    http: httpx.AsyncClient
    keys: dict[str, str]
    settings: Settings

    async def call(self, method: str, path: str, user: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[user]}"} if user else {}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, user: str, expect: int = 200, **kw: Any) -> Any:
        response = await self.call(method, path, user, **kw)
        assert response.status_code == expect, response.text
        return response.json()

    async def start(self, user: str, message: str | None = None) -> SessionState:
        body = await self.ok("POST", "/sessions", user, 201, json={"message": message})
        return SessionState.model_validate(body)

    async def state(self, user: str, session_id: str) -> SessionState:
        return SessionState.model_validate(await self.ok("GET", f"/sessions/{session_id}", user))

    async def explore(self, user: str) -> SessionState:
        """A session with options: the use case described, every question answered with
        "I don't know"."""
        state = await self.start(user, DESCRIBE)
        while state.questions:
            state = SessionState.model_validate(
                await self.ok(
                    "POST",
                    f"/sessions/{state.session_id}/messages",
                    user,
                    json={"message": "I don't know"},
                )
            )
        assert state.stage == "explore" and state.recommendations, state.reply
        return state

    async def select_first(self, user: str) -> SessionState:
        state = await self.explore(user)
        assert state.recommendations
        option = state.recommendations.options[0]
        body = await self.ok(
            "POST", f"/sessions/{state.session_id}/select", user, json={"option_id": option.id}
        )
        return SessionState.model_validate(body)

    async def wait_for(
        self,
        user: str,
        session_id: str,
        done: Callable[[SessionState], bool],
        timeout_s: float = 60,
    ) -> SessionState:
        """Signals are asynchronous: poll the state until `done`."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = await self.state(user, session_id)
            if done(state):
                return state
            assert time.monotonic() < deadline, f"timed out in {state.stage}: {state.history[-3:]}"
            await asyncio.sleep(0.2)

    async def listed(self, user: str, query: str = "") -> list[str]:
        body = await self.ok("GET", f"/sessions{query}", user)
        return [s["session_id"] for s in body]

    async def wait_listed(self, user: str, session_id: str, query: str = "") -> list[str]:
        """Visibility trails the start of a workflow by a moment."""
        deadline = time.monotonic() + 20
        while session_id not in (found := await self.listed(user, query)):
            assert time.monotonic() < deadline, f"{session_id} never listed for {user}"
            await asyncio.sleep(0.2)
        return found


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, seeded_sqlite_url: str
) -> AsyncIterator[Stack]:
    state_dir = tmp_path_factory.mktemp("sessions")
    keys_file = state_dir / "api_keys.json"
    keys = {user: add_key(keys_file, user, roles) for user, roles in USERS.items()}
    async with await temporal_dev_server() as env:
        settings = Settings(
            database_url=kb_copy(seeded_sqlite_url, state_dir),
            state_dir=state_dir,
            api_keys_file=keys_file,
            temporal_address=env.client.service_client.config.target_host,
        )
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(env.client, settings, executor):
                transport = httpx.ASGITransport(app=create_app(settings))
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://preflight", timeout=120
                ) as http:
                    yield Stack(http, keys, settings)


# ---- who may call ---------------------------------------------------------------------------


async def test_every_route_needs_a_known_key(stack: Stack) -> None:
    routes = [
        ("POST", "/sessions"),
        ("GET", "/sessions"),
        ("GET", f"/sessions/{UNKNOWN_ID}"),
        ("POST", f"/sessions/{UNKNOWN_ID}/messages"),
        ("PATCH", f"/sessions/{UNKNOWN_ID}/spec"),
        ("POST", f"/sessions/{UNKNOWN_ID}/what-if"),
        ("POST", f"/sessions/{UNKNOWN_ID}/select"),
        ("GET", f"/sessions/{UNKNOWN_ID}/manifests"),
        ("POST", f"/sessions/{UNKNOWN_ID}/approve"),
        ("POST", f"/sessions/{UNKNOWN_ID}/reject"),
        ("POST", f"/sessions/{UNKNOWN_ID}/rollback"),
        ("POST", f"/sessions/{UNKNOWN_ID}/cancel"),
        ("DELETE", f"/sessions/{UNKNOWN_ID}"),
    ]
    for method, path in routes:
        missing = await stack.call(method, path, None, json={})
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.json()["detail"].startswith("missing API key")
        wrong = await stack.http.request(
            method, path, headers={"Authorization": "Bearer pf_wrong"}, json={}
        )
        assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown API key"
    health = await stack.http.get("/health")  # still open, and Temporal is reachable
    assert health.status_code == 200 and health.json()["temporal"]["status"] == "ok"


async def test_every_session_route_is_documented(stack: Stack) -> None:
    paths = (await stack.http.get("/openapi.json")).json()["paths"]
    operations = [
        (path, method, operation)
        for path, methods in paths.items()
        if path.startswith("/sessions")
        for method, operation in methods.items()
    ]
    assert len(operations) == 13
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation["summary"] and operation["description"], where
        assert operation.get("security"), where  # it asks for a key
        codes = set(operation["responses"])
        assert {"401", "503"} <= codes, where
        success = next(c for c in codes if c.startswith("2"))
        schema = operation["responses"][success]["content"]["application/json"]["schema"]
        assert schema, where
        if "{session_id}" in path:
            assert "404" in codes, where


async def test_an_unreachable_temporal_is_a_503_that_names_no_address(stack: Stack) -> None:
    address = f"127.0.0.1:{free_port()}"
    app = create_app(stack.settings.model_copy(update={"temporal_address": address}))
    headers = {"Authorization": f"Bearer {stack.keys['alice']}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://preflight"
    ) as http:
        for method, path in (("POST", "/sessions"), ("GET", "/sessions")):
            response = await http.request(method, path, headers=headers, json={})
            assert response.status_code == 503, response.text
            assert response.json()["detail"].startswith("the workflow service failed")
            assert address not in response.text


# ---- tenants --------------------------------------------------------------------------------


async def test_a_session_is_visible_to_its_owner_and_admins_only(stack: Stack) -> None:
    empty = await stack.start("alice")
    assert empty.stage == "collect" and empty.owner == "alice" and empty.reply is None
    assert empty.session_id.startswith("session-")
    no_body = await stack.call("POST", "/sessions", "alice")
    assert no_body.status_code == 201 and no_body.json()["owner"] == "alice"

    session = empty.session_id
    for user in ("alice", "admin"):
        assert (await stack.state(user, session)).session_id == session
    for user in ("carol", "bob"):  # bob approves, but nothing of alice's awaits approval
        read = await stack.call("GET", f"/sessions/{session}", user)
        assert read.status_code == 404 and read.json()["detail"] == f"no session {session!r}"
    carol_chat = await stack.call(
        "POST", f"/sessions/{session}/messages", "carol", json={"message": "hello"}
    )
    assert carol_chat.status_code == 404
    carol_select = await stack.call(
        "POST", f"/sessions/{session}/select", "carol", json={"option_id": "x"}
    )
    assert carol_select.status_code == 404
    for path in (f"/sessions/{session}/cancel", f"/sessions/{session}/rollback"):
        assert (await stack.call("POST", path, "carol", json={})).status_code == 404
    assert (await stack.call("DELETE", f"/sessions/{session}", "carol")).status_code == 404

    for missing in (UNKNOWN_ID, "session-x", "not-a-session", f"{session}-monitor"):
        assert (await stack.call("GET", f"/sessions/{missing}", "admin")).status_code == 404

    assert session in await stack.wait_listed("alice", session)
    assert session in await stack.wait_listed("admin", session)
    assert session not in await stack.listed("carol")
    listing = await stack.ok("GET", "/sessions", "alice")
    mine = next(s for s in listing if s["session_id"] == session)
    assert mine["owner"] == "alice" and mine["status"] == "running"
    assert mine["stage"] == "collect" and mine["started_at"]
    assert mine["deployment_id"] is None
    assert {s["owner"] for s in listing} == {"alice"}


# ---- refusals -------------------------------------------------------------------------------


async def test_malformed_bodies_are_refused_naming_the_field(stack: Stack) -> None:
    state = await stack.explore("alice")
    base = f"/sessions/{state.session_id}"
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/messages", {}, "message: Field required"),
        ("POST", "/messages", {"message": ""}, "message: String should have at least 1"),
        ("PATCH", "/spec", {"changes": [1]}, "changes: Input should be a valid dictionary"),
        ("PATCH", "/spec", {"changes": {}}, "changes: Dictionary should have at least 1"),
        ("POST", "/what-if", {"name": "x"}, "changes: Field required"),
        ("POST", "/select", {}, "option_id: Field required"),
        ("POST", "/select", {"option_id": "a", "name": "Bad Name"}, "name: name 'Bad Name'"),
        ("POST", "/messages", {"message": "hi", "mood": "happy"}, "mood: Extra inputs"),
    ]
    for method, path, body, detail in cases:
        response = await stack.call(method, base + path, "alice", json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["detail"].startswith(detail), (path, response.json())
    started = await stack.call("POST", "/sessions", "alice", json={"message": 3})
    assert started.status_code == 422 and "message" in started.json()["detail"]

    unknown_field = await stack.call(
        "PATCH", base + "/spec", "alice", json={"changes": {"warp_factor": 9}}
    )
    assert unknown_field.status_code == 422 and "warp_factor" in unknown_field.json()["detail"]
    unknown_option = await stack.call("POST", base + "/select", "alice", json={"option_id": "no"})
    assert unknown_option.status_code == 422
    assert unknown_option.json()["detail"].startswith("no option 'no'; options: ")
    # Nothing changed: still exploring, no edit in the history.
    after = await stack.state("alice", state.session_id)
    assert after.stage == "explore" and "edited" not in [h.action for h in after.history]


async def test_wrong_stage_and_ended_sessions_are_conflicts(stack: Stack) -> None:
    state = await stack.start("alice")
    base = f"/sessions/{state.session_id}"
    select = await stack.call("POST", base + "/select", "alice", json={"option_id": "x"})
    assert select.status_code == 409
    assert select.json()["detail"].startswith("cannot select an option in stage collect")
    manifests = await stack.call("GET", base + "/manifests", "alice")
    assert manifests.status_code == 409
    assert manifests.json()["detail"].startswith(f"nothing selected in session {state.session_id}")
    what_if = await stack.call("POST", base + "/what-if", "alice", json={"changes": {"gpu": "a"}})
    assert what_if.status_code == 409
    approve = await stack.call("POST", base + "/approve", "bob", json={})
    assert approve.status_code == 409 and "nothing awaits approval" in approve.json()["detail"]
    reject = await stack.call("POST", base + "/reject", "bob", json={"reason": "no"})
    assert reject.status_code == 409
    rollback = await stack.call("POST", base + "/rollback", "alice", json={"reason": "x"})
    assert rollback.status_code == 409
    assert rollback.json()["detail"] == "nothing deployed to roll back: session is in stage collect"

    cancelled = await stack.ok("DELETE", base, "alice", 202)
    assert cancelled == {
        "session_id": state.session_id,
        "action": "cancel",
        "detail": "cancelled; nothing was deployed",
    }
    ended = await stack.wait_for("alice", state.session_id, lambda s: s.stage == "cancelled")
    assert ended.history[-1].actor == "alice"
    for method, path, body in [
        ("POST", "/messages", {"message": "hello"}),
        ("PATCH", "/spec", {"changes": {"traffic.peak_qps": 3}}),
        ("POST", "/cancel", {"reason": "again"}),
        ("POST", "/rollback", {}),
    ]:
        response = await stack.call(method, base + path, "alice", json=body)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["detail"] == "session has ended"
    listing = await stack.ok("GET", "/sessions", "alice")
    entry = next(s for s in listing if s["session_id"] == state.session_id)
    assert entry["stage"] == "cancelled"


async def test_approval_needs_the_role_and_another_person(stack: Stack) -> None:
    own = await stack.select_first("bob")  # bob requests, and holds the approver role
    assert own.stage == "finalize" and own.approval and own.approval.status == "pending"
    base = f"/sessions/{own.session_id}"
    by_requester = await stack.call("POST", base + "/approve", "alice", json={})
    assert by_requester.status_code == 403
    assert by_requester.json()["detail"] == "alice needs the approver role"
    by_himself = await stack.call("POST", base + "/approve", "bob", json={"comment": "fine"})
    assert by_himself.status_code == 403
    assert "another approver must approve" in by_himself.json()["detail"]
    # An admin holds every role; a reason is required to reject.
    assert (await stack.call("POST", base + "/reject", "admin", json={})).status_code == 422
    rejected = await stack.ok(
        "POST", base + "/reject", "admin", 202, json={"reason": "too expensive"}
    )
    assert rejected["action"] == "reject"
    back = await stack.wait_for("bob", own.session_id, lambda s: s.stage == "explore")
    assert back.approval and back.approval.status == "rejected"
    assert back.approval.approver == "admin" and back.approval.comment == "too expensive"


# ---- the journey ----------------------------------------------------------------------------


async def test_from_words_to_an_approved_gitops_deployment_and_its_rollback(
    stack: Stack,
) -> None:
    folder = Path(deploy_target(stack.settings).folder or "")
    assert folder == stack.settings.state_dir / "gitops"

    first = await stack.start("alice", DESCRIBE)
    assert first.reply and first.conversation.intent.concurrent_users == 1000
    session = first.session_id
    base = f"/sessions/{session}"
    state = first
    while state.questions:
        state = SessionState.model_validate(
            await stack.ok("POST", base + "/messages", "alice", json={"message": "I don't know"})
        )
    assert state.stage == "explore" and state.recommendations
    options = state.recommendations.options
    assert options

    edited = SessionState.model_validate(
        await stack.ok(
            "PATCH", base + "/spec", "alice", json={"changes": {"target_ttft_p90_ms": 800}}
        )
    )
    assert edited.specification and edited.specification.slo.ttft_p90_ms == 800

    pinned = next(o.option.gpu_id for o in options if o.option.gpu_id != options[0].option.gpu_id)
    compared = SessionState.model_validate(
        await stack.ok(
            "POST", base + "/what-if", "alice", json={"name": "pinned", "changes": {"gpu": pinned}}
        )
    )
    assert [row.scenario for row in compared.scenarios] == ["current", "pinned"]

    assert edited.recommendations
    chosen = edited.recommendations.options[0]
    selected = SessionState.model_validate(
        await stack.ok(
            "POST", base + "/select", "alice", json={"option_id": chosen.id, "name": "support-bot"}
        )
    )
    assert selected.stage == "finalize" and selected.prepared
    assert selected.prepared.plan.name == "support-bot"
    assert not folder.exists()  # nothing leaves Preflight before approval

    # Nothing runs under that name yet: every object and every line is new.
    fresh = await stack.ok("GET", base + "/manifests", "alice")
    count = len(selected.prepared.manifests)
    assert fresh["yaml"] == selected.prepared.yaml
    assert fresh["running_yaml"] is None and fresh["running_revision"] is None
    assert fresh["summary"] == f"{count} objects new"
    diff = fresh["diff"].splitlines()
    assert diff[:2] == ["--- running (nothing)", "+++ selected"]
    assert all(line.startswith(("+", "@@")) for line in diff[2:])
    assert (await stack.call("GET", base + "/manifests", "carol")).status_code == 404

    # Approvers see what awaits them; other requesters do not.
    assert (await stack.state("bob", session)).stage == "finalize"
    assert session in await stack.wait_listed("bob", session, "?awaiting_approval=true")
    assert session not in await stack.listed("carol", "?awaiting_approval=true")
    carol_read = await stack.call("GET", base, "carol")
    assert carol_read.status_code == 404
    # An approver may read, not change, someone else's session.
    bob_chat = await stack.call("POST", base + "/messages", "bob", json={"message": "hi"})
    assert bob_chat.status_code == 403

    approved = await stack.ok("POST", base + "/approve", "bob", 202, json={"comment": "ok"})
    assert approved == {
        "session_id": session,
        "action": "approve",
        "detail": "approved; the deployment starts",
    }
    observed = await stack.wait_for("alice", session, lambda s: s.stage in ("observe", "explore"))
    assert observed.stage == "observe", observed.deployment
    deployment = observed.deployment
    assert deployment and deployment.status == "deployed" and deployment.deployment_id
    assert deployment.target == f"gitops:{folder}"
    assert observed.approval and observed.approval.approver == "bob"
    assert (folder / "kustomization.yaml").exists()

    listed = await stack.ok("GET", "/deployments", "alice")
    assert [d["id"] for d in listed] == [deployment.deployment_id]
    assert listed[0]["owner"] == "alice" and listed[0]["name"] == "support-bot"
    summary = next(
        s for s in await stack.ok("GET", "/sessions", "alice") if s["session_id"] == session
    )
    assert summary["deployment_id"] == deployment.deployment_id

    # Deployed: what was selected is what runs.
    same = await stack.ok("GET", base + "/manifests", "alice")
    assert same["running_revision"] == 1 and same["running_yaml"] == same["yaml"]
    assert same["diff"] == "" and same["summary"] == f"{count} objects unchanged"

    # A second session selecting another option under the same name sees what would change.
    other = await stack.explore("alice")
    assert other.recommendations
    another = next(o for o in other.recommendations.options if o.id != chosen.id)
    await stack.ok(
        "POST",
        f"/sessions/{other.session_id}/select",
        "alice",
        json={"option_id": another.id, "name": "support-bot"},
    )
    against = await stack.ok("GET", f"/sessions/{other.session_id}/manifests", "alice")
    assert against["running_revision"] == 1
    assert against["running_yaml"] == selected.prepared.yaml != against["yaml"]
    assert "changed" in against["summary"]
    assert against["diff"].startswith("--- running (revision 1)\n+++ selected\n")
    lines = against["diff"].splitlines()[2:]
    assert any(line.startswith("-") for line in lines)
    assert any(line.startswith("+") for line in lines)
    await stack.ok("DELETE", f"/sessions/{other.session_id}", "alice", 202)

    # Once observed, the session no longer takes chat or edits.
    late = await stack.call("POST", base + "/messages", "alice", json={"message": "more"})
    assert late.status_code == 409 and late.json()["detail"].startswith("cannot chat in stage")
    assert (await stack.call("POST", base + "/rollback", "carol", json={})).status_code == 404

    rolled = await stack.ok("POST", base + "/rollback", "alice", 202, json={"reason": "done"})
    assert rolled["action"] == "rollback"
    final = await stack.wait_for("alice", session, lambda s: s.stage == "rolled_back")
    assert final.deployment and final.deployment.status == "rolled_back"
    assert not (folder / "kustomization.yaml").exists()
    actions = [h.action for h in final.history]
    for action in ("message", "edited", "what_if", "selected", "approved", "deployed"):
        assert action in actions
    assert actions[-1] == "rolled_back"
    entry = next(
        s for s in await stack.ok("GET", "/sessions", "alice") if s["session_id"] == session
    )
    assert entry["stage"] == "rolled_back"


# ---- the assistant's own numbers ------------------------------------------------------------


def exposed(text: str) -> dict[str, float]:
    """Prometheus text format as {series: value}, each metric also summed over its use cases
    under its name with the other labels (`preflight_deploys_total{outcome="failed"}`)."""
    found: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            found[series] += float(value)
            name, _, labels = series.partition("{")
            kept = [p for p in labels.rstrip("}").split(",") if p and not p.startswith("use_case=")]
            if len(kept) < len([p for p in labels.rstrip("}").split(",") if p]):
                found[name + (f"{{{','.join(kept)}}}" if kept else "")] += float(value)
    return dict(found)


async def test_the_assistants_metrics_move_with_what_people_do(stack: Stack) -> None:
    async def metrics() -> dict[str, float]:
        response = await stack.http.get("/metrics")  # no key: counts only, like /health
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return exposed(response.text)

    before = await metrics()
    state = await stack.explore("alice")
    base = f"/sessions/{state.session_id}"
    await stack.ok("PATCH", base + "/spec", "alice", json={"changes": {"target_ttft_p90_ms": 900}})
    edited = await stack.state("alice", state.session_id)
    assert edited.recommendations
    option = edited.recommendations.options[0]
    await stack.ok("POST", base + "/select", "alice", json={"option_id": option.id})
    await stack.ok("POST", base + "/approve", "bob", 202, json={})
    await stack.wait_for("alice", state.session_id, lambda s: s.stage == "observe")

    def moved(after: dict[str, float]) -> dict[str, float]:
        return {k: after.get(k, 0) - before.get(k, 0) for k in after}

    deadline = time.monotonic() + 30  # the events are recorded just after the state changes
    while (delta := moved(await metrics()))['preflight_deploys_total{outcome="succeeded"}'] < 1:
        assert time.monotonic() < deadline, delta
        await asyncio.sleep(0.2)
    for name in (
        "preflight_sessions_total",
        "preflight_sessions_recommended_total",
        "preflight_sessions_accepted_total",
        "preflight_sessions_spec_edited_total",
        "preflight_time_to_deploy_seconds_count",
    ):
        assert delta[name] == 1, (name, delta)
    assert delta['preflight_deploys_total{outcome="failed"}'] == 0
    assert delta["preflight_reply_latency_seconds_count"] >= 1  # one per chat message
    after = await metrics()
    assert after['preflight_sessions_recommended_total{use_case="chatbot"}'] >= 1
    assert after['preflight_sessions_in_stage{stage="observe"}'] >= 1
    assert (
        after['preflight_reply_latency_seconds_bucket{le="+Inf"}']
        == (after["preflight_reply_latency_seconds_count"])
    )

    summary = await stack.ok("GET", "/insights", "admin")
    assert summary["sessions"] >= 1
    assert summary["deploy_success_rate"]["target"] == 0.95
    assert summary["time_to_deploy_p90_s"]["target"] == 600
    assert summary["time_to_deploy_p90_s"]["met"] is True  # seconds here, not minutes
    assert summary["reply_latency_p90_s"]["value"] > 0
    assert "values" not in summary["counts"]["reply_latency_s"]  # counts, never observations
    assert 0 < summary["acceptance_rate"]["value"] <= 1
    assert (await stack.call("GET", "/insights", "alice")).status_code == 403
    page = await stack.call("GET", "/i", "admin")
    assert page.status_code == 200 and "How the assistant does" in page.text
    assert 'href="/i"' in page.text  # in an admin's menu
    assert 'href="/i"' not in (await stack.call("GET", "/", "alice")).text
