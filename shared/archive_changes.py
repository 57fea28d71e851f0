"""Changing the dead-letter archive: sweeping in, purge and restore, payload edits, history, audit.

Every change writes a `dead_letter_events` row for the message it touched, and every operator
action writes one `dlq_audit` row (who, how, which filter, how many, outcome). All of it runs in
the caller's transaction, so a change and its history commit together. Re-drive marks rows itself
(`workers/dlq/redrive.py`), inside the transaction that holds them while they are published.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.archive_filter import Filter


@dataclass(frozen=True)
class SweptMessage:
    """A message taken off an `.XQ`, with what the sweeper could learn about its death."""

    message_id: str
    queue_name: str
    actor_name: str
    message: dict[str, Any]
    exception_type: str
    reason: str
    attempts: int
    host: str
    raw_body: bytes | None


_ARCHIVE = text(
    """
    INSERT INTO dead_letters (message_id, queue_name, actor_name, message, exception_type, reason,
                              attempts, host, status, recorded_by, archived_at, raw_body)
    VALUES (:message_id, :queue_name, :actor_name, CAST(:message AS jsonb), :exception_type, :reason,
            :attempts, :host, 'dead', 'sweeper', now(), :raw_body)
    ON CONFLICT (message_id) DO UPDATE SET
        archived_at = now(), raw_body = coalesce(dead_letters.raw_body, EXCLUDED.raw_body)
    WHERE dead_letters.archived_at IS NULL OR dead_letters.archived_at < dead_letters.last_failed_at
    RETURNING (xmax = 0) AS inserted
    """
)


def archive_swept(session: Session, swept: SweptMessage, *, operator: str) -> str | None:
    """Upsert one swept message by id: "recorded" (new row), "archived" (the worker's row), or None.

    None means this death was already archived (a copy swept twice after a crash between commit
    and ack), so sweeping is idempotent. A row the worker recorded keeps its reason and traceback.
    """
    fields = asdict(swept) | {"message": json.dumps(swept.message, default=str)}
    inserted = session.execute(_ARCHIVE, fields).scalar_one_or_none()
    if inserted is None:
        return None
    record_event(session, [swept.message_id], "archived", operator, {"from": f"{swept.queue_name}.XQ"})
    return "recorded" if inserted else "archived"


_EVENT = text(
    "INSERT INTO dead_letter_events (message_id, kind, operator, detail) "
    "SELECT id, :kind, :operator, CAST(:detail AS jsonb) FROM unnest(CAST(:ids AS text[])) AS id"
)


def record_event(
    session: Session, message_ids: list[str], kind: str, operator: str, detail: dict[str, Any] | None = None
) -> None:
    """Append one history event per message."""
    if message_ids:
        params = {"ids": message_ids, "kind": kind, "operator": operator, "detail": json.dumps(detail or {})}
        session.execute(_EVENT, params)


_AUDIT = text(
    "INSERT INTO dlq_audit (operator, via, action, filter, count, outcome) "
    "VALUES (:operator, :via, :action, CAST(:filter AS jsonb), :count, :outcome)"
)


def audit(
    session: Session, *, operator: str, via: str, action: str, where: dict[str, Any], count: int, outcome: str
) -> None:
    """One row in the audit log; `where` is the filter (or ids) the operator gave."""
    params = {"operator": operator, "via": via, "action": action, "count": count, "outcome": outcome}
    session.execute(_AUDIT, params | {"filter": json.dumps(where, default=str)})


def purge(session: Session, where: Filter, *, operator: str) -> list[str]:
    """Soft-delete matching messages (status purged, who and when); returns their ids."""
    condition, params = where.where()
    purged = list(
        session.execute(
            text(
                f"UPDATE dead_letters d SET purged_from = d.status, status = 'purged', purged_at = now(), "
                f"purged_by = :operator WHERE {condition} AND d.status <> 'purged' RETURNING d.message_id"
            ),
            params | {"operator": operator},
        ).scalars()
    )
    record_event(session, purged, "purged", operator)
    return purged


_EXPIRE_PURGED = text(
    "DELETE FROM dead_letters WHERE status = 'purged' AND purged_at < now() - make_interval(days => :days)"
)


def expire_purged(session: Session, *, retention_days: int) -> int:
    """Delete for good what was purged longer ago than the retention (their history goes too).

    Until then a purge is only a status and `restore` undoes it; the audit log keeps the record
    of both the purge and the expiry.
    """
    deleted = session.execute(_EXPIRE_PURGED, {"days": retention_days})
    return int(deleted.rowcount)  # type: ignore[attr-defined]


def restore(session: Session, where: Filter, *, operator: str) -> list[str]:
    """Undo a purge: each message gets back the status it had; returns their ids."""
    condition, params = where.with_status("purged").where()
    restored = list(
        session.execute(
            text(
                "UPDATE dead_letters d SET status = coalesce(d.purged_from, 'dead'), purged_from = NULL, "
                f"purged_at = NULL, purged_by = NULL WHERE {condition} RETURNING d.message_id"
            ),
            params,
        ).scalars()
    )
    record_event(session, restored, "restored", operator)
    return restored


def replace_message(
    session: Session, message_id: str, new_message: dict[str, Any], *, operator: str, detail: dict[str, Any]
) -> None:
    """Store an edited message; the first original is kept and the edit goes into the history."""
    session.execute(
        text(
            "UPDATE dead_letters SET original_message = coalesce(original_message, message), "
            "message = CAST(:message AS jsonb), edited_at = now() WHERE message_id = :id"
        ),
        {"id": message_id, "message": json.dumps(new_message)},
    )
    record_event(session, [message_id], "edited", operator, detail)
