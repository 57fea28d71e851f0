"""Operator actions on the archive, shared by the CLI and the console: re-drive, purge, restore, edit.

Each selects with a `Filter`, changes the archive, writes the per-message history and one audit
row naming the operator, where they acted from (`cli` or `console`), the filter, the count and
the outcome. A failing action is audited too, with the error as its outcome, then re-raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.dead_letters import archive, changes
from shared.dead_letters.filter import Filter
from shared.errors import InvalidMessage
from workers.dlq import editing
from workers.dlq.redrive import RedriveResult, redrive


@dataclass(frozen=True)
class Operator:
    """Who acts (a console user, `--operator` or the login name) and from where."""

    name: str
    via: str


@dataclass
class Audit:
    """One audit row to write: `done()` inside the change's transaction, or `failed()` after it."""

    sessions: sessionmaker[Session]
    who: Operator
    action: str
    where: dict[str, Any]

    def done(self, count: int, outcome: str, *, session: Session | None = None) -> None:
        if session is None:
            with self.sessions.begin() as own:
                self._write(own, count, outcome)
        else:
            self._write(session, count, outcome)

    def failed(self, error: BaseException) -> None:
        self.done(0, f"failed: {type(error).__name__}: {error}"[:2000])

    def _write(self, session: Session, count: int, outcome: str) -> None:
        changes.audit(
            session, operator=self.who.name, via=self.who.via, action=self.action,
            where=self.where, count=count, outcome=outcome,
        )  # fmt: skip


@contextmanager
def audited(
    sessions: sessionmaker[Session], who: Operator, action: str, where: dict[str, Any]
) -> Iterator[Audit]:
    """Audit the block: it calls `done(...)`; an exception is audited as a failure, then re-raised."""
    audit = Audit(sessions, who, action, where)
    try:
        yield audit
    except Exception as error:
        audit.failed(error)
        raise


def redrive_candidates(
    sessions: sessionmaker[Session], where: Filter, *, limit: int | None = None
) -> list[str]:
    """Ids a re-drive with this filter would publish: only messages still `dead`."""
    with sessions() as session:
        return archive.ids(session, where.with_status("dead"), limit=limit)


def redrive_matching(
    settings: Settings,
    sessions: sessionmaker[Session],
    where: Filter,
    *,
    who: Operator,
    limit: int | None = None,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RedriveResult:
    """Re-drive every dead message matching `where` (see `workers.dlq.redrive`)."""
    ids = redrive_candidates(sessions, where, limit=limit)
    limits = {"limit": limit, "rate": rate}
    described = where.describe() | {name: value for name, value in limits.items() if value is not None}
    with audited(sessions, who, "redrive", described) as audit:
        result = redrive(settings, ids, operator=who.name, rate=rate, on_progress=on_progress)
        audit.done(result.published, result.summary())
    return result


def purge_matching(sessions: sessionmaker[Session], where: Filter, *, who: Operator) -> list[str]:
    """Soft-delete matching messages; `restore_matching` brings them back."""
    with audited(sessions, who, "purge", where.describe()) as audit, sessions.begin() as session:
        purged = changes.purge(session, where, operator=who.name)
        audit.done(len(purged), f"purged {len(purged)} message(s)", session=session)
    return purged


def restore_matching(sessions: sessionmaker[Session], where: Filter, *, who: Operator) -> list[str]:
    with audited(sessions, who, "restore", where.describe()) as audit, sessions.begin() as session:
        restored = changes.restore(session, where, operator=who.name)
        audit.done(len(restored), f"restored {len(restored)} message(s)", session=session)
    return restored


def edit_payload(
    sessions: sessionmaker[Session], message_id: str, new_payload: str, *, who: Operator
) -> bool:
    """Replace a dead message's payload after validating it; False when it did not change."""
    with audited(sessions, who, "edit", {"message_id": message_id}) as audit, sessions.begin() as session:
        found = archive.message(session, message_id)
        if found is None:
            raise InvalidMessage(f"no archived message {message_id!r}")
        if found.status != "dead":
            raise InvalidMessage(f"message {message_id} is {found.status}; only dead messages can be edited")
        new_message = editing.edited_message(found.actor_name, found.message, new_payload)
        after = new_message["kwargs"]["payload"]
        if after == found.payload:
            audit.done(0, "payload unchanged", session=session)
            return False
        detail = {"before": found.payload, "after": after}
        changes.replace_message(session, message_id, new_message, operator=who.name, detail=detail)
        audit.done(1, "payload replaced", session=session)
    return True
