"""The journal's tables: transactions (one per posting key) and their signed entries.

Both tables are append-only. The migration installs triggers that refuse UPDATE and DELETE and a
deferred constraint trigger that refuses, at commit, a transaction whose entries do not sum to zero
in each currency; a mistake is corrected by posting another transaction, never by editing one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base
from tasks.ledger.posting import Entry, JournalTransaction


class TransactionRecord(Base):
    """A stored `posting.JournalTransaction`; `content_hash` tells a replay from a conflict."""

    __tablename__ = "journal_transactions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    posting_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    entries: Mapped[list[EntryRecord]] = relationship(lazy="selectin", order_by="EntryRecord.id")

    def as_posting(self) -> JournalTransaction:
        """The pure form, for the posting rules and their checks."""
        entries = tuple(Entry(e.account, e.amount_minor, e.currency) for e in self.entries)
        return JournalTransaction(self.posting_key, self.kind, self.order_id, entries)


class EntryRecord(Base):
    """One signed line: a debit is positive, a credit negative, in minor units."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("journal_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (
        # Zero lines are left out by the posting rules (see tasks.ledger.posting); keep it that way.
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_is_iso"),
    )
