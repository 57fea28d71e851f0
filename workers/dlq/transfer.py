"""Export and import of archived dead letters as JSON lines, history included.

One line per message: every archive column (times in ISO 8601, a raw undecodable body in base64)
plus its `events`. Import inserts messages that are not in the archive yet and skips the others
(never overwrites), so importing the same file twice changes nothing. The archive's triggers
recompute the group key; `circulate.archive_import` tells them the history comes with the file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from shared.dead_letters import archive
from shared.dead_letters.filter import Filter
from shared.dead_letters.models import DeadLetter, DeadLetterEvent
from shared.errors import InvalidMessage
from workers.dlq.transfer_checks import checked_row

#: Every archive column but the two the triggers compute from the reason.
_COLUMNS = [
    column.key
    for column in DeadLetter.__table__.columns
    if column.key not in ("normalised_reason", "group_key")
]


def export_lines(session: Session, where: Filter) -> Iterator[str]:
    """One JSON line per matching message, oldest failure first."""
    for message in reversed(archive.messages(session, where, limit=None)):
        row = {name: _jsonable(getattr(message, name)) for name in _COLUMNS}
        row["events"] = [_event(event) for event in archive.events(session, message.message_id)]
        yield json.dumps(row, sort_keys=True)


def _event(event: DeadLetterEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "operator": event.operator,
        "at": event.at.isoformat(),
        "detail": event.detail,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def import_lines(session: Session, lines: Iterable[str]) -> tuple[int, int]:
    """Insert the messages of an export; returns (imported, already present).

    Every line is checked first (`transfer_checks.checked_row`): a bad one stops the import with
    InvalidMessage naming it, and the caller's transaction rolls back the lines before it.
    """
    session.execute(text("SET LOCAL circulate.archive_import = 'on'"))
    imported = skipped = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = checked_row(number, _parse(number, line))
        new = postgresql.insert(DeadLetter).values(_params(row)).on_conflict_do_nothing()
        if session.execute(new.returning(DeadLetter.message_id)).scalar_one_or_none() is None:
            skipped += 1
            continue
        imported += 1
        if row["events"]:
            events = [{"message_id": row["message_id"], **event} for event in row["events"]]
            session.execute(insert(DeadLetterEvent), events)
    return imported, skipped


def _parse(number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, RecursionError) as error:
        raise InvalidMessage(f"line {number} is not JSON: {error}") from error


def _params(row: dict[str, Any]) -> dict[str, Any]:
    """Insert parameters of a checked row; defaults for what an older export may lack."""
    params: dict[str, Any] = {name: row.get(name) for name in _COLUMNS}
    params["attempts"] = params["attempts"] or 1
    params["redrive_count"] = params["redrive_count"] or 0
    for name in ("first_failed_at", "last_failed_at"):
        params[name] = params[name] or datetime.now().astimezone()
    params["recorded_by"] = params["recorded_by"] or "import"
    return params
