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
from sqlalchemy import ARRAY, String, Text, any_, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ClauseElement

from shared.broker import UNDECODABLE_ACTOR
from shared.config import Settings
from shared.db import connect_options, libpq_url
from shared.dead_letters.models import DeadLetter, DeadLetterEvent
from shared.metrics import DEAD_LETTERS_REDRIVEN
from shared.relay import open_channel

DEFAULT_WINDOW = 100

#: The dialect of the driver re-drive uses (psycopg 3), looked up by URL like an engine would.
_DIALECT = make_url("postgresql+psycopg://").get_dialect()()


@dataclass(frozen=True)
class _Sql:
    """A statement built on the archive's models, compiled for psycopg, with its constant parameters.

    Re-drive talks to PostgreSQL through psycopg's async connection (one transaction held while
    a window is published), so its statements are compiled once here instead of being run
    through a SQLAlchemy session.
    """

    text: str
    constants: dict[str, Any]

    def params(self, **values: Any) -> dict[str, Any]:
        return self.constants | values


def _sql(statement: ClauseElement) -> _Sql:
    compiled = statement.compile(dialect=_DIALECT)
    return _Sql(str(compiled), {name: value for name, value in compiled.params.items() if value is not None})


_IDS = bindparam("ids", type_=ARRAY(String))
_LOCK = _sql(
    select(DeadLetter.message_id, DeadLetter.queue_name, DeadLetter.message)
    .where(
        DeadLetter.message_id == any_(_IDS),
        DeadLetter.status == "dead",
        DeadLetter.actor_name != bindparam("undecodable", type_=String),
    )
    .order_by(DeadLetter.first_failed_at)
    .with_for_update(skip_locked=True)
)
_MARK = _sql(
    update(DeadLetter)
    .where(DeadLetter.message_id == any_(_IDS))
    .values(status="redriven", redrive_count=DeadLetter.redrive_count + 1, last_redriven_at=func.now())
)
_EVENT = _sql(
    insert(DeadLetterEvent).from_select(
        ["message_id", "kind", "operator", "detail"],
        select(
            func.unnest(_IDS),
            literal("redriven"),
            bindparam("operator", type_=String),
            cast(bindparam("detail", type_=Text), JSONB),
        ),
    )
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
    connection, channel = await open_channel(settings.amqp_urls)
    try:
        options = connect_options(settings)
        async with await psycopg.AsyncConnection.connect(libpq_url(settings), **options) as conn:
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
        cursor = await conn.execute(_LOCK.text, _LOCK.params(ids=batch, undecodable=UNDECODABLE_ACTOR))
        rows = await cursor.fetchall()
        outcomes = await asyncio.gather(*(_publish(channel, *row) for row in rows), return_exceptions=True)
        confirmed = [row[0] for row, ok in zip(rows, outcomes, strict=True) if ok is True]
        for row, ok in zip(rows, outcomes, strict=True):
            if ok is True:
                DEAD_LETTERS_REDRIVEN.labels(row[1]).inc()
        if confirmed:
            await conn.execute(_MARK.text, _MARK.params(ids=confirmed))
            detail = json.dumps({"via": "redrive"})
            await conn.execute(_EVENT.text, _EVENT.params(ids=confirmed, operator=operator, detail=detail))
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
