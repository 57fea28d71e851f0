"""Reading the dead-letter archive: messages, groups, statistics, per-message history, audit log.

The archive is the `dead_letters` table once the sweeper has emptied the `.XQ` queues into it
(`workers/dlq/sweeper.py`); after a sweep it is the single source of truth for dead messages.
Grouping follows NServiceBus ServicePulse: messages that failed in the same actor with the same
exception type and the same reason (numbers, UUIDs and hex ids masked) share a `group_key`,
computed by a database trigger so the worker's own upsert gets it too.

Writing lives in `shared/archive_changes.py`; the filter in `shared/archive_filter.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.archive_filter import Filter


@dataclass(frozen=True)
class ArchivedMessage:
    """One archived dead letter: the Dramatiq message as delivered, why it died, what was done."""

    message_id: str
    queue_name: str
    actor_name: str
    message: dict[str, Any]
    exception_type: str
    reason: str
    traceback: str | None
    attempts: int
    host: str
    status: str
    group_key: str | None
    first_failed_at: datetime
    last_failed_at: datetime
    recorded_by: str
    archived_at: datetime | None
    raw_body: bytes | None
    redrive_count: int
    last_redriven_at: datetime | None
    purged_at: datetime | None
    purged_by: str | None
    purged_from: str | None
    original_message: dict[str, Any] | None
    edited_at: datetime | None

    @property
    def payload(self) -> Any:
        """The payload part of the message kwargs (what `edit` changes), or None."""
        kwargs = self.message.get("kwargs")
        return kwargs.get("payload") if isinstance(kwargs, dict) else None

    @property
    def idempotency_key(self) -> str | None:
        kwargs = self.message.get("kwargs")
        envelope = kwargs.get("envelope") if isinstance(kwargs, dict) else None
        return envelope.get("idempotency_key") if isinstance(envelope, dict) else None


@dataclass(frozen=True)
class Group:
    group_key: str
    actor_name: str
    exception_type: str
    normalised_reason: str
    example_reason: str
    count: int
    dead: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Event:
    message_id: str
    kind: str
    operator: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    operator: str
    via: str
    action: str
    filter: dict[str, Any]
    count: int
    outcome: str


_COLUMNS = ", ".join(f"d.{name}" for name in ArchivedMessage.__dataclass_fields__)


def messages(
    session: Session, where: Filter, *, limit: int | None = 100, offset: int = 0
) -> list[ArchivedMessage]:
    """Messages matching `where`, most recent failure first."""
    condition, params = where.where()
    sql = f"SELECT {_COLUMNS} FROM dead_letters d WHERE {condition}"
    sql += " ORDER BY d.last_failed_at DESC, d.message_id"
    if limit is not None:
        sql += " LIMIT :limit OFFSET :offset"
        params |= {"limit": limit, "offset": offset}
    return [ArchivedMessage(**row._mapping) for row in session.execute(text(sql), params)]


def message(session: Session, message_id: str) -> ArchivedMessage | None:
    found = messages(session, Filter(message_id=message_id, status="all"), limit=1)
    return found[0] if found else None


def count(session: Session, where: Filter) -> int:
    condition, params = where.where()
    return int(
        session.execute(text(f"SELECT count(*) FROM dead_letters d WHERE {condition}"), params).scalar_one()
    )


def ids(session: Session, where: Filter, *, limit: int | None = None) -> list[str]:
    """Message ids matching `where`, oldest failure first (the order re-drive publishes in)."""
    condition, params = where.where()
    sql = (
        f"SELECT d.message_id FROM dead_letters d WHERE {condition} ORDER BY d.first_failed_at, d.message_id"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return list(session.execute(text(sql), params).scalars())


def groups(session: Session, where: Filter) -> list[Group]:
    """Failure groups with counts and first/last seen, the largest first."""
    condition, params = where.where()
    sql = f"""
        SELECT d.group_key, min(d.actor_name) AS actor_name, min(d.exception_type) AS exception_type,
               min(d.normalised_reason) AS normalised_reason, min(d.reason) AS example_reason,
               count(*) AS count, count(*) FILTER (WHERE d.status = 'dead') AS dead,
               min(d.first_failed_at) AS first_seen, max(d.last_failed_at) AS last_seen
        FROM dead_letters d WHERE {condition}
        GROUP BY d.group_key ORDER BY count(*) DESC, max(d.last_failed_at) DESC
    """
    return [Group(**row._mapping) for row in session.execute(text(sql), params)]


def stats(session: Session) -> dict[str, dict[str, int]]:
    """Message counts per queue and status: `{"fulfilment": {"dead": 3, "redriven": 1}, ...}`."""
    rows = session.execute(
        text(
            "SELECT queue_name, status, count(*) FROM dead_letters GROUP BY queue_name, status ORDER BY 1, 2"
        )
    )
    result: dict[str, dict[str, int]] = {}
    for queue, status, number in rows:
        result.setdefault(queue, {})[status] = int(number)
    return result


def events(session: Session, message_id: str) -> list[Event]:
    """The history of one message, oldest first."""
    rows = session.execute(
        text(
            "SELECT message_id, kind, operator, at, detail FROM dead_letter_events "
            "WHERE message_id = :id ORDER BY id"
        ),
        {"id": message_id},
    )
    return [Event(**row._mapping) for row in rows]


def audit_log(session: Session, *, limit: int = 100) -> list[AuditEntry]:
    """The latest operator actions, newest first."""
    rows = session.execute(
        text(
            "SELECT id, at, operator, via, action, filter, count, outcome FROM dlq_audit "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [AuditEntry(**row._mapping) for row in rows]
