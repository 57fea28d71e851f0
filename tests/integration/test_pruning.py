"""Pruning the inbox and the outbox by time (shared.pruning), against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from shared.config import Settings
from shared.db import connect_options, libpq_url
from shared.pruning import INBOX_EXPIRED, OUTBOX_EXPIRED, PruneResult, prune_expired
from shared.runtime import Runtime
from workers.relay import run_relay

HOUR = 3600
DAY = 24 * HOUR


def _outbox_row(conn: psycopg.Connection, *, age_s: int, published: bool) -> int:
    """A row created `age_s` ago, published then too (or still waiting)."""
    row = conn.execute(
        "INSERT INTO outbox "
        "(message_id, queue_name, actor_name, body, created_at, available_at, published_at) "
        "VALUES (%(id)s, 'fulfilment', 'fulfilment.place_order', '\\x7b7d', "
        "now() - make_interval(secs => %(age)s), now() - make_interval(secs => %(age)s), "
        "CASE WHEN %(published)s THEN now() - make_interval(secs => %(age)s) END) RETURNING id",
        {"id": uuid.uuid4(), "age": age_s, "published": published},
    ).fetchone()
    assert row is not None
    return int(row[0])


def _inbox_key(conn: psycopg.Connection, *, age_s: int) -> str:
    key = f"key-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO processed_messages (idempotency_key, kind, message_id, content_hash, processed_at) "
        "VALUES (%s, 'fulfilment.place_order', %s, 'hash', now() - make_interval(secs => %s))",
        (key, uuid.uuid4(), age_s),
    )
    return key


def _outbox_ids(conn: psycopg.Connection) -> set[int]:
    return {int(row[0]) for row in conn.execute("SELECT id FROM outbox")}


def _inbox_keys(conn: psycopg.Connection) -> set[str]:
    return {str(row[0]) for row in conn.execute("SELECT idempotency_key FROM processed_messages")}


def _prune(settings: Settings) -> PruneResult:
    async def main() -> PruneResult:
        options = connect_options(settings)
        async with await psycopg.AsyncConnection.connect(libpq_url(settings), **options) as conn:
            return await prune_expired(conn, settings)

    return asyncio.run(main())


@pytest.fixture
def db(settings: Settings, clean_db: Runtime):
    # The test polls through this connection: behind a pooler it must not prepare (make pgbouncer).
    with psycopg.connect(libpq_url(settings), autocommit=True, **connect_options(settings)) as conn:
        yield conn


def test_pruning_deletes_only_published_outbox_rows_older_than_the_retention(settings, db):
    # Given rows published two hours and ten minutes ago, and one that has waited two days unpublished
    old = _outbox_row(db, age_s=2 * HOUR, published=True)
    recent = _outbox_row(db, age_s=600, published=True)
    waiting = _outbox_row(db, age_s=2 * DAY, published=False)
    # When the outbox is pruned with a one-hour retention
    result = _prune(settings.model_copy(update={"outbox_retention_s": HOUR}))
    # Then only the old published row is gone
    assert result.outbox == 1
    assert _outbox_ids(db) == {recent, waiting}
    assert old not in _outbox_ids(db)


def test_pruning_forgets_inbox_keys_past_the_retention_and_none_a_message_could_still_need(settings, db):
    # Given keys handled 20 days, 10 days and 1 day ago; messages are handled up to 12 days old
    ancient = _inbox_key(db, age_s=20 * DAY)
    within_max_age = _inbox_key(db, age_s=10 * DAY)
    fresh = _inbox_key(db, age_s=DAY)
    # When the inbox is pruned with a retention (7 days) shorter than the oldest message handled
    result = _prune(settings.model_copy(update={"inbox_retention_s": 7 * DAY, "max_age_ms": 12 * DAY * 1000}))
    # Then only the key older than both is forgotten: a 10-day-old redelivery is still recognised
    assert result.inbox == 1
    assert _inbox_keys(db) == {within_max_age, fresh}
    assert ancient not in _inbox_keys(db)


def test_pruning_deletes_in_batches_until_nothing_expired_is_left(settings, db):
    # Given seven expired rows in each table and a batch of three
    for _ in range(7):
        _outbox_row(db, age_s=2 * HOUR, published=True)
        _inbox_key(db, age_s=30 * DAY)
    kept = _inbox_key(db, age_s=60)
    # When pruned once
    result = _prune(settings.model_copy(update={"outbox_retention_s": HOUR, "prune_batch_size": 3}))
    # Then every expired row went, in three transactions per table
    assert result == PruneResult(outbox=7, inbox=7)
    assert _outbox_ids(db) == set()
    assert _inbox_keys(db) == {kept}


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        (OUTBOX_EXPIRED, "ix_outbox_published_at"),
        (INBOX_EXPIRED, "ix_processed_messages_processed_at"),
    ],
)
def test_pruning_finds_expired_rows_along_the_time_index(settings, db, statement, index):
    # A table this small is scanned whole whatever the indexes; with sequential and bitmap scans
    # priced out, the plan shows whether an index yields the expired rows oldest first, so the LIMIT
    # stops after one batch instead of sorting everything expired. A statement no index serves
    # would still seq-scan or sort.
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_bitmapscan = off")
        cursor = psycopg.ClientCursor(db)
        plan = "\n".join(
            str(row[0]) for row in cursor.execute(f"EXPLAIN {statement}", {"secs": HOUR, "limit": 100})
        )
    assert f"Index Scan using {index}" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


def test_the_relay_prunes_the_inbox_as_well_as_the_outbox(settings, broker, db):
    # Given an inbox key handled a month ago, one handled a minute ago and an old published outbox row
    ancient = _inbox_key(db, age_s=30 * DAY)
    fresh = _inbox_key(db, age_s=60)
    _outbox_row(db, age_s=2 * DAY, published=True)

    async def relay_until_pruned() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_relay(settings, stop))
        while ancient in _inbox_keys(db) or _outbox_ids(db):
            await asyncio.sleep(0.05)
        stop.set()
        await task

    # When the relay runs (it prunes on its first pass)
    asyncio.run(asyncio.wait_for(relay_until_pruned(), timeout=30))
    # Then the month-old key and the old outbox row are gone, and the fresh key is kept
    assert _inbox_keys(db) == {fresh}
