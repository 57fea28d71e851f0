"""Which archived dead letters an operator means: one filter for listing, re-drive, purge and export.

The CLI options, the console's query string and the audit log all speak `Filter`, so "what
`redrive --group X` touched" is recorded in the same words the operator typed. `where()` turns it
into a condition over the `DeadLetter` model with bound parameters (never string-formatted values).
`all` as a status means any of `STATUSES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, or_, true

from shared.dead_letters.models import STATUSES, DeadLetter


@dataclass(frozen=True)
class Filter:
    """Every field narrows the selection; an empty filter means every message that is not purged."""

    message_id: str | None = None
    queue: str | None = None
    actor: str | None = None
    error_type: str | None = None
    group: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str) and ("\x00" in value or _has_surrogate(value)):
                raise ValueError(f"{field.name} must be text without NUL characters or undecodable bytes")
        if self.status not in (None, "all", *STATUSES):
            raise ValueError(f"unknown status {self.status!r}; use one of {', '.join(STATUSES)} or all")

    def is_empty(self) -> bool:
        """True when only the status (or nothing) is set: actions refuse that without `--all`."""
        return all(getattr(self, field.name) is None for field in fields(self) if field.name != "status")

    def describe(self) -> dict[str, str]:
        """The filter as JSON-ready text, for the audit log and the console's links."""
        return {
            name: value.isoformat() if isinstance(value, datetime) else str(value)
            for name, value in asdict(self).items()
            if value is not None
        }

    def with_status(self, status: str) -> Filter:
        values = asdict(self) | {"status": status}
        return Filter(**values)

    def where(self) -> ColumnElement[bool]:
        """The condition over `DeadLetter` this filter means; values are bound, never formatted in."""
        clauses: list[ColumnElement[bool]] = []
        exact = {
            "message_id": DeadLetter.message_id,
            "queue": DeadLetter.queue_name,
            "actor": DeadLetter.actor_name,
            "error_type": DeadLetter.exception_type,
            "group": DeadLetter.group_key,
        }
        for name, column in exact.items():
            value = getattr(self, name)
            if value is not None:
                clauses.append(column == value)
        if self.text:
            pattern = f"%{_escape_like(self.text)}%"
            clauses.append(
                or_(
                    DeadLetter.reason.ilike(pattern, escape="\\"),
                    cast(DeadLetter.message, Text).ilike(pattern, escape="\\"),
                    DeadLetter.message_id.ilike(pattern, escape="\\"),
                )
            )
        if self.since is not None:
            clauses.append(DeadLetter.last_failed_at >= self.since)
        if self.until is not None:
            clauses.append(DeadLetter.last_failed_at < self.until)
        if self.status is None:
            clauses.append(DeadLetter.status != "purged")
        elif self.status != "all":
            clauses.append(DeadLetter.status == self.status)
        return and_(true(), *clauses)


def _has_surrogate(value: str) -> bool:
    """Undecodable bytes reach Python as lone surrogates, which Postgres cannot be sent."""
    return any("\ud800" <= char <= "\udfff" for char in value)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def from_mapping(values: dict[str, Any]) -> Filter:
    """A filter from a query string or form; blank fields are ignored, dates are ISO 8601."""
    known = {field.name for field in fields(Filter)}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known or value in (None, ""):
            continue
        text = str(value).strip()
        cleaned[name] = datetime.fromisoformat(text) if name in ("since", "until") else text
    return Filter(**cleaned)
