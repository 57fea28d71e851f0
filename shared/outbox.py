"""The transactional outbox: follow-up messages written in the same transaction as the effects.

A row is a complete Dramatiq message (JSON bytes) plus the queue it goes to, and the moment it
becomes due (`available_at`). Adding a due row notifies `WAKE_CHANNEL` in the same transaction, so
the relay (`workers/relay.py`), which LISTENs there, starts a pass as soon as it commits instead of
at its next poll. It publishes unpublished rows that are due with windowed publisher confirms and
marks them; its claim uses `FOR UPDATE SKIP LOCKED` so several relays never publish the same row.
A delayed message (an order's completion three days
after delivery) waits here, not in RabbitMQ: no worker holds it, so neither the broker's consumer
timeout nor a worker restart touches it (`shared.schedule`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

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


def encode_message(envelope: Envelope, payload: Payload) -> bytes:
    """The Dramatiq wire form: actor name is the payload kind, kwargs are envelope and payload.

    No `eta`: a delayed row waits in the outbox until due and is published as an ordinary message.
    """
    message = {
        "queue_name": payload.queue,
        "actor_name": payload.kind,
        "args": [],
        "kwargs": {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")},
        "options": {},
        "message_id": str(envelope.message_id),
        "message_timestamp": int(envelope.produced_at.timestamp() * 1000),
    }
    return json.dumps(message, separators=(",", ":")).encode()


#: The relay LISTENs on this channel; a transaction that adds a due row notifies it, and
#: Postgres delivers the notification only when (and if) that transaction commits.
WAKE_CHANNEL = "circulate_outbox"

_INSERT = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body, available_at) "
    "VALUES (%(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s, "
    "now() + make_interval(secs => %(delay_s)s))"
)
#: A row due now, and the relay's wake-up in the same statement (no extra round trip). Several in
#: one transaction are folded into one notification by Postgres. Writers of their own (the API's
#: one-round-trip intake) use this statement too, or the relay only finds their rows at its poll.
INSERT_DUE_AND_WAKE = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body) "
    "SELECT %(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s "
    f"FROM (SELECT pg_notify('{WAKE_CHANNEL}', '')) AS wake"
)


@dataclass
class Outbox:
    """Adds messages to the outbox inside `session`'s transaction; they exist iff it commits.

    Follow-up messages inherit the correlation id and trace context of the message being handled,
    and derive their idempotency key from its key, so a handler that runs again after a rollback
    writes the very same keys.
    """

    session: Session
    correlation_id: str
    parent_key: str | None = None
    traceparent: str | None = None

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
        # A delayed row is not due yet: waking the relay for it would find nothing to publish.
        driver_connection(self.session).execute(
            _INSERT if delay_ms else INSERT_DUE_AND_WAKE,
            {
                "message_id": envelope.message_id,
                "queue_name": payload.queue,
                "actor_name": payload.kind,
                "body": encode_message(envelope, payload),
                "delay_s": (delay_ms or 0) / 1000,
            },
        )
        return envelope

    def _derived_key(self, payload: Payload, suffix: str) -> str:
        return follow_up_key(self.parent_key, payload.kind, suffix)


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
