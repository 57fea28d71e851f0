"""While PostgreSQL is down the API answers 503 with `Retry-After` in the error shape, never 500.

The API runs against a PostgreSQL instance of this module's own (`tests.fixtures.own_services`),
stopped in the middle of each test and started again at its end: the answers a load balancer and
a client see during a database outage, and that the API serves again once it is back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.db import build_engine, build_sessionmaker
from shared.migrate import create_database_if_missing, migrate
from tests.factories import order_body
from tests.fixtures.sandbox import serve_app
from tests.fixtures.services import make_settings, wait_until
from workers.api.app import create_app
from workers.api.tokens import create_token

pytest_plugins = ["tests.fixtures.own_services"]

ERROR_KEYS = {"error", "message", "fields"}


@pytest.fixture(scope="module")
def down_settings(own_postgres: Any) -> Settings:
    # A short wait for a pooled connection, so a request during the outage is answered in a second.
    settings = make_settings(
        database_url=own_postgres.url("circulate_api_down"), database_direct_url=None, api_pool_timeout_s=1.0
    )
    create_database_if_missing(settings)
    migrate(settings)
    return settings


@pytest.fixture
def token(down_settings: Settings) -> str:
    engine = build_engine(down_settings, pool_size=1)
    try:
        with build_sessionmaker(engine).begin() as session:
            return create_token(session, "checkout")
    finally:
        engine.dispose()


@pytest.fixture
def client(down_settings: Settings, own_postgres: Any, token: str) -> Iterator[httpx.Client]:
    with serve_app(create_app(down_settings), lifespan="on") as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            yield http
    if not own_postgres.is_running():
        own_postgres.start()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == ERROR_KEYS
    assert body["error"] == "database_unavailable"
    assert body["fields"] == []


def test_an_order_placed_while_postgresql_is_down_gets_a_503_and_is_accepted_once_it_is_back(
    client, own_postgres
):
    assert client.post("/v1/orders", json=order_body()).status_code == 202  # the token is now cached
    own_postgres.stop()
    assert_unavailable(client.post("/v1/orders", json=order_body()))  # a pooled connection, now dead
    assert_unavailable(client.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "k-down"}))
    own_postgres.start()
    # The pool reconnects in the background, with a backoff; until then the answer stays a 503.
    wait_until(lambda: client.post("/v1/orders", json=order_body()).status_code == 202, timeout=30)


def test_reading_an_order_or_presenting_a_new_token_while_postgresql_is_down_gets_a_503(
    client, own_postgres, down_settings
):
    order = order_body()
    assert client.post("/v1/orders", json=order).status_code == 202
    own_postgres.stop()
    assert_unavailable(client.get(f"/v1/orders/{order['order_id']}"))  # the sync engine's path
    unknown = {"Authorization": "Bearer circ_never-seen-before"}
    assert_unavailable(client.post("/v1/orders", json=order_body(), headers=unknown))  # the token lookup
