"""The unit of work: one database transaction that commits only when the block asks it to.

Handlers receive a UnitOfWork and never commit themselves: the actor factory commits after the
domain function returns, so the idempotency claim, the effects and the outbox rows land together
or not at all.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from shared import crash_points
from shared.db import Params, driver_connection, send_together
from shared.messages import Envelope
from shared.outbox import WAKE_RELAY, Outbox, take_held

if TYPE_CHECKING:
    from shared.runtime import Runtime


class UnitOfWork:
    """`with UnitOfWork(...) as uow:` ... `uow.commit()`; leaving the block without it rolls back."""

    session: Session
    outbox: Outbox

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        envelope: Envelope | None = None,
        runtime: Runtime | None = None,
        correlation_id: str = "",
    ) -> None:
        self._sessions = sessions
        self.envelope = envelope
        self._runtime = runtime
        self._correlation_id = envelope.correlation_id if envelope else correlation_id

    @property
    def runtime(self) -> Runtime:
        """Adapters (carrier, mailer, push, settings) for handlers that reach outside the database."""
        if self._runtime is None:
            raise RuntimeError("this unit of work was opened without a runtime")
        return self._runtime

    def __enter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.session.begin()
        self._connection: psycopg.Connection[Any] | None = None
        self._held_rows: list[dict[str, Any]] = []
        self._writes: list[tuple[str, Params]] = []
        self._bind_outbox()
        return self

    def execute(self, statement: str, params: Params = None) -> psycopg.Cursor[Any]:
        """Run one SQL statement (psycopg's `%(name)s` placeholders) in this unit of work's transaction.

        The handlers' path to the database: SQLAlchemy's `Session.execute` costs more CPU than a
        small statement itself (about a fifth of a worker's CPU per message, profiled), which a
        handler applying one or two statements per message pays on every message. Objects the
        handler added to or changed in `session` are flushed first, as the session's autoflush
        would, so both can be used in one handler and each sees what the other wrote.
        """
        return self._driver().execute(statement, params)

    def write_at_commit(self, statement: str, params: Params = None) -> None:
        """Send a write with the commit: for a write that nothing in this transaction reads.

        `execute` waits for each statement's answer, a round trip each. A write whose result
        the handler does not need (a row inserted for the record) can instead travel with the
        COMMIT, the held outbox rows and the other such writes, as one query string: one round
        trip for all of them, and for a whole batch's (`shared.batch`). What that costs is the contract:
        nothing in this unit of work sees the write before the commit (neither a later statement
        of the same handler nor another message's handler in the same batch), and an error the
        write raises (a constraint it violates) is raised by `commit`, which rolls everything back.
        """
        self._writes.append((statement, params))

    def _driver(self) -> psycopg.Connection[Any]:
        """The transaction's psycopg connection, with the session's pending changes flushed to it."""
        self.session.flush()
        if self._connection is None:
            self._connection = driver_connection(self.session)
        return self._connection

    def handle(self, envelope: Envelope) -> None:
        """From now on the block handles `envelope` (the next message of a batch, `shared.batch`):
        outbox rows it adds follow from this message, in the same transaction."""
        self.envelope = envelope
        self._correlation_id = envelope.correlation_id
        self._bind_outbox()

    def _bind_outbox(self) -> None:
        self.outbox = Outbox(
            self.session,
            correlation_id=self._correlation_id,
            parent_key=self.envelope.idempotency_key if self.envelope else None,
            traceparent=self.envelope.traceparent if self.envelope else None,
            held=self._held_rows,
        )

    def commit(self) -> None:
        """Commit, with the writes held for it (`write_at_commit`) and the outbox rows held for
        this transaction (`Outbox`) sent ahead of the COMMIT as one query string: one write to
        the socket and one round trip (`shared.db.send_together`).

        When a held row is due now, the relay's wake-up (`WAKE_RELAY`) follows the COMMIT in the
        same string as a transaction of its own, so this transaction's commit never waits on
        PostgreSQL's notification lock; if a statement or the COMMIT fails, PostgreSQL skips the
        rest of the string and no wake-up is sent."""
        if self._writes or self._held_rows:
            statements = list(self._writes)
            self._writes.clear()
            held = take_held(self._held_rows)
            if held is not None:
                statements.append((held.statement, held.params))
            statements.append(("COMMIT", None))
            if held is not None and held.due_now:
                statements.append((WAKE_RELAY, None))
            send_together(self._driver(), statements)
        # Ends the session's transaction; the connection's is over, so nothing is sent.
        self.session.commit()
        crash_points.reach("worker.after_commit")

    def __exit__(self, *exc: Any) -> None:
        _exit(self.session, *exc)


def _exit(
    session: Session,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    try:
        if session.in_transaction():
            session.rollback()
    finally:
        session.close()
