"""Errors are answers: hostile input gets a 4xx in the documented shape and the connection stays open.

Each case sends its request and then a health check on the same HTTP/1.1 connection: a server
that crashed on the first request (a 500 from an unhandled exception) drops the connection, and
the second request fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from shared.config import Settings
from shared.runtime import Runtime
from tests.factories import order_body
from tests.fixtures.live_api import RawResponse, csrf_of, live_api, one_connection, raw_request, sign_in
from workers.api.tokens import create_token
from workers.dlq.console import users
from workers.dlq.console.auth import COOKIE

ERROR_KEYS = {"error", "message", "fields"}


@pytest.fixture
def server(settings: Settings, clean_db: Runtime) -> Iterator[str]:
    with live_api(settings) as url:
        yield url


@pytest.fixture
def token(clean_db: Runtime) -> str:
    with clean_db.sessions.begin() as session:
        return create_token(session, "checkout")


@pytest.fixture
def operator(clean_db: Runtime) -> str:
    with clean_db.sessions.begin() as session:
        users.add_user(session, "olivia", "correct horse battery", "operator")
    return "olivia"


def assert_error_shape(response: RawResponse, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status == status, response.body[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.body)
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["fields"], list)
    if code is not None:
        assert body["error"] == code
    return dict(body)


def then_the_connection_still_serves(connection) -> None:
    assert raw_request(connection, "GET", "/healthz").status == 200


def test_a_non_ascii_webhook_signature_is_a_401_and_the_connection_stays_open(server):
    with one_connection(server) as connection:
        response = raw_request(
            connection,
            "POST",
            "/v1/carrier/webhooks",
            body=b"{}",
            headers={"Carrier-Signature": "t=1,v1=\u00e9\u00e9", "Content-Type": "application/json"},
        )
        assert_error_shape(response, 401, "invalid_signature")
        then_the_connection_still_serves(connection)


def test_a_nul_in_a_user_id_is_a_400_and_the_connection_stays_open(server, token):
    with one_connection(server) as connection:
        response = raw_request(
            connection,
            "GET",
            "/v1/users/a%00b/notification-preferences",
            headers={"Authorization": f"Bearer {token}"},
        )
        body = assert_error_shape(response, 400, "invalid_characters")
        assert "control character" in str(body["message"])
        then_the_connection_still_serves(connection)


def test_a_chunked_body_over_the_size_limit_is_a_413_in_the_error_shape(server, token, settings):
    body = json.dumps(order_body() | {"pad": "x" * (settings.api_max_body_bytes + 10)}).encode()
    with one_connection(server) as connection:
        response = raw_request(
            connection,
            "POST",
            "/v1/orders",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            chunked=True,
        )
        assert_error_shape(response, 413, "payload_too_large")


def test_a_body_that_is_not_utf8_is_a_4xx_in_the_error_shape(server, token):
    with one_connection(server) as connection:
        response = raw_request(
            connection,
            "POST",
            "/v1/orders",
            body=b'{"order_id": "\xff\xfe"}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status in (400, 422)
        assert_error_shape(response, response.status)
        then_the_connection_still_serves(connection)


def test_unknown_routes_and_methods_answer_in_the_error_shape(server):
    with one_connection(server) as connection:
        assert_error_shape(raw_request(connection, "GET", "/v1/nowhere"), 404, "not_found")
        missing_method = raw_request(connection, "DELETE", "/v1/orders")
        assert_error_shape(missing_method, 405, "method_not_allowed")
        assert "POST" in missing_method.headers["allow"]
        then_the_connection_still_serves(connection)


def test_an_unexpected_exception_is_a_500_in_the_error_shape_and_the_connection_stays_open(
    settings, clean_db
):
    from tests.fixtures.sandbox import serve_app
    from workers.api.app import create_app

    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug, with a secret inside: s3cr3t")

    with serve_app(app, lifespan="on") as url, one_connection(url) as connection:
        body = assert_error_shape(raw_request(connection, "GET", "/boom"), 500, "internal_error")
        assert "s3cr3t" not in str(body["message"])
        then_the_connection_still_serves(connection)


def test_a_non_ascii_console_cookie_signature_is_no_session_at_all(server):
    with one_connection(server) as connection:
        response = raw_request(
            connection, "GET", "/console/", headers={"Cookie": f"{COOKIE}=e30.\u00e9\u00e9\u00e9"}
        )
        assert response.status == 303
        assert response.headers["location"].endswith("/console/login")
        then_the_connection_still_serves(connection)


def test_a_non_ascii_csrf_value_is_refused_with_403(server):
    with httpx.Client(base_url=server) as client:
        client.get("/console/login")
        response = client.post(
            "/console/login",
            content="csrf=%C3%A9%C3%A9&name=x&password=y",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_a_nul_in_the_console_login_name_is_refused_with_400(server, operator):
    with httpx.Client(base_url=server) as client:
        form = client.get("/console/login")
        response = client.post(
            "/console/login", data={"csrf": csrf_of(form), "name": "oli\x00via", "password": "whatever"}
        )
        after = client.get("/healthz")
    assert response.status_code == 400
    assert "control character" in response.text
    assert after.status_code == 200


@pytest.mark.parametrize("path", ["/console/messages?text=a%00b", "/console/groups?queue=%00"])
def test_a_nul_in_a_console_filter_is_refused_with_400(server, operator, path):
    with httpx.Client(base_url=server) as client:
        assert sign_in(client, operator).status_code == 303
        response = client.get(path)
    assert response.status_code == 400
    assert "control character" in response.text


def test_a_nul_in_a_console_action_form_is_refused_with_400(server, operator):
    with httpx.Client(base_url=server) as client:
        signed_in = sign_in(client, operator)
        page = client.get(signed_in.headers["location"])
        response = client.post("/console/actions/purge", data={"csrf": csrf_of(page), "queue": "a\x00"})
    assert response.status_code == 400
    assert "control character" in response.text


def test_every_route_documents_its_error_statuses_with_the_error_shape(server):
    document = httpx.get(f"{server}/openapi.json").json()
    error_body = {"$ref": "#/components/schemas/ErrorBody"}

    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == ERROR_KEYS
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
            assert {"400", "500"} <= set(errors), (method, path)
            for code, response in errors.items():
                assert response["content"]["application/json"]["schema"] == error_body, (method, path, code)
    assert {"404", "409", "413", "422"} <= set(
        document["paths"]["/v1/orders/{order_id}/cancel"]["post"]["responses"]
    )
    assert "401" in document["paths"]["/v1/carrier/webhooks"]["post"]["responses"]
