"""Hypothesis against the live app's unauthenticated and console inputs: zero 5xx, always the shape.

The webhook's `Carrier-Signature` header and body, the console cookie, the CSRF field, the login
form and the console's filters are what an outsider (or a signed-in viewer) controls. Each is
fuzzed through a real uvicorn server over one keep-alive client, so a crash shows up as a 5xx or a
dropped connection. Header values are any Latin-1 text HTTP allows on the wire (h11 refuses
control characters before they leave the client).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import Settings
from shared.dead_letters.filter import Filter
from shared.runtime import Runtime
from tests.fixtures.live_api import csrf_of, live_api, sign_in
from workers.dlq.console import users
from workers.dlq.console.auth import COOKIE

FUZZ = settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: What HTTP carries in a header value: visible Latin-1 and spaces, no control characters.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")).map(
    lambda text: text.strip(" ")
)
#: Form and query text: anything at all, control characters and astral planes included.
ANY_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
FILTER_FIELDS = st.sampled_from([*Filter.__dataclass_fields__, "csrf", "other"])


@pytest.fixture(scope="module")
def server(settings: Settings, runtime: Runtime) -> Iterator[str]:
    with runtime.sessions.begin() as session:
        users.add_user(session, "fuzz-viewer", "correct horse battery", "viewer")
    with live_api(settings) as url:
        yield url


@pytest.fixture(scope="module")
def visitor(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def viewer(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        assert sign_in(client, "fuzz-viewer").status_code == 303
        yield client


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.headers.get("content-type", "").startswith("application/json") and response.is_error:
        assert set(response.json()) == {"error", "message", "fields"}


@FUZZ
@given(header=HEADER_TEXT, body=st.binary(max_size=300))
def test_any_webhook_signature_and_body_get_a_4xx_in_the_error_shape(visitor, header, body):
    response = visitor.post(
        "/v1/carrier/webhooks",
        content=body,
        headers={"Carrier-Signature": header.encode("latin-1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert set(response.json()) == {"error", "message", "fields"}


@FUZZ
@given(v1=HEADER_TEXT.filter(lambda text: "," not in text))
def test_any_v1_value_next_to_a_current_timestamp_gets_a_401(visitor, v1):
    header = f"t={int(time.time())},v1={v1}".encode("latin-1")
    response = visitor.post("/v1/carrier/webhooks", content=b"{}", headers={"Carrier-Signature": header})
    assert response.status_code == 401
    assert json.loads(response.text)["error"] == "invalid_signature"


@FUZZ
@given(cookie=HEADER_TEXT.filter(lambda text: ";" not in text))
def test_any_console_cookie_is_no_session_and_never_a_server_error(server, cookie):
    header = f"{COOKIE}={cookie}".encode("latin-1")
    with httpx.Client(base_url=server, timeout=10) as client:
        response = client.get("/console/", headers={"Cookie": header})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/console/login")


@FUZZ
@given(csrf=ANY_TEXT, name=ANY_TEXT, password=ANY_TEXT)
def test_any_csrf_and_login_form_is_refused_or_answered_never_a_server_error(visitor, csrf, name, password):
    visitor.get("/console/login")
    response = visitor.post("/console/login", data={"csrf": csrf, "name": name, "password": password})
    assert_answered(response)
    assert response.status_code in (400, 403)


@FUZZ
@given(
    fields=st.dictionaries(FILTER_FIELDS, ANY_TEXT, max_size=4),
    page=st.sampled_from(["messages", "groups"]),
)
def test_any_console_filter_is_a_page_or_a_400_never_a_server_error(viewer, fields, page):
    response = viewer.get(f"/console/{page}", params=fields)
    assert_answered(response)
    assert response.status_code in (200, 400)


@FUZZ
@given(fields=st.dictionaries(FILTER_FIELDS, ANY_TEXT, max_size=4))
def test_any_posted_filter_is_refused_for_a_viewer_never_a_server_error(viewer, fields):
    page = viewer.get("/console/audit")
    form = {"csrf": csrf_of(page), **fields} if "csrf" not in fields else fields
    response = viewer.post("/console/actions/purge", data=form)
    assert_answered(response)
    assert response.status_code in (400, 403)
