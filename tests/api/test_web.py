"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright against the
real stack (Temporal dev server, worker with the real activities, the API on a real port, a
GitOps folder and a rehearsal of the deployment on the emulator with a real Prometheus).

One test walks the whole journey a user takes, pressing keys rather than clicking, and
writes a screenshot of each step to `tests/artifacts/journey/`. Chromium comes from Debian
(`apt-get install chromium`); a browser is never downloaded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Dialog, Locator, Page, async_playwright, expect

from activities.rehearsal import RehearsalActivities
from api.app import create_app
from api.identity import CSRF_HEADER, SESSION_COOKIE
from api.keys import add_key
from settings import Settings
from tests.conftest import free_port, kb_copy, temporal_dev_server
from worker import build_worker

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CHROMIUM = Path(os.environ.get("PREFLIGHT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "journey"
USERS = {"alice": ["requester"], "bob": ["requester", "approver"], "admin": ["admin"]}
DESCRIBE = "a customer support chatbot for 1000 employees, budget $20,000 a month"
SLOW = 120_000
"""Milliseconds to wait for what a worker does: planning, deploying, a monitor's checks."""

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def stack_settings(state_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        state_dir=state_dir,
        api_keys_file=state_dir / "api_keys.json",
        deploy_mode="gitops",
        **overrides,
    )


# ---- sign-in and the pages, without a browser ------------------------------------------------


@pytest.fixture
def signed(tmp_path: Path, seeded_sqlite_url: str) -> tuple[httpx.AsyncClient, dict[str, str]]:
    settings = stack_settings(tmp_path, kb_copy(seeded_sqlite_url, tmp_path))
    keys = {u: add_key(settings.resolved_api_keys_file, u, r) for u, r in USERS.items()}
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://preflight"), keys


async def test_pages_need_sign_in_and_the_cookie_holds_the_key_out_of_scripts(
    signed: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, keys = signed
    page = await http.get("/s/session-" + "a" * 32)
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=/s/session-" + "a" * 32

    wrong = await http.post("/sign-in", content="key=pf_nobody&next=/d", headers=FORM)
    assert wrong.status_code == 401 and "That API key is not known." in wrong.text
    assert SESSION_COOKIE not in wrong.cookies

    right = await http.post("/sign-in", content=f"key={keys['alice']}&next=/d", headers=FORM)
    assert right.status_code == 303 and right.headers["location"] == "/d"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie, cookie
    listed = await http.get("/deployments")  # the cookie signs API calls in too
    assert listed.status_code == 200 and listed.json() == []
    home = await http.get("/")
    assert home.status_code == 200 and 'Signed in as <strong id="me">alice</strong>' in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]

    # Another site's form can make the browser send the cookie, but not the page's header.
    forged = await http.post("/sessions", json={"message": DESCRIBE})
    assert forged.status_code == 403 and CSRF_HEADER in forged.json()["detail"]

    out = await http.post("/sign-out")
    assert out.status_code == 303 and (await http.get("/d")).status_code == 303


async def test_sign_in_goes_back_only_to_this_site(
    signed: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, keys = signed
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = await http.post(
            "/sign-in", content=f"key={keys['bob']}&next={target}", headers=FORM
        )
        assert response.headers["location"] == "/", target


async def test_behind_a_proxy_its_headers_sign_people_in(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    settings = stack_settings(
        tmp_path, kb_copy(seeded_sqlite_url, tmp_path), auth_mode="proxy_header"
    )
    transport = httpx.ASGITransport(app=create_app(settings), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://preflight") as http:
        headers = {"X-Forwarded-User": "dana@example.com", "X-Forwarded-Roles": "approver"}
        home = await http.get("/", headers=headers)
        assert home.status_code == 200 and "dana@example.com" in home.text
        assert "Sign out" not in home.text  # the proxy owns signing out
        assert (await http.get("/")).status_code == 303  # no headers, nobody


def test_the_pages_load_nothing_from_elsewhere() -> None:
    web = Path(__file__).parents[2] / "api"
    for path in [*(web / "pages").iterdir(), *(web / "static").iterdir()]:
        text = path.read_text()
        for match in re.finditer(r"(?:src|href|url|from|import)\s*[=(]?\s*[\"']?(\w+:)?//", text):
            raise AssertionError(f"{path.name} loads from elsewhere: {match.group(0)}")


async def test_the_api_docs_are_served_from_here(
    signed: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, _ = signed
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "https://" not in docs.text and "http://" not in docs.text
    for asset in re.findall(r"(?:href|src)=['\"](/docs-assets/[^'\"]+)", docs.text):
        assert (await http.get(asset)).status_code == 200, asset
    assert (await http.get("/redoc")).status_code == 404  # FastAPI's loads from a CDN


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ---- the journey in a browser --------------------------------------------------------------


@dataclass
class Stack:
    url: str
    keys: dict[str, str]
    settings: Settings


@asynccontextmanager
async def serving(state_dir: Path, seeded_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    """Temporal dev server, a worker with the real activities and the API on a real port."""
    async with await temporal_dev_server() as env:
        settings = stack_settings(
            state_dir,
            kb_copy(seeded_url, state_dir),
            temporal_address=env.client.service_client.config.target_host,
            **overrides,
        )
        keys = {u: add_key(settings.resolved_api_keys_file, u, r) for u, r in USERS.items()}
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with build_worker(env.client, settings, executor):
                running = asyncio.create_task(server.serve())
                while not server.started:
                    await asyncio.sleep(0.05)
                try:
                    yield Stack(f"http://127.0.0.1:{port}", keys, settings)
                finally:
                    server.should_exit = True
                    await running
                    RehearsalActivities(settings).stop_all()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, seeded_sqlite_url: str
) -> AsyncIterator[Stack]:
    """Deploys to a GitOps folder, rehearsed on the emulator, checked every 10 s."""
    async with serving(
        tmp_path_factory.mktemp("web"),
        seeded_sqlite_url,
        rehearse=True,
        monitor_interval=dt.timedelta(seconds=10),
        slo_window="1m",
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        await chromium.close()


Shot = Callable[[Page, str], Awaitable[None]]


@pytest.fixture
def shot() -> Shot:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    taken = 0

    async def take(page: Page, name: str) -> None:
        nonlocal taken
        taken += 1
        await page.screenshot(path=ARTIFACTS / f"{taken:02d}-{name}.png", full_page=True)

    return take


async def press(target: Locator) -> None:
    """Operate a control as a keyboard user does: focus it, press Enter."""
    await target.focus()
    await target.press("Enter")


async def sign_in(browser: Browser, stack: Stack, user: str, shot: Shot | None = None) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(stack.url + "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API key").fill(stack.keys[user])
    if shot:
        await shot(page, "sign-in")
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#me")).to_have_text(user)
    return page


ACCESSIBLE = (Path(__file__).parents[1] / "accessibility.js").read_text()


async def assert_accessible(page: Page) -> None:
    """Every visible control has a name, and all text meets WCAG AA contrast."""
    found = await page.evaluate(ACCESSIBLE)
    assert not found["unnamed"], f"controls without a label: {found['unnamed']}"
    assert not found["faint"], f"text below AA contrast: {found['faint']}"
    assert not page.problems, page.problems  # type: ignore[attr-defined]


@needs_chromium
async def test_a_whole_journey_from_words_to_a_rollback(
    stack: Stack, browser: Browser, shot: Shot
) -> None:
    # 1. Describe the use case.
    alice = await sign_in(browser, stack, "alice", shot)
    await shot(alice, "home")
    await assert_accessible(alice)
    await alice.get_by_label("Your use case, in plain words").fill(DESCRIBE)
    await press(alice.get_by_role("button", name="Start planning"))
    await alice.wait_for_url(re.compile(r"/s/session-[0-9a-f]{32}$"), timeout=SLOW)
    session_url = alice.url

    # 2. Answer the clarifying question with one of its quick answers.
    question = alice.locator(".question", has_text="time to first token")
    await expect(question).to_be_visible(timeout=SLOW)
    await expect(question.get_by_role("button", name="I don't know")).to_be_visible()
    await expect(alice.locator("#messages li.user")).to_have_text(re.compile("customer support"))
    await shot(alice, "question")
    # The question offers a chatbot's own targets (500 ms is usual).
    await expect(question).to_contain_text("500 ms is usual")
    await press(question.get_by_role("button", name="within 1 second"))
    options = alice.locator("#options tbody tr")
    await expect(options.first).to_be_visible(timeout=SLOW)
    ttft_target = alice.get_by_label("TTFT p90 target", exact=True)
    await expect(ttft_target).to_have_value("1000")
    await expect(alice.locator("#messages li.assistant")).to_have_count(2)
    assert await options.count() >= 3
    await expect(alice.locator("#options .badge").first).to_have_text(
        re.compile("measured|interpolated|modelled|observed")
    )
    await expect(alice.locator("#pareto circle").first).to_be_attached()
    await expect(alice.locator("#curve polyline").first).to_be_attached(timeout=SLOW)
    await shot(alice, "options")
    await assert_accessible(alice)

    # 3. Edit an SLO: a bad value is refused in place and changes nothing; a good one
    # re-plans at once.
    await ttft_target.fill("-5")
    await ttft_target.press("Enter")
    await expect(alice.locator("#spec-slo-ttft_p90_ms-error")).to_contain_text("TTFT p90 target")
    await ttft_target.fill("400")
    await ttft_target.press("Enter")
    await expect(alice.locator("#spec-slo-ttft_p90_ms-error")).to_be_empty(timeout=SLOW)
    await expect(ttft_target).to_have_value("400")
    first_ttft = alice.locator("#options tbody tr").first.locator("td").nth(1)
    await expect(first_ttft).to_contain_text("✓")
    assert await alice.locator("#options td.num .bad").count() == 0
    await shot(alice, "slo-edited")

    # 4. Pin a GPU in two what-if scenarios and compare them side by side.
    for name, gpu in (("on A100", "a100"), ("on L40S", "l40s")):
        await alice.get_by_label("Scenario name").fill(name)
        await alice.get_by_label("Pin a GPU").fill(gpu)
        await press(alice.get_by_role("button", name="Compare"))
        await expect(alice.locator("#scenarios thead th", has_text=name)).to_be_visible(
            timeout=SLOW
        )
    scenarios = alice.locator("#scenarios")
    gpus = scenarios.get_by_role("row", name=re.compile("^GPUs"))
    await expect(gpus).to_contain_text("A100")
    await expect(gpus).to_contain_text("L40S")
    await expect(scenarios.get_by_role("row", name=re.compile("^Differences"))).to_contain_text(
        "gpus:"
    )
    await shot(alice, "compare")

    # 5. Select the first option: its manifests are rendered, all new.
    chosen = alice.locator("#options tbody tr").first
    chosen_name = (await chosen.locator("th").first.inner_text()).split("\n")[0]
    await press(chosen.get_by_role("button", name=re.compile("^Select")))
    await expect(alice.locator("#approval-status")).to_contain_text("pending", timeout=SLOW)
    await expect(alice.locator("#manifests")).to_contain_text("new")
    await expect(
        alice.locator("#manifests .diff .add", has_text="kind: LLMInferenceService")
    ).to_be_visible()
    await expect(alice.get_by_role("button", name="Approve and deploy")).to_have_count(0)
    await shot(alice, "selected")

    # 6. A second user, an approver, finds it waiting and approves it.
    bob = await sign_in(browser, stack, "bob")
    waiting = bob.locator("#approvals a")
    await expect(waiting).to_contain_text("by alice", timeout=SLOW)
    await press(waiting.first)
    await expect(bob.locator("#manifests .diff").first).to_be_visible(timeout=SLOW)
    await bob.get_by_label("Comment for the requester").fill("fits the budget")
    await shot(bob, "approve")
    await assert_accessible(bob)
    await press(bob.get_by_role("button", name="Approve and deploy"))

    # 7. The deploy runs in GitOps mode, rehearsed on the emulator, stage by stage.
    await alice.goto(session_url)
    steps = alice.locator("#deploy-body .steps").first
    await expect(alice.locator("#stages [aria-current=step]")).to_have_text("observe", timeout=SLOW)
    for step in ("render ok", "apply ok", "rehearsal ok", "smoke test ok"):
        await expect(steps).to_contain_text(step)
    await expect(alice.locator("#deploy-body .badge.rehearsal")).to_be_visible()
    await expect(alice.locator("#approval-status")).to_contain_text("approved by bob")
    await expect(alice.locator("#deploy-body")).to_contain_text("First real request: TTFT")
    gitops = stack.settings.gitops_dir or stack.settings.state_dir / "gitops"
    written = list(gitops.rglob("*.yaml"))
    assert any("inferenceservice" in p.name.lower() for p in written), written
    await shot(alice, "deployed")

    # 8. The dashboard fills with live numbers, predicted next to actual.
    await press(alice.locator("#dashboard-link"))
    await expect(alice.locator("#dash-title")).to_contain_text("Deployment:")
    deployed_name = (await alice.locator("#dash-title").inner_text()).split(": ", 1)[1]
    await expect(alice.locator("#tiles .tile").first).to_contain_text("TTFT p90", timeout=SLOW)
    await expect(alice.locator("#tiles .tile").first).to_contain_text(re.compile(r"\d+(\.\d)? ms"))
    await expect(alice.locator("#tiles")).to_contain_text("predicted")
    await expect(alice.locator("#rehearsal-note")).to_contain_text("REHEARSAL")
    await expect(alice.locator("#slo-charts polyline").first).to_be_attached(timeout=SLOW)
    await expect(alice.locator("#checks tbody tr").first).to_contain_text("ms")
    await shot(alice, "dashboard")
    await assert_accessible(alice)
    assert chosen_name.split(". ", 1)[1] in await alice.locator("#dash-summary").inner_text()

    # 9. Roll back from the dashboard.
    async def confirm(dialog: Dialog) -> None:
        assert "Roll back" in dialog.message
        await dialog.accept()

    alice.once("dialog", confirm)
    await press(alice.get_by_role("button", name="Roll back"))
    await expect(alice.locator("#dash-actions")).to_contain_text("rolled back", timeout=SLOW)
    # The first revision had nothing before it: rolling back deletes it, here its files.
    await expect(alice.locator("#history")).to_contain_text("alice · delete")
    assert not [p for p in gitops.rglob("*.yaml") if "inferenceservice" in p.name.lower()]
    await shot(alice, "rolled-back")

    # The deployments list shows it; people see only their own sessions.
    await press(alice.get_by_role("link", name="Deployments"))
    row = alice.locator("#deployments tbody tr", has_text=deployed_name)
    await expect(row).to_contain_text("alice")
    await shot(alice, "deployments")
    await bob.goto(stack.url + "/")
    await expect(bob.locator("#sessions tbody")).to_contain_text("No sessions yet")
    await expect(bob.locator("#approvals")).to_contain_text("Nothing waits for you")

    # An admin sees how the assistant does against its targets; others have no such page.
    await expect(alice.get_by_role("link", name="Insights")).to_have_count(0)
    admin = await sign_in(browser, stack, "admin")
    await press(admin.get_by_role("link", name="Insights"))
    succeeded = admin.locator("#insights tbody tr", has_text="Deploys that succeed")
    await expect(succeeded).to_contain_text("100 %")
    await expect(succeeded).to_contain_text("at least 95 %")
    await expect(admin.locator("#insights tbody")).to_contain_text("rolled_back 1")
    await assert_accessible(admin)
    await shot(admin, "insights")


@needs_chromium
async def test_a_failed_deploy_says_why_and_shows_what_was_undone(
    browser: Browser, tmp_path: Path, seeded_sqlite_url: str
) -> None:
    """The endpoint never answers the smoke request: the step fails with the reason, the
    GitOps files written before it are removed again, and the session goes back to explore."""
    closed = f"http://127.0.0.1:{free_port()}"
    async with serving(tmp_path, seeded_sqlite_url, smoke_endpoint=closed) as failing:
        alice = await sign_in(browser, failing, "alice")
        await alice.get_by_label("Your use case, in plain words").fill(
            DESCRIBE + ", answers must start within 1 second"
        )
        await press(alice.get_by_role("button", name="Start planning"))
        first = alice.locator("#options tbody tr").first
        await press(first.get_by_role("button", name=re.compile("^Select")))
        await expect(alice.locator("#approval-status")).to_contain_text("pending", timeout=SLOW)

        bob = await sign_in(browser, failing, "bob")
        await bob.goto(alice.url)
        await press(bob.get_by_role("button", name="Approve and deploy"))

        body = alice.locator("#deploy-body")
        await expect(body.locator(".error")).to_contain_text(
            f"Failed: smoke test: smoke request to {closed} failed", timeout=SLOW
        )
        await expect(body.locator("h3", has_text="Deployment")).to_have_text("Deployment: failed")
        undone = body.get_by_role("list", name="Compensation steps")
        await expect(undone).to_contain_text("ok")
        await expect(alice.locator("#stages [aria-current=step]")).to_have_text("explore")
        await expect(alice.get_by_role("button", name=re.compile("^Select")).first).to_be_visible()
        gitops = failing.settings.state_dir / "gitops"
        assert not [p for p in gitops.rglob("*.yaml") if "inferenceservice" in p.name.lower()]
        await assert_accessible(alice)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await alice.screenshot(path=ARTIFACTS / "failed-deploy.png", full_page=True)
