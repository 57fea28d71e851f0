"""Service tokens carry scopes (`enqueue`, `read`), checked per route, through the live API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.migrate import alembic_config, create_database_if_missing
from shared.runtime import Runtime
from tests.factories import order_body
from tests.fixtures.live_api import live_api
from workers.api.tokens import create_token, hash_token

ORDER = "/v1/orders/6f1c1e8e-0000-4000-8000-000000000000"
PREFERENCES = "/v1/users/u-1/notification-preferences"


@pytest.fixture
def server(settings: Settings, clean_db: Runtime) -> Iterator[str]:
    with live_api(settings) as url:
        yield url


def token_with(runtime: Runtime, *scopes: str) -> dict[str, str]:
    with runtime.sessions.begin() as session:
        return {"Authorization": f"Bearer {create_token(session, 'checkout', scopes=scopes)}"}


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert set(response.json()) == {"error", "message", "fields"}


def test_a_read_only_token_reads_but_cannot_enqueue(server, clean_db):
    headers = token_with(clean_db, "read")

    placed = httpx.post(f"{server}/v1/orders", json=order_body(), headers=headers)
    cancelled = httpx.post(f"{server}{ORDER}/cancel", json={}, headers=headers)
    opted_out = httpx.put(f"{server}{PREFERENCES}/email", json={"opted_out": True}, headers=headers)
    read = httpx.get(f"{server}{ORDER}", headers=headers)
    preferences = httpx.get(f"{server}{PREFERENCES}", headers=headers)

    for refused in (placed, cancelled, opted_out):
        assert_refused(refused, 403, "missing_scope")
        assert "enqueue" in refused.json()["message"]
    assert read.status_code == 404  # allowed through; the order just does not exist
    assert preferences.status_code == 200


def test_an_enqueue_only_token_enqueues_but_cannot_read(server, clean_db):
    headers = token_with(clean_db, "enqueue")

    placed = httpx.post(f"{server}/v1/orders", json=order_body(), headers=headers)
    read = httpx.get(f"{server}{ORDER}", headers=headers)
    preferences = httpx.get(f"{server}{PREFERENCES}", headers=headers)

    assert placed.status_code == 202, placed.text
    assert_refused(read, 403, "missing_scope")
    assert_refused(preferences, 403, "missing_scope")


def test_no_token_or_an_unknown_token_is_401_before_any_scope_check(server, clean_db):
    for headers in ({}, {"Authorization": "Bearer circ_nope"}, {"Authorization": "Basic eDp5"}):
        response = httpx.get(f"{server}{ORDER}", headers=headers)
        assert_refused(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_openapi_document_names_the_scope_each_route_needs(server):
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]

    assert paths["/v1/orders"]["post"]["security"] == [{"ServiceToken": ["enqueue"]}]
    assert paths["/v1/orders/{order_id}"]["get"]["security"] == [{"ServiceToken": ["read"]}]
    assert paths["/v1/users/{user_id}/notification-preferences"]["get"]["security"] == [
        {"ServiceToken": ["read"]}
    ]
    for operation in (paths["/v1/orders"]["post"], paths["/v1/orders/{order_id}"]["get"]):
        for status in ("400", "401", "403", "422", "500"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_token_create_on_the_command_line_takes_scopes(settings, clean_db):
    env = dict(os.environ, CIRCULATE_DATABASE_URL=settings.database_url, CIRCULATE_AMQP_URL=settings.amqp_url)
    cli = [str(Path(sys.executable).parent / "circulate"), "token", "create"]

    created = subprocess.run([*cli, "reporting", "--scope", "read"], env=env, capture_output=True, text=True)
    missing = subprocess.run([*cli, "reporting"], env=env, capture_output=True, text=True)
    unknown = subprocess.run([*cli, "reporting", "--scope", "admin"], env=env, capture_output=True, text=True)

    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    with clean_db.sessions() as session:
        scopes = session.execute(
            text("SELECT scopes FROM api_tokens WHERE token_hash = :hash"), {"hash": hash_token(token)}
        ).scalar_one()
    assert scopes == ["read"]
    assert missing.returncode == 2 and "--scope" in missing.stderr
    assert unknown.returncode == 2 and "admin" in unknown.stderr


def test_tokens_issued_before_scopes_existed_keep_both_scopes(settings):
    # Given a database at the revision that created api_tokens, holding one token
    url = make_url(settings.database_url)
    scratch = settings.model_copy(
        update={
            "database_url": url.set(database=f"{url.database}_scopes").render_as_string(hide_password=False)
        }
    )
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{url.database}_scopes" WITH (FORCE)')
    create_database_if_missing(scratch)
    engine = create_engine(scratch.database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001_core")
            connection.execute(
                text("INSERT INTO api_tokens (service, token_hash) VALUES ('checkout', :hash)"),
                {"hash": hash_token("circ_old")},
            )
            # When every head is upgraded
            command.upgrade(config, "heads")
            # Then the old token can still do everything it could before
            scopes = connection.execute(text("SELECT scopes FROM api_tokens")).scalar_one()
        assert sorted(scopes) == ["enqueue", "read"]
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{url.database}_scopes" WITH (FORCE)')
