"""Reading the dead-letter archive: messages, groups, statistics, per-message history, audit log.

The archive is the `dead_letters` table once the sweeper has emptied the `.XQ` queues into it
(`workers/dlq/sweeper.py`); after a sweep it is the single source of truth for dead messages.
Grouping follows NServiceBus ServicePulse: messages that failed in the same actor with the same
exception type and the same reason (numbers, UUIDs and hex ids masked) share a `group_key`,
computed by a database trigger so the worker's own upsert gets it too.

Rows come back as the models of `shared/dead_letters/models.py`, loaded afresh on every read
(`populate_existing`), so a reader in a session that changed them never sees stale values.
Writing lives in `changes.py`; the filter in `filter.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.dead_letters.filter import Filter
from shared.dead_letters.models import DeadLetter, DeadLetterAudit, DeadLetterEvent


@dataclass(frozen=True)
class Group:
    """One failure group: what its messages share, how many there are and when they failed."""

    group_key: str
    actor_name: str
    exception_type: str
    normalised_reason: str
    example_reason: str
    count: int
    dead: int
    first_seen: datetime
    last_seen: datetime


def messages(
    session: Session, where: Filter, *, limit: int | None = 100, offset: int = 0
) -> list[DeadLetter]:
    """Messages matching `where`, most recent failure first."""
    query = select(DeadLetter).where(where.where())
    query = query.order_by(DeadLetter.last_failed_at.desc(), DeadLetter.message_id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def message(session: Session, message_id: str) -> DeadLetter | None:
    found = messages(session, Filter(message_id=message_id, status="all"), limit=1)
    return found[0] if found else None


def count(session: Session, where: Filter) -> int:
    return session.execute(select(func.count()).select_from(DeadLetter).where(where.where())).scalar_one()


def ids(session: Session, where: Filter, *, limit: int | None = None) -> list[str]:
    """Message ids matching `where`, oldest failure first (the order re-drive publishes in)."""
    query = select(DeadLetter.message_id).where(where.where())
    query = query.order_by(DeadLetter.first_failed_at, DeadLetter.message_id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def groups(session: Session, where: Filter) -> list[Group]:
    """Failure groups with counts and first/last seen, the largest first."""
    d = DeadLetter
    query = (
        select(
            d.group_key,
            func.min(d.actor_name).label("actor_name"),
            func.min(d.exception_type).label("exception_type"),
            func.min(d.normalised_reason).label("normalised_reason"),
            func.min(d.reason).label("example_reason"),
            func.count().label("count"),
            func.count().filter(d.status == "dead").label("dead"),
            func.min(d.first_failed_at).label("first_seen"),
            func.max(d.last_failed_at).label("last_seen"),
        )
        .where(where.where())
        .group_by(d.group_key)
        .order_by(func.count().desc(), func.max(d.last_failed_at).desc())
    )
    return [Group(**row._mapping) for row in session.execute(query)]


def stats(session: Session) -> dict[str, dict[str, int]]:
    """Message counts per queue and status: `{"fulfilment": {"dead": 3, "redriven": 1}, ...}`."""
    d = DeadLetter
    query = (
        select(d.queue_name, d.status, func.count())
        .group_by(d.queue_name, d.status)
        .order_by(d.queue_name, d.status)
    )
    result: dict[str, dict[str, int]] = {}
    for queue, status, number in session.execute(query):
        result.setdefault(queue, {})[status] = int(number)
    return result


#: Dead (not re-driven, not purged) messages per queue, actor and exception type: the exporter's gauge.
DEAD_BY_KIND = (
    select(DeadLetter.queue_name, DeadLetter.actor_name, DeadLetter.exception_type, func.count())
    .where(DeadLetter.status == "dead")
    .group_by(DeadLetter.queue_name, DeadLetter.actor_name, DeadLetter.exception_type)
)


def events(session: Session, message_id: str) -> list[DeadLetterEvent]:
    """The history of one message, oldest first."""
    query = (
        select(DeadLetterEvent).where(DeadLetterEvent.message_id == message_id).order_by(DeadLetterEvent.id)
    )
    return list(session.scalars(query))


def audit_log(session: Session, *, limit: int = 100) -> list[DeadLetterAudit]:
    """The latest operator actions, newest first."""
    return list(session.scalars(select(DeadLetterAudit).order_by(DeadLetterAudit.id.desc()).limit(limit)))
