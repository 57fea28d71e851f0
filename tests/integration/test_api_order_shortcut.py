"""`POST /v1/orders` answers the same with its shortcut (`workers.api.order_shortcut`) as without.

Two servers of the API on one database: the app as built, and the same app with no shortcut, so
every request goes through the framework's declared route. Each case sends the same request
(with ids of its own) to both, and the answers must agree in status, headers that matter and
body, ids aside.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.runtime import Runtime
from tests.factories import order_body
from tests.fixtures.live_api import outbox_count
from tests.fixtures.sandbox import serve_app
from workers.api.app import create_app
from workers.api.edge import RequestEdge
from workers.api.tokens import create_token

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEADERS = ("content-type", "idempotent-replayed", "www-authenticate", "retry-after")


def _without_shortcuts(settings: Settings) -> Any:
    app = create_app(settings)
    [edge] = [m for m in app.user_middleware if m.cls is RequestEdge]
    edge.kwargs["shortcuts"] = {}
    return app


@pytest.fixture
def servers(settings: Settings, clean_db: Runtime) -> Iterator[tuple[str, str]]:
    with (
        serve_app(create_app(settings), lifespan="on") as shortcut,
        serve_app(_without_shortcuts(settings), lifespan="on") as declared,
    ):
        yield shortcut, declared


@pytest.fixture
def tokens(clean_db: Runtime) -> dict[str, str]:
    with clean_db.sessions.begin() as session:
        return {
            "both": create_token(session, "checkout"),
            "read": create_token(session, "poller", scopes=["read"]),
        }


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], str]:
    """Status, the headers that matter, and the body with every uuid replaced by a placeholder."""
    headers = {name: response.headers[name] for name in _HEADERS if name in response.headers}
    return response.status_code, headers, _UUID.sub("<uuid>", response.text)


Send = Callable[[httpx.Client], list[httpx.Response]]


def _same_on_both(servers: tuple[str, str], token: str, send: Send) -> list[tuple[int, dict[str, str], str]]:
    answers = []
    for url in servers:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            answers.append([_answer(response) for response in send(client)])
    shortcut, declared = answers
    assert shortcut == declared
    return shortcut


def _json(body: dict[str, Any] | bytes, **headers: str) -> dict[str, Any]:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return {"content": content, "headers": {"Content-Type": "application/json", **headers}}


def test_an_order_a_replay_and_conflicts_get_the_same_answers(servers, tokens, runtime):
    def send(client: httpx.Client) -> list[httpx.Response]:
        body, key = order_body(), str(uuid.uuid4())
        return [
            client.post("/v1/orders", **_json(body, **{"Idempotency-Key": key})),
            client.post("/v1/orders", **_json(body, **{"Idempotency-Key": key})),  # a replay
            client.post("/v1/orders", **_json(order_body(), **{"Idempotency-Key": key})),  # key reused
            client.post("/v1/orders", **_json(body)),  # the same order again, no key
            client.post("/v1/orders", **_json({**body, "item_price_minor": 1})),  # another body
        ]

    statuses = [status for status, _, _ in _same_on_both(servers, tokens["both"], send)]
    assert statuses == [202, 202, 409, 202, 409]
    assert outbox_count(runtime) == 4  # per server: the order, and its resend queued again


def test_refusals_of_the_route_and_of_the_framework_get_the_same_answers(servers, tokens):
    stale = (datetime.now(UTC) - timedelta(days=40)).isoformat()

    def send(client: httpx.Client) -> list[httpx.Response]:
        return [
            client.post("/v1/orders", **_json(order_body(placed_at=stale))),
            client.post("/v1/orders", **_json(order_body(market="ZZ"))),
            client.post("/v1/orders", **_json(order_body(coupon="FREE"))),
            client.post("/v1/orders", **_json(b"{not json")),
            client.post("/v1/orders", **_json(b"")),
            client.post("/v1/orders", **_json(order_body(), **{"Idempotency-Key": "k" * 201})),
            client.post("/v1/orders", content=b"{}", headers={"Content-Type": "text/plain"}),
            client.post("/v1/orders", **_json(order_body(), Authorization="Bearer circ_unknown")),
            client.post("/v1/orders", **_json(order_body(), Authorization="Basic x")),
        ]

    answers = _same_on_both(servers, tokens["both"], send)
    assert all(400 <= status < 500 for status, _, _ in answers), answers


def test_a_token_without_the_enqueue_scope_gets_the_same_403(servers, tokens):
    def send(client: httpx.Client) -> list[httpx.Response]:
        return [client.post("/v1/orders", **_json(order_body()))]

    [(status, _, _)] = _same_on_both(servers, tokens["read"], send)
    assert status == 403


def _orders_counted(client: httpx.Client) -> float:
    line = 'circulate_http_requests_total{method="POST",route="/v1/orders",status="202"}'
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_an_order_served_by_the_shortcut_is_counted_under_its_route_template(servers, tokens):
    shortcut, _ = servers
    with httpx.Client(base_url=shortcut, headers={"Authorization": f"Bearer {tokens['both']}"}) as client:
        before = _orders_counted(client)
        assert client.post("/v1/orders", **_json(order_body())).status_code == 202
        assert _orders_counted(client) == before + 1


def test_a_request_the_shortcut_serves_skips_the_framework_s_outer_layers(settings, tokens, monkeypatch):
    """`workers.api.app.CirculateApi` hands a route with a shortcut to the edge directly; the
    framework's own layers (Starlette's entry and what it wraps around the middleware) see only
    the other routes."""
    import starlette.applications

    entered: list[str] = []
    framework = starlette.applications.Starlette.__call__

    async def entering(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            entered.append(scope["path"])
        await framework(self, scope, receive, send)

    monkeypatch.setattr(starlette.applications.Starlette, "__call__", entering)
    with (
        serve_app(create_app(settings), lifespan="on") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens['both']}"}, timeout=10
        ) as client,
    ):
        placed = client.post("/v1/orders", **_json(order_body()))
        declined = client.post("/v1/orders", **_json(b"{not json"))
        health = client.get("/healthz")
    assert (placed.status_code, declined.status_code, health.status_code) == (202, 422, 200)
    # The declined request went on from the edge to the routes inside it, not through the entry
    assert entered == ["/healthz"]
