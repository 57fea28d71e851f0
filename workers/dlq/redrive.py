"""Re-drive: publish archived dead messages back to their original queue, then mark them.

The published body is the original Dramatiq message with the same message id and the same
envelope (so the same idempotency key: a message that already took effect is skipped by the
consumer, never applied twice). Its options are reset (no retry count, no old traceback) and its
timestamp is renewed, or the age limit would drop a message that sat in the archive for days.
Keeping the message id means that if it dies again the worker updates the same archive row.

Rows are published in windows, like the outbox relay: each window's rows are locked
(`FOR UPDATE SKIP LOCKED`, and only rows still `dead`), published with publisher confirms,
and marked `redriven` with a history event in the same transaction. Two operators re-driving
the same group cannot publish a message twice, and a worker whose re-driven message dies again
waits for that commit, so its `dead` status always lands last.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from aiormq.abc import AbstractChannel
from pamqp import commands as spec

from shared.broker import UNDECODABLE_ACTOR
from shared.config import Settings
from shared.db import libpq_url
from shared.metrics import DEAD_LETTERS_REDRIVEN
from shared.relay import open_channel

DEFAULT_WINDOW = 100

_LOCK = (
    "SELECT message_id, queue_name, message FROM dead_letters WHERE message_id = ANY(%(ids)s) "
    "AND status = 'dead' AND actor_name <> %(undecodable)s ORDER BY first_failed_at FOR UPDATE SKIP LOCKED"
)
_MARK = (
    "UPDATE dead_letters SET status = 'redriven', redrive_count = redrive_count + 1, "
    "last_redriven_at = now() WHERE message_id = ANY(%(ids)s)"
)
_EVENT = (
    "INSERT INTO dead_letter_events (message_id, kind, operator, detail) "
    "SELECT id, 'redriven', %(operator)s, %(detail)s::jsonb FROM unnest(%(ids)s::text[]) AS id"
)


@dataclass
class RedriveResult:
    requested: int = 0
    published: int = 0
    skipped: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"re-drove {self.published} of {self.requested} message(s); "
            f"{self.skipped} skipped (not dead any more, locked or undecodable), {self.failed} not confirmed"
        )


def prepare(message: dict[str, Any], queue_name: str, *, now_ms: int | None = None) -> bytes:
    """The body to publish: the same message and envelope, options reset, timestamp renewed."""
    fresh = dict(message)
    fresh["queue_name"] = queue_name
    fresh["options"] = {}
    fresh["message_timestamp"] = now_ms if now_ms is not None else int(time.time() * 1000)
    return json.dumps(fresh, separators=(",", ":")).encode()


def redrive(
    settings: Settings,
    message_ids: list[str],
    *,
    operator: str,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RedriveResult:
    """Re-drive these archived messages, at most `rate` per second; see the module docstring."""
    return asyncio.run(_redrive(settings, message_ids, operator=operator, rate=rate, on_progress=on_progress))


async def _redrive(
    settings: Settings,
    message_ids: list[str],
    *,
    operator: str,
    rate: float | None,
    on_progress: Callable[[int], None] | None,
) -> RedriveResult:
    result = RedriveResult(requested=len(message_ids))
    window = max(1, int(rate)) if rate else DEFAULT_WINDOW
    loop = asyncio.get_running_loop()
    connection, channel = await open_channel(settings.amqp_url)
    try:
        async with await psycopg.AsyncConnection.connect(libpq_url(settings)) as conn:
            for start in range(0, len(message_ids), window):
                began = loop.time()
                batch = message_ids[start : start + window]
                await _redrive_window(conn, channel, batch, operator, result)
                if on_progress is not None:
                    on_progress(len(batch))
                if rate and start + window < len(message_ids):
                    await asyncio.sleep(max(0.0, began + len(batch) / rate - loop.time()))
    finally:
        await connection.close()
    return result


async def _redrive_window(
    conn: psycopg.AsyncConnection[Any],
    channel: AbstractChannel,
    batch: list[str],
    operator: str,
    result: RedriveResult,
) -> None:
    async with conn.transaction():
        cursor = await conn.execute(_LOCK, {"ids": batch, "undecodable": UNDECODABLE_ACTOR})
        rows = await cursor.fetchall()
        outcomes = await asyncio.gather(*(_publish(channel, *row) for row in rows), return_exceptions=True)
        confirmed = [row[0] for row, ok in zip(rows, outcomes, strict=True) if ok is True]
        for row, ok in zip(rows, outcomes, strict=True):
            if ok is True:
                DEAD_LETTERS_REDRIVEN.labels(row[1]).inc()
        if confirmed:
            await conn.execute(_MARK, {"ids": confirmed})
            detail = json.dumps({"via": "redrive"})
            await conn.execute(_EVENT, {"ids": confirmed, "operator": operator, "detail": detail})
    result.published += len(confirmed)
    result.failed += len(rows) - len(confirmed)
    result.skipped += len(batch) - len(rows)


async def _publish(
    channel: AbstractChannel, message_id: str, queue_name: str, message: dict[str, Any]
) -> bool:
    properties = spec.Basic.Properties(
        delivery_mode=2, content_type="application/json", message_id=message_id
    )
    confirmation = await channel.basic_publish(
        prepare(message, queue_name), routing_key=queue_name, properties=properties, mandatory=True
    )
    return isinstance(confirmation, spec.Basic.Ack)
