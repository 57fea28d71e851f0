"""The enqueue path on the event loop: a request racing another under one key, and the token cache."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.config import Settings
from shared.db import libpq_url
from shared.idempotency import canonical_json
from shared.outbox import WAKE_CHANNEL
from tasks.fulfilment.messages import PlaceOrder
from tests.factories import order_body
from tests.fixtures.live_api import outbox_count
from tests.fixtures.services import wait_until
from workers.api.callers import CallerCache
from workers.api.idempotency import request_hash
from workers.api.pool import build_pool
from workers.api.tokens import Caller, create_token, revoke_tokens

_WAITING_ON_A_LOCK = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"


def test_a_request_racing_another_under_its_key_gets_the_409_not_a_500(api, settings, runtime):
    # Given another request under key k-race, not yet committed (its row is held by this test)
    with psycopg.connect(libpq_url(settings)) as held:
        held.execute(
            "INSERT INTO api_idempotency (service, idempotency_key, request_hash, status_code, "
            "response_body) VALUES ('checkout', 'k-race', 'another-body', 202, %s)",
            (Jsonb({"status": "accepted"}),),
        )
        answer: dict[str, Any] = {}

        def post() -> None:
            response = api.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "k-race"})
            answer.update(status=response.status_code, body=response.json())

        # When this request reaches the key and waits for the other to finish
        sender = threading.Thread(target=post)
        sender.start()
        with psycopg.connect(libpq_url(settings), autocommit=True) as watcher:

            def request_waits_on_the_key() -> bool:
                row = watcher.execute(_WAITING_ON_A_LOCK, ("%api_idempotency%",)).fetchone()
                return row is not None and row[0] == 1

            wait_until(request_waits_on_the_key)
        held.commit()
        sender.join(timeout=10)
    # Then it gets the other request's verdict (another body: 409), and queued nothing
    assert answer["status"] == 409, answer
    assert answer["body"]["error"] == "idempotency_key_reused"
    assert outbox_count(runtime) == 0


def test_a_valid_token_is_remembered_for_the_cache_time_and_a_revoked_one_then_refused(settings, clean_db):
    with clean_db.sessions.begin() as session:
        token = create_token(session, "checkout")
    now = [0.0]

    async def scenario() -> list[Caller | None]:
        pool = build_pool(settings)
        await pool.open(wait=True)
        try:
            cache = CallerCache(pool, ttl_s=5.0, clock=lambda: now[0])
            seen = [await cache.caller_for(token), await cache.caller_for("circ_unknown")]
            with clean_db.sessions.begin() as session:
                revoke_tokens(session, "checkout")
            now[0] = 4.9
            seen.append(await cache.caller_for(token))
            now[0] = 5.1
            seen.append(await cache.caller_for(token))
            return seen
        finally:
            await pool.close()

    first, unknown, within_ttl, after_ttl = asyncio.run(scenario())
    assert first is not None and first.service == "checkout"
    assert unknown is None
    assert within_ttl == first
    assert after_ttl is None


def test_an_accepted_order_wakes_the_relay_when_its_transaction_commits(api, settings):
    # LISTEN where the relay listens: past any pooler (make pgbouncer), as in production.
    direct = settings.model_copy(
        update={"database_url": settings.database_direct_url or settings.database_url}
    )
    with psycopg.connect(libpq_url(direct), autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        assert api.post("/v1/orders", json=order_body()).status_code == 202
        woken = list(listener.notifies(timeout=10, stop_after=1))
    assert [n.channel for n in woken] == [WAKE_CHANNEL]


def _stored_digest(settings: Settings, key: str) -> str:
    with psycopg.connect(libpq_url(settings)) as conn:
        row = conn.execute(
            "SELECT request_hash FROM api_idempotency WHERE idempotency_key = %s", (key,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_key_is_remembered_with_the_digest_of_the_payload_s_canonical_json(api, settings):
    body = order_body()
    assert api.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-digest"}).status_code == 202
    canonical = canonical_json(PlaceOrder.model_validate(body).model_dump(mode="json"))
    assert _stored_digest(settings, "k-digest") == request_hash("POST", "/v1/orders", canonical.encode())


def test_a_key_remembered_under_the_earlier_digest_still_replays_its_answer(api, settings, runtime):
    # Given a key remembered as the API stored it before the digest's spelling changed
    body = order_body()
    first = api.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-before"})
    data = PlaceOrder.model_validate(body).model_dump(mode="json")
    earlier = request_hash("POST", "/v1/orders", json.dumps(data, sort_keys=True).encode())
    with psycopg.connect(libpq_url(settings)) as conn:
        conn.execute(
            "UPDATE api_idempotency SET request_hash = %s WHERE idempotency_key = 'k-before'", (earlier,)
        )
    # When the request is retried, and when the key is reused with another body
    retried = api.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-before"})
    reused = api.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "k-before"})
    # Then the retry gets the first answer, the other body a 409, and one job was queued
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (202, "true")
    assert retried.json() == first.json()
    assert (reused.status_code, reused.json()["error"]) == (409, "idempotency_key_reused")
    assert outbox_count(runtime) == 1
