"""The dead-letter archive's tables as typed models, one per table; every query module uses these.

`dead_letters` holds one row per dead message id: what the worker recorded when Dramatiq rejected
it (`shared.dead_letters.record`), what the sweeper learned from its `.XQ` copy, and what operators
did to it since. `dead_letter_events` is each message's history and `dlq_audit` the operators'
log. The columns and constraints here are the ones the migrations create (revisions 0001 and
0005); `tests/integration/test_dead_letter_tables.py` fails when the two drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

#: The statuses an archived message can be in (the table's check constraint says the same).
STATUSES = ("dead", "redriven", "purged")

TZ = DateTime(timezone=True)


class DeadLetter(Base):
    """One dead message: the Dramatiq message as delivered, why it died, and what was done since.

    `normalised_reason` and `group_key` are computed by a database trigger (so the worker's own
    upsert gets them too) and are never written from Python.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (CheckConstraint("status IN ('dead', 'redriven', 'purged')", name="status_known"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(100), index=True)
    actor_name: Mapped[str] = mapped_column(String(100))
    message: Mapped[dict[str, Any]] = mapped_column(JSONB)
    exception_type: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    host: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), server_default="dead", index=True)
    first_failed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_failed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), index=True)
    normalised_reason: Mapped[str | None] = mapped_column(Text)
    group_key: Mapped[str | None] = mapped_column(String(16), index=True)
    recorded_by: Mapped[str] = mapped_column(String(20), server_default="worker")
    archived_at: Mapped[datetime | None] = mapped_column(TZ)
    raw_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    redrive_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_redriven_at: Mapped[datetime | None] = mapped_column(TZ)
    purged_at: Mapped[datetime | None] = mapped_column(TZ)
    purged_by: Mapped[str | None] = mapped_column(String(200))
    purged_from: Mapped[str | None] = mapped_column(String(20))
    # None must be SQL NULL here, not the JSON `null` (coalesce() relies on it).
    original_message: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    edited_at: Mapped[datetime | None] = mapped_column(TZ)

    @property
    def payload(self) -> Any:
        """The payload part of the message kwargs (what `edit` changes), or None."""
        kwargs = self.message.get("kwargs")
        return kwargs.get("payload") if isinstance(kwargs, dict) else None

    @property
    def idempotency_key(self) -> str | None:
        kwargs = self.message.get("kwargs")
        envelope = kwargs.get("envelope") if isinstance(kwargs, dict) else None
        return envelope.get("idempotency_key") if isinstance(envelope, dict) else None


class DeadLetterEvent(Base):
    """One step in a dead message's history: failed, archived, edited, re-driven, purged, restored."""

    __tablename__ = "dead_letter_events"
    __table_args__ = (Index("ix_dead_letter_events_message_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("dead_letters.message_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(30))
    operator: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class DeadLetterAudit(Base):
    """One operator action on the archive: who, through what, which filter, how many, the outcome."""

    __tablename__ = "dlq_audit"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), index=True)
    operator: Mapped[str] = mapped_column(String(200))
    via: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30))
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    count: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome: Mapped[str] = mapped_column(Text)
