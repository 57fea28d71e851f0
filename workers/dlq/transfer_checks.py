"""What an import line must be before it reaches the database: every field checked, one message.

An export file may have been edited by hand, cut short or written by something else. Postgres
would refuse much of what is wrong (a NUL, an out-of-range integer, a bad time) with a driver
exception and a traceback; the rest (an id that is not a UUID, a row whose id is not its
message's own) it would store, and re-drive would then publish a message under the wrong id.
`checked_row` raises `InvalidMessage` naming the line and the field instead. Pure functions.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import FromClause

from shared.dead_letters.models import STATUSES, DeadLetter, DeadLetterEvent
from shared.dead_letters.record import storable
from shared.errors import InvalidMessage


def _sizes(table: FromClause, names: Iterable[str]) -> dict[str, int | None]:
    """The columns' lengths as the model declares them (None: unbounded `text`)."""
    return {name: getattr(table.c[name].type, "length", None) for name in names}


#: Text columns and their sizes; required ones first.
_REQUIRED_TEXT = _sizes(
    DeadLetter.__table__, ("queue_name", "actor_name", "exception_type", "reason", "host")
)
_OPTIONAL_TEXT = _sizes(DeadLetter.__table__, ("traceback", "recorded_by", "purged_by", "purged_from"))
_EVENT_TEXT = _sizes(DeadLetterEvent.__table__, ("kind", "operator"))
_INTEGERS = ("attempts", "redrive_count")
_TIMES = ("first_failed_at", "last_failed_at", "archived_at", "last_redriven_at", "purged_at", "edited_at")
_INT_MAX = 2**31 - 1


def decoded_lines(source: Iterable[bytes]) -> Iterator[str]:
    """Lines of a binary file as text; a line that is not UTF-8 stops the import, named."""
    for number, raw in enumerate(source, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidMessage(f"line {number} is not UTF-8 text (byte {error.start + 1})") from error


def checked_row(number: int, row: Any) -> dict[str, Any]:
    """`row` with its times parsed and its raw body decoded, or InvalidMessage naming the field."""
    where = f"line {number}"
    if not isinstance(row, dict):
        raise InvalidMessage(f"{where} is not a JSON object")
    _no_unstorable_text(where, row)
    checked: dict[str, Any] = {"message_id": _message_id(where, row)}
    for name, size in (_REQUIRED_TEXT | _OPTIONAL_TEXT).items():
        checked[name] = _text(where, name, row.get(name), size, required=name in _REQUIRED_TEXT)
    status = row.get("status")
    if status not in STATUSES:
        raise InvalidMessage(f"{where}: status must be one of {', '.join(STATUSES)}")
    checked["status"] = status
    for name in _INTEGERS:
        checked[name] = _integer(where, name, row.get(name))
    for name in _TIMES:
        checked[name] = _time(where, name, row.get(name))
    checked["message"] = row["message"]
    checked["original_message"] = _object(where, "original_message", row.get("original_message"))
    checked["raw_body"] = _raw_body(where, row.get("raw_body"))
    checked["events"] = _events(where, row.get("events", []))
    return checked


def _no_unstorable_text(where: str, row: dict[str, Any]) -> None:
    """NUL and lone surrogates anywhere (Postgres cannot store them; cleaning would alter data)."""
    for name, value in row.items():
        if storable(value) != value:
            raise InvalidMessage(f"{where}: {name} holds a NUL character or an invalid surrogate")


def _message_id(where: str, row: dict[str, Any]) -> str:
    message_id, message = row.get("message_id"), row.get("message")
    if not isinstance(message_id, str) or not _is_uuid(message_id):
        raise InvalidMessage(f"{where}: message_id must be a UUID")
    if not isinstance(message, dict):
        raise InvalidMessage(f"{where}: message must be a JSON object")
    if message.get("message_id") != message_id:
        raise InvalidMessage(f"{where}: message_id is not the message's own message_id")
    return message_id


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _text(where: str, name: str, value: Any, size: int | None, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidMessage(f"{where}: {name} must be {'non-empty ' if required else ''}text")
    if size is not None and len(value) > size:
        raise InvalidMessage(f"{where}: {name} is longer than {size} characters")
    return value


def _integer(where: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
        raise InvalidMessage(f"{where}: {name} must be a whole number from 0 to {_INT_MAX}")
    return value


def _time(where: str, name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidMessage(f"{where}: {name} must be an ISO 8601 time")


def _object(where: str, name: str, value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise InvalidMessage(f"{where}: {name} must be a JSON object")
    return value


def _raw_body(where: str, value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise InvalidMessage(f"{where}: raw_body must be base64")


def _events(where: str, events: Any) -> list[dict[str, Any]]:
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise InvalidMessage(f"{where}: events must be a list of objects")
    checked = []
    for index, event in enumerate(events):
        at = f"{where}, events[{index}]"
        kind = _text(at, "kind", event.get("kind"), _EVENT_TEXT["kind"], required=True)
        operator = _text(at, "operator", event.get("operator"), _EVENT_TEXT["operator"], required=True)
        moment = _time(at, "at", event.get("at"))
        if moment is None:
            raise InvalidMessage(f"{at}: at must be an ISO 8601 time")
        checked.append({"kind": kind, "operator": operator, "at": moment, "detail": event.get("detail", {})})
    return checked
