"""The dead-letter console in a real browser: Playwright drives Debian's Chromium (headless).

The API app, with the console included, runs under uvicorn in a thread (lifespan on, as in
production). An operator signs in, opens a failure group, re-drives it through the confirmation
step and finds the audit entry; a viewer sees no action buttons; forged POSTs get 403.
Screenshots of each step go to artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from shared.config import Settings
from shared.dead_letters import archive
from shared.dead_letters.filter import Filter
from shared.dead_letters.record import record
from shared.runtime import Runtime
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import queue_depth, wait_until
from workers.api.app import create_app
from workers.dlq.console import users
from workers.dlq.console.app import build_console

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is missing at /usr/bin/chromium: run scripts/install-browser.sh",
)


class ConsoleSettings(Settings):
    """The test settings plus a console secret (whether or not Settings declares one yet)."""

    console_secret: SecretStr = SecretStr("test-console-secret-" + "x" * 32)


@contextmanager
def serving(app_settings: Settings) -> Iterator[str]:
    """The API app with the console under uvicorn in a thread; yields the console's base URL."""
    app = create_app(app_settings)
    if not any(getattr(route, "path", "").startswith("/console") for route in app.routes):
        app.include_router(build_console(app_settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive())
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/console"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def console_url(settings: Settings, clean_db: Runtime, broker) -> Iterator[str]:
    with serving(ConsoleSettings(**settings.model_dump(exclude={"console_secret"}))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def seed(runtime: Runtime) -> str:
    """Two orders that died for the same reason (one group) and two console users."""
    with runtime.sessions.begin() as session:
        for _ in range(2):
            payload = place_order()
            body = {
                "queue_name": "fulfilment", "actor_name": payload.kind, "args": [], "options": {},
                "kwargs": message_kwargs(payload, envelope_for(payload)), "message_id": str(uuid.uuid4()),
                "message_timestamp": int(time.time() * 1000),
            }  # fmt: skip
            record(
                session, message_id=body["message_id"], queue_name="fulfilment", actor_name=payload.kind,
                message=json.dumps(body), exception_type="CarrierUnavailable", attempts=3, host="worker-1",
                reason=f"carrier answered 503 for order {payload.order_id}", traceback="Traceback: ...",
            )  # fmt: skip
        users.add_user(session, "olivia", PASSWORD, "operator")
        users.add_user(session, "victor", PASSWORD, "viewer")
        return archive.groups(session, Filter())[0].group_key


def sign_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/")
    assert page.url.endswith("/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def forge(url: str, form: dict[str, str | None], cookies: dict[str, str]) -> httpx.Response:
    """A POST built by hand, as a forged cross-site form would be, carrying the given cookies."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return httpx.post(url, data=form, headers={"Cookie": header} if header else {})


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def test_an_operator_redrives_a_group_through_the_confirmation_step_and_sees_the_audit_entry(
    console_url, browser, settings, runtime
):
    group = seed(runtime)
    page = browser.new_page()

    sign_in(page, console_url, "olivia")
    shot(page, "1-queues")
    page.click("text=Groups")
    shot(page, "2-groups")
    page.click(f"text={group}")
    assert page.locator("tbody tr").count() == 2
    page.locator("tbody tr a").first.click()
    body = page.content()
    assert "carrier answered 503" in body and "order &lt;uuid&gt;" not in body
    assert "@example.com" not in body and "High Street" not in body and "N1 1AA" not in body
    shot(page, "3-message")

    page.goto(console_url + "/groups")
    page.click("text=Re-drive…")
    assert page.locator("h1").inner_text() == "Re-drive 2 message(s)?"
    shot(page, "4-confirm")
    page.click("button:has-text('Re-drive 2 message(s)')")
    page.wait_for_url(console_url + "/audit")
    entry = page.locator("tr.audit-entry").first.inner_text()
    assert "olivia" in entry and "console" in entry and "redrive" in entry and f"group={group}" in entry
    shot(page, "5-audit")

    with runtime.sessions() as session:
        assert archive.count(session, Filter(status="redriven")) == 2
    wait_until(lambda: queue_depth(settings, "fulfilment") == 2)


def test_a_viewer_sees_no_action_buttons_and_forged_posts_are_refused(console_url, browser, runtime):
    group = seed(runtime)
    viewer = browser.new_page()
    sign_in(viewer, console_url, "victor")
    viewer.goto(console_url + "/groups")
    assert viewer.locator("text=Re-drive…").count() == 0
    viewer.click(f"text={group}")
    assert viewer.locator("a.button").count() == 0
    shot(viewer, "6-viewer")

    operator = browser.new_page()
    sign_in(operator, console_url, "olivia")
    operator_cookie = {c["name"]: c["value"] for c in operator.context.cookies()}
    viewer_cookie = {c["name"]: c["value"] for c in viewer.context.cookies()}
    viewer_csrf = viewer.locator("input[name=csrf]").first.get_attribute("value")
    purge = f"{console_url}/actions/purge"
    no_token = forge(purge, {"group": group}, operator_cookie)
    wrong_token = forge(purge, {"group": group, "csrf": "guess"}, operator_cookie)
    as_viewer = forge(purge, {"group": group, "csrf": viewer_csrf}, viewer_cookie)
    signed_out = forge(purge, {"group": group, "csrf": viewer_csrf}, {})

    login_without_token = forge(f"{console_url}/login", {"name": "olivia", "password": PASSWORD}, {})

    refused = (no_token, wrong_token, as_viewer, signed_out, login_without_token)
    assert [r.status_code for r in refused] == [403] * 5
    assert "CSRF" in no_token.text and "viewer" in as_viewer.text
    with runtime.sessions() as session:
        assert archive.count(session, Filter(status="purged")) == 0
        assert archive.audit_log(session) == []


def test_without_a_console_secret_the_console_answers_503_and_the_api_still_works(settings, clean_db):
    with serving(settings.model_copy(update={"console_secret": None})) as url:
        page = httpx.get(url + "/")
        health = httpx.get(url.removesuffix("/console") + "/healthz")

    assert page.status_code == 503 and "CIRCULATE_CONSOLE_SECRET" in page.text
    assert health.status_code == 200
