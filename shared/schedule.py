"""The schedule: messages due later wait in PostgreSQL, and the relay publishes them when due.

A delayed message held by a Dramatiq worker sits unacked in its memory until its eta. Past
RabbitMQ's consumer timeout (30 minutes by default) the broker closes the channel, and on a quorum
queue every hand-back (that timeout, a restart, a deploy) counts a delivery, until the delivery
limit dead-letters a message that never ran. So only short delays (retry backoff, up to
`broker_delay_max_ms`) stay in RabbitMQ; everything later is a row of the outbox with a future
`available_at`:

- handlers and producers: `uow.outbox.add(payload, delay_ms=...)` / `enqueue(..., delay_ms=...)`;
- a retry delay longer than the bound (a carrier's long Retry-After): `CirculateBroker.enqueue`;
- a delivered message whose eta is beyond what a worker may hold: `CirculateConsumer`.

The last two come here through `schedule_message`, in their own transaction. The message keeps
its id; an earlier outbox row of the same id (the one that first published it) is re-armed, so a
message is scheduled at most once however often it is handed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from shared.db import driver_connection

_UPSERT = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body, available_at) "
    "VALUES (%(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s, to_timestamp(%(due_s)s)) "
    "ON CONFLICT (message_id) DO UPDATE SET queue_name = EXCLUDED.queue_name, "
    "actor_name = EXCLUDED.actor_name, body = EXCLUDED.body, available_at = EXCLUDED.available_at, "
    "published_at = NULL"
)

_SUMMARY = text(
    "SELECT actor_name, count(*), min(available_at) FROM outbox "
    "WHERE published_at IS NULL AND available_at > now() GROUP BY actor_name ORDER BY actor_name"
)


def schedule_message(sessions: sessionmaker[Session], message: dramatiq.Message[Any], due_ms: int) -> None:
    """Keep `message` (no eta, its own queue) in the outbox until `due_ms` (epoch milliseconds)."""
    with sessions.begin() as session:
        driver_connection(session).execute(
            _UPSERT,
            {
                "message_id": message.message_id,
                "queue_name": message.queue_name,
                "actor_name": message.actor_name,
                "body": message.encode(),
                "due_s": due_ms / 1000,
            },
        )


@dataclass(frozen=True)
class ScheduledKind:
    """Messages of one kind waiting in the schedule, and when the next one is due."""

    kind: str
    count: int
    next_due: datetime


def summary(session: Session) -> list[ScheduledKind]:
    """What is scheduled, by kind: for `circulate scheduled`, the console and the exporter."""
    return [ScheduledKind(kind, int(count), due) for kind, count, due in session.execute(_SUMMARY)]
