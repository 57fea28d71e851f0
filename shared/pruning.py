"""Pruning: how long the inbox and the outbox remember, and how they forget cheaply.

Both tables take a row per message, so at the marketplace's rates they grow by millions of rows a
day. Each is pruned by time along an index that serves exactly that range
(`ix_processed_messages_processed_at`, and the partial `ix_outbox_published_at`), oldest first,
in batches of `prune_batch_size` rows, one short transaction each: a prune never scans the table,
never holds locks long, and `SKIP LOCKED` lets two relays prune side by side. The relay runs a
pass every `PRUNE_EVERY_S` (workers/relay.py).

What may be forgotten:
- outbox: published rows older than `outbox_retention_s` (kept only for inspection); unpublished
  rows never, however old (a scheduled message waits there).
- inbox: keys older than `inbox_retention_s`, and never one younger than `max_age_ms`: a message
  older than that is dead-lettered instead of handled, so no redelivery can need its key again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from shared.config import Settings

# Oldest first, along the time index (the tests EXPLAIN these); the DELETE finds each row again by
# its primary key.
OUTBOX_EXPIRED = (
    "SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => %(secs)s) "
    "ORDER BY published_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
INBOX_EXPIRED = (
    "SELECT idempotency_key FROM processed_messages "
    "WHERE processed_at < now() - make_interval(secs => %(secs)s) "
    "ORDER BY processed_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
_PRUNE_OUTBOX = f"DELETE FROM outbox WHERE id IN ({OUTBOX_EXPIRED})"
_PRUNE_INBOX = f"DELETE FROM processed_messages WHERE idempotency_key IN ({INBOX_EXPIRED})"


@dataclass(frozen=True)
class PruneResult:
    outbox: int
    inbox: int


def inbox_retention_s(settings: Settings) -> int:
    """The inbox's retention: the setting, raised to the oldest age a message is still handled at."""
    return max(settings.inbox_retention_s, -(-settings.max_age_ms // 1000))


async def prune_expired(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    settings: Settings,
    *,
    progressed: Callable[[], None] = lambda: None,
) -> PruneResult:
    """Delete every expired outbox and inbox row, batch by batch; returns how many of each.

    `progressed` is called after each batch: a backlog of millions of rows takes minutes, and the
    relay's heartbeat must see a long prune moving, not stuck.
    """
    batch = settings.prune_batch_size
    outbox = await _prune(
        conn, _PRUNE_OUTBOX, secs=settings.outbox_retention_s, limit=batch, progressed=progressed
    )
    inbox = await _prune(
        conn, _PRUNE_INBOX, secs=inbox_retention_s(settings), limit=batch, progressed=progressed
    )
    return PruneResult(outbox=outbox, inbox=inbox)


async def _prune(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    statement: str,
    *,
    secs: int,
    limit: int,
    progressed: Callable[[], None],
) -> int:
    deleted = 0
    while True:
        async with conn.transaction():
            cursor = await conn.execute(statement, {"secs": secs, "limit": limit})
            count = cursor.rowcount
        deleted += count
        progressed()
        if count < limit:
            return deleted
