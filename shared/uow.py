"""The unit of work: one database transaction that commits only when the block asks it to.

Handlers receive a UnitOfWork and never commit themselves: the actor factory commits after the
domain function returns, so the idempotency claim, the effects and the outbox rows land together
or not at all.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from shared import crash_points
from shared.messages import Envelope
from shared.outbox import Outbox

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
        self._bind_outbox()
        return self

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
        )

    def commit(self) -> None:
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
