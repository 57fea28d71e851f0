"""Changing the dead-letter archive: sweeping in, purge and restore, payload edits, history, audit.

Every change writes a `dead_letter_events` row for the message it touched, and every operator
action writes one `dlq_audit` row (who, how, which filter, how many, outcome). All of it runs in
the caller's transaction, so a change and its history commit together. Re-drive marks rows itself
(`workers/dlq/redrive.py`), inside the transaction that holds them while they are published.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, delete, func, insert, literal_column, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from shared.dead_letters.filter import Filter
from shared.dead_letters.models import DeadLetter, DeadLetterAudit, DeadLetterEvent

#: What the sweeper learns about a death from its `.XQ` copy (`workers/dlq/deaths.py`).
SWEPT_COLUMNS = (
    "message_id", "queue_name", "actor_name", "message", "exception_type", "reason", "attempts",
    "host", "raw_body",
)  # fmt: skip


def archive_swept(session: Session, swept: DeadLetter, *, operator: str) -> str | None:
    """Upsert one swept message by id: "recorded" (new row), "archived" (the worker's row), or None.

    `swept` is an unsaved row holding `SWEPT_COLUMNS`. None means this death was already archived
    (a copy swept twice after a crash between commit and ack), so sweeping is idempotent. A row
    the worker recorded keeps its reason and traceback.
    """
    values = {name: getattr(swept, name) for name in SWEPT_COLUMNS}
    new = postgresql.insert(DeadLetter).values(
        **values, status="dead", recorded_by="sweeper", archived_at=func.now()
    )
    statement = new.on_conflict_do_update(
        index_elements=[DeadLetter.message_id],
        set_={
            "archived_at": func.now(),
            "raw_body": func.coalesce(DeadLetter.raw_body, new.excluded.raw_body),
        },
        where=(DeadLetter.archived_at.is_(None)) | (DeadLetter.archived_at < DeadLetter.last_failed_at),
    ).returning(literal_column("xmax = 0", Boolean).label("inserted"))
    inserted = session.execute(statement).scalar_one_or_none()
    if inserted is None:
        return None
    record_event(session, [swept.message_id], "archived", operator, {"from": f"{swept.queue_name}.XQ"})
    return "recorded" if inserted else "archived"


def record_event(
    session: Session, message_ids: list[str], kind: str, operator: str, detail: dict[str, Any] | None = None
) -> None:
    """Append one history event per message."""
    if message_ids:
        rows = [
            {"message_id": id, "kind": kind, "operator": operator, "detail": detail or {}}
            for id in message_ids
        ]
        session.execute(insert(DeadLetterEvent), rows)


def audit(
    session: Session, *, operator: str, via: str, action: str, where: dict[str, Any], count: int, outcome: str
) -> None:
    """One row in the audit log; `where` is the filter (or ids) the operator gave."""
    values = {"operator": operator, "via": via, "action": action, "count": count, "outcome": outcome}
    session.execute(insert(DeadLetterAudit).values(**values, filter=_jsonable(where)))


def _jsonable(where: dict[str, Any]) -> dict[str, Any]:
    """`where` with values JSON cannot hold (dates, UUIDs) as their text."""
    converted: dict[str, Any] = json.loads(json.dumps(where, default=str))
    return converted


def purge(session: Session, where: Filter, *, operator: str) -> list[str]:
    """Soft-delete matching messages (status purged, who and when); returns their ids."""
    statement = (
        update(DeadLetter)
        .where(where.where(), DeadLetter.status != "purged")
        .values(purged_from=DeadLetter.status, status="purged", purged_at=func.now(), purged_by=operator)
        .returning(DeadLetter.message_id)
    )
    purged = list(session.scalars(statement, execution_options={"synchronize_session": False}))
    record_event(session, purged, "purged", operator)
    return purged


def expire_purged(session: Session, *, retention_days: int) -> int:
    """Delete for good what was purged longer ago than the retention (their history goes too).

    Until then a purge is only a status and `restore` undoes it; the audit log keeps the record
    of both the purge and the expiry.
    """
    statement = (
        delete(DeadLetter)
        .where(DeadLetter.status == "purged")
        .where(DeadLetter.purged_at < func.now() - func.make_interval(0, 0, 0, retention_days))
        .returning(DeadLetter.message_id)
    )
    return len(session.scalars(statement, execution_options={"synchronize_session": False}).all())


def restore(session: Session, where: Filter, *, operator: str) -> list[str]:
    """Undo a purge: each message gets back the status it had; returns their ids."""
    statement = (
        update(DeadLetter)
        .where(where.with_status("purged").where())
        .values(
            status=func.coalesce(DeadLetter.purged_from, "dead"),
            purged_from=None,
            purged_at=None,
            purged_by=None,
        )
        .returning(DeadLetter.message_id)
    )
    restored = list(session.scalars(statement, execution_options={"synchronize_session": False}))
    record_event(session, restored, "restored", operator)
    return restored


def replace_message(
    session: Session, message_id: str, new_message: dict[str, Any], *, operator: str, detail: dict[str, Any]
) -> None:
    """Store an edited message; the first original is kept and the edit goes into the history."""
    statement = (
        update(DeadLetter)
        .where(DeadLetter.message_id == message_id)
        .values(
            original_message=func.coalesce(DeadLetter.original_message, DeadLetter.message),
            message=new_message,
            edited_at=func.now(),
        )
    )
    session.execute(statement, execution_options={"synchronize_session": False})
    record_event(session, [message_id], "edited", operator, detail)
