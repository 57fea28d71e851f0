"""The transactional outbox: follow-up messages written in the same transaction as the effects.

A row is a complete Dramatiq message (JSON bytes) plus the queue it goes to, and the moment it
becomes due (`available_at`). A transaction that adds a due row is followed by a notification on
`WAKE_CHANNEL` (`WAKE_RELAY`, sent right after its COMMIT), so the relay (`workers/relay.py`),
which LISTENs there, starts a pass as soon as it commits instead of at its next poll. It
publishes unpublished rows that are due with windowed publisher confirms and marks them; its
claim uses `FOR UPDATE SKIP LOCKED` so several relays never publish the same row.
A delayed message (an order's completion three days
after delivery) waits here, not in RabbitMQ: no worker holds it, so neither the broker's consumer
timeout nor a worker restart touches it (`shared.schedule`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, LargeBinary, String, Uuid, func, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base, driver_connection
from shared.messages import Envelope, Payload
from shared.tracing import child_of


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    queue_name: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_outbox_due", "available_at", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )


def encode_message(
    envelope: Envelope,
    payload: Payload,
    *,
    payload_data: Mapping[str, Any] | None = None,
    payload_json: str | None = None,
) -> bytes:
    """The Dramatiq wire form: actor name is the payload kind, kwargs are envelope and payload.

    No `eta`: a delayed row waits in the outbox until due and is published as an ordinary message.
    `payload_data` is the payload already dumped as JSON data, and `payload_json` already encoded
    as JSON (`shared.idempotency.canonical_json`), where the caller has them: the API encodes a
    payload once for its content hash and its message.
    """
    message: dict[str, Any] = {
        "queue_name": payload.queue,
        "actor_name": payload.kind,
        "args": [],
        "options": {},
        "message_id": str(envelope.message_id),
        "message_timestamp": int(envelope.produced_at.timestamp() * 1000),
        "kwargs": {"envelope": envelope.model_dump(mode="json")},
    }
    if payload_json is not None:  # kwargs is the last key and envelope its only one so far
        head = json.dumps(message, separators=(",", ":"))[:-2]
        return f'{head},"payload":{payload_json}}}}}'.encode()
    message["kwargs"]["payload"] = payload.model_dump(mode="json") if payload_data is None else payload_data
    return json.dumps(message, separators=(",", ":")).encode()


#: The relay LISTENs on this channel; a transaction that adds a due row notifies it, and
#: Postgres delivers the notification only when (and if) that transaction commits.
WAKE_CHANNEL = "circulate_outbox"

#: The relay's wake-up as a transaction of its own, sent after the COMMIT of the rows it announces
#: (the unit of work sends it in the same query string: no extra round trip).
#:
#: PostgreSQL serialises the commits of notifying transactions: `NOTIFY` takes a database-wide lock
#: at commit and holds it until the commit is over, its WAL flush included. With the wake-up inside
#: the transaction that wrote the rows, every handler's commit queued behind every other's flush on
#: that lock (`Lock:object` waits at `COMMIT` in `pg_stat_activity` at 50 orders/s), and the rows
#: those transactions had locked stayed locked while they queued. Alone and committed without
#: waiting for its flush (`synchronous_commit` off for this transaction only: it writes nothing
#: that must survive a crash), the wake-up holds the lock for microseconds.
WAKE_RELAY = (
    f"SELECT pg_notify('{WAKE_CHANNEL}', '') "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_waiting"
)

_INSERT = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body, available_at) "
    "VALUES (%(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s, "
    "now() + make_interval(secs => %(delay_s)s))"
)
#: A row due now, and the relay's wake-up in the same statement (no extra round trip). Several in
#: one transaction are folded into one notification by Postgres. For producers' own transactions
#: (`shared.enqueue`: the CLI, tests, re-drives) and the API's intake, whose transaction is this one
#: statement and holds no lock while it waits on the notification lock; the unit of work, whose
#: transactions hold the rows their handlers locked, sends `WAKE_RELAY` after its commit instead.
INSERT_DUE_AND_WAKE = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body) "
    "SELECT %(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s "
    f"FROM (SELECT pg_notify('{WAKE_CHANNEL}', '')) AS wake"
)


#: Several rows in one statement, in the order they were added (the relay publishes by `id`).
_INSERT_ROWS = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body, available_at) "
    "SELECT r.message_id, r.queue_name, r.actor_name, r.body, now() + make_interval(secs => r.delay_s) "
    "FROM unnest(%(message_ids)s::uuid[], %(queue_names)s::text[], %(actor_names)s::text[], "
    "%(bodies)s::bytea[], %(delays_s)s::float8[]) WITH ORDINALITY "
    "AS r (message_id, queue_name, actor_name, body, delay_s, n) ORDER BY r.n"
)


@dataclass
class Outbox:
    """Adds messages to the outbox inside `session`'s transaction; they exist iff it commits.

    Follow-up messages inherit the correlation id and trace context of the message being handled,
    and derive their idempotency key from its key, so a handler that runs again after a rollback
    writes the very same keys.

    Given a `held` list (the unit of work's), rows are kept there and written together by
    `take_held` just before the commit, in one statement for the whole transaction (a batch's
    every member): a handler never reads the outbox back, and one round trip per follow-up was
    most of what adding one cost. Without it (a producer's own transaction), each row is written
    as it is added.
    """

    session: Session
    correlation_id: str
    parent_key: str | None = None
    traceparent: str | None = None
    held: list[dict[str, Any]] | None = None

    def add(
        self,
        payload: Payload,
        *,
        idempotency_key: str | None = None,
        key_suffix: str = "",
        delay_ms: int | None = None,
    ) -> Envelope:
        key = idempotency_key or self._derived_key(payload, key_suffix)
        envelope = Envelope(
            idempotency_key=key,
            kind=payload.kind,
            correlation_id=self.correlation_id,
            traceparent=child_of(self.traceparent),
        )
        row = {
            "message_id": envelope.message_id,
            "queue_name": payload.queue,
            "actor_name": payload.kind,
            "body": encode_message(envelope, payload),
            "delay_s": (delay_ms or 0) / 1000,
        }
        if self.held is not None:
            self.held.append(row)
        else:  # A delayed row is not due yet: waking the relay for it would find nothing to publish.
            driver_connection(self.session).execute(_INSERT if delay_ms else INSERT_DUE_AND_WAKE, row)
        return envelope

    def _derived_key(self, payload: Payload, suffix: str) -> str:
        return follow_up_key(self.parent_key, payload.kind, suffix)


@dataclass(frozen=True)
class HeldRows:
    """The statement writing the rows an `Outbox` held, for the unit of work's commit to send."""

    statement: str
    params: dict[str, Any]
    #: A row is due now: the relay's wake-up (`WAKE_RELAY`) follows the commit.
    due_now: bool


def take_held(rows: list[dict[str, Any]]) -> HeldRows | None:
    """The rows an `Outbox` held as one statement (None if there are none); the list is emptied."""
    if not rows:
        return None
    params = {
        "message_ids": [row["message_id"] for row in rows],
        "queue_names": [row["queue_name"] for row in rows],
        "actor_names": [row["actor_name"] for row in rows],
        "bodies": [row["body"] for row in rows],
        "delays_s": [row["delay_s"] for row in rows],
    }
    due_now = any(row["delay_s"] == 0 for row in rows)
    rows.clear()
    return HeldRows(_INSERT_ROWS, params, due_now)


def follow_up_key(parent_key: str | None, kind: str, suffix: str = "") -> str:
    """`<parent>><kind>[:suffix]`: the same parent always derives the same follow-up keys."""
    if parent_key is None:
        raise ValueError("a message enqueued outside a handler needs an explicit idempotency_key")
    key = f"{parent_key}>{kind}"
    return f"{key}:{suffix}" if suffix else key


def backlog(session: Session) -> tuple[int, float]:
    """Rows due and not yet published, and how long the oldest has been due, in seconds.

    Scheduled rows (not yet due) are not a backlog: `shared.schedule.summary` counts them.
    """
    row = session.execute(
        text(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0) "
            "FROM outbox WHERE published_at IS NULL AND available_at <= now()"
        )
    ).one()
    return int(row[0]), float(row[1])
