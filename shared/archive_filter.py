"""Which archived dead letters an operator means: one filter for listing, re-drive, purge and export.

The CLI options, the console's query string and the audit log all speak `Filter`, so "what
`redrive --group X` touched" is recorded in the same words the operator typed. `where()` turns it
into a SQL condition with bound parameters (never string-formatted values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

#: The statuses an archived message can be in; `all` in a filter means any of them.
STATUSES = ("dead", "redriven", "purged")


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

    def where(self) -> tuple[str, dict[str, Any]]:
        """A SQL condition over `dead_letters` (aliased `d`) and its parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        exact = {
            "message_id": "d.message_id",
            "queue": "d.queue_name",
            "actor": "d.actor_name",
            "error_type": "d.exception_type",
            "group": "d.group_key",
        }
        for name, column in exact.items():
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} = :{name}")
                params[name] = value
        if self.text:
            clauses.append(
                "(d.reason ILIKE :text ESCAPE '\\' OR d.message::text ILIKE :text ESCAPE '\\' "
                "OR d.message_id ILIKE :text ESCAPE '\\')"
            )
            params["text"] = f"%{_escape_like(self.text)}%"
        if self.since is not None:
            clauses.append("d.last_failed_at >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("d.last_failed_at < :until")
            params["until"] = self.until
        if self.status is None:
            clauses.append("d.status <> 'purged'")
        elif self.status != "all":
            clauses.append("d.status = :status")
            params["status"] = self.status
        return " AND ".join(clauses) or "TRUE", params


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
