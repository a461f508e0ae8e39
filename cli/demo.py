"""`preflight demo`: one whole session through the REST API of the running stack (`make run`),
as two people: alice describes and chooses, bob approves. It deploys in GitOps mode, so
nothing leaves the machine, and prints what happened at each step."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer

from api.keys import DEV_KEYS_FILE
from cli.console import fail
from settings import get_settings

DESCRIPTION = (
    "We want an internal support chatbot for about 1,000 employees; answers should start "
    "within a second, and the budget is $15,000 a month."
)
STAGE_TIMEOUT_S = 120.0


def demo(
    url: Annotated[
        str | None, typer.Option(help="API base URL (default: the embedded stack's).")
    ] = None,
) -> None:
    """Run a whole session non-interactively against the running stack and summarize it."""
    settings = get_settings()
    base = url or f"http://{settings.api_host}:{settings.api_port}"
    keys_file = settings.state_dir / DEV_KEYS_FILE
    try:
        keys: dict[str, str] = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        raise fail(
            f"no development API keys at {keys_file}: start the stack with `make run`"
        ) from None
    with httpx.Client(base_url=base, timeout=180.0) as client:
        try:
            client.get("/health").raise_for_status()
        except httpx.HTTPError:
            raise fail(f"nothing answers at {base}: start the stack with `make run`") from None
        Demo(client, keys["alice"], keys["bob"]).run()


class Demo:
    def __init__(self, client: httpx.Client, requester_key: str, approver_key: str) -> None:
        self.client = client
        self.alice = {"Authorization": f"Bearer {requester_key}"}
        self.bob = {"Authorization": f"Bearer {approver_key}"}

    def call(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        response = self.client.request(method, path, headers=who, json=body)
        if response.status_code >= 400:
            raise fail(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def run(self) -> None:
        say = typer.echo
        say(f"1. alice describes the use case:\n   {DESCRIPTION!r}")
        state = self.call("POST", "/sessions", self.alice, {"message": DESCRIPTION})
        session = state["session_id"]
        say(_indent(state["reply"]))
        while state["questions"]:
            asked = "; ".join(q["text"] for q in state["questions"])
            say(f"2. Preflight asks: {asked}\n   alice answers: I don't know")
            state = self.call(
                "POST", f"/sessions/{session}/messages", self.alice, {"message": "I don't know"}
            )
        options = state["recommendations"]["options"]
        if not options:
            raise fail("nothing is feasible: " + "; ".join(state["recommendations"]["relax"]))
        say(f"3. {state['recommendations']['feasible']} feasible configurations; the best:")
        for i, option in enumerate(options[:3], 1):
            say(_indent(f"{i}. {option['rationale']}"))

        best = options[0]["option"]
        other = next(
            (o["option"]["gpu_id"] for o in options if o["option"]["gpu_id"] != best["gpu_id"]),
            None,
        )
        if other:
            state = self.call(
                "POST",
                f"/sessions/{session}/what-if",
                self.alice,
                {"name": f"on {other}", "changes": {"gpu": other}},
            )
            say(f"4. What if it ran on {other}?")
            for row in state["scenarios"]:
                cost = f"${row['usd_per_month']:,.0f}/month" if row["usd_per_month"] else "n/a"
                say(_indent(f"{row['scenario']}: {row['model']} on {row['gpus']}, {cost}"))
                for difference in row["differences"]:
                    say(_indent(f"  {difference}"))

        chosen = options[0]["id"]
        state = self.call("POST", f"/sessions/{session}/select", self.alice, {"option_id": chosen})
        plan = state["prepared"]["plan"]
        say(
            f"5. alice selects {chosen}; {len(state['prepared']['manifests'])} manifests "
            f"rendered and validated for {plan['namespace']}/{plan['name']}, awaiting approval"
        )
        self.call("POST", f"/sessions/{session}/approve", self.bob, {"comment": "demo"})
        say("6. bob approves")
        state = self.wait(session, lambda s: s["stage"] in ("observe", "explore", "closed"))
        deployment = state["deployment"]
        say(f"7. deploy to {deployment['target']}: {deployment['status']}")
        for step in deployment["steps"]:
            say(_indent(f"{step['name']:16} {step['status']:8} {step['detail']}"))
        for step in deployment["compensations"]:
            say(_indent(f"compensation     {step['status']:8} {step['detail']}"))
        if state["stage"] != "observe":
            raise fail(f"the deploy failed: {deployment['error']}")
        if deployment["rehearsal"]:
            say(
                "   This is a REHEARSAL: no cluster runs the manifests, so an emulator (timed by "
                "the planner, no real model)\n   serves a little traffic shaped like the spec, "
                f"and a local Prometheus at {deployment['rehearsal']['prometheus_url']} scrapes it."
            )
        say(
            f"8. observing the SLOs every few minutes (session {session}).\n"
            f"   Roll back: curl -X POST {self.client.base_url}/sessions/{session}/rollback "
            "-H 'Authorization: Bearer <alice key>' -H 'Content-Type: application/json' -d '{}'"
        )

    def wait(self, session: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while True:
            state: dict[str, Any] = self.call("GET", f"/sessions/{session}", self.alice)
            if done(state):
                return state
            if time.monotonic() > deadline:
                raise fail(f"session {session} still in stage {state['stage']}")
            time.sleep(0.5)


def _indent(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())
