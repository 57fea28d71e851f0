"""The enqueue path on the event loop: a request racing another under one key, and the token cache."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.db import libpq_url
from shared.outbox import WAKE_CHANNEL
from tests.factories import order_body
from tests.fixtures.live_api import outbox_count
from tests.fixtures.services import wait_until
from workers.api.callers import CallerCache
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
