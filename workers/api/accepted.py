"""The orders the API accepted: order id and content hash, so it can tell a resend from a conflict.

The same goes for an order's cancellation (`cancel_hash`): its message key is per order too.

Recorded in the request's transaction, together with the outbox row, so an order is "accepted"
if and only if its job was queued. The hash is `shared.idempotency.content_hash`, the one the
workers compare when a key comes back, so the API answers 409 exactly where every worker would
dead-letter the message as a `ConflictingReplay`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from sqlalchemy import DateTime, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class AcceptedOrder(Base):
    __tablename__ = "accepted_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: None for orders accepted before the API kept hashes (backfilled by the migration).
    content_hash: Mapped[str | None] = mapped_column(String(64))
    #: The accepted cancellation's hash; None until one is accepted.
    cancel_hash: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Acceptance(enum.Enum):
    NEW = "new"
    SAME = "same"
    CONFLICT = "conflict"


class OrderAdmission:
    """Record the order, or compare with the body it was first accepted with.

    INSERT ... ON CONFLICT rather than a lookup first: two concurrent requests for one order
    serialise on the primary key, and the second sees the first's hash once it commits.
    """

    statement = (
        "INSERT INTO accepted_orders (order_id, content_hash, service) "
        "VALUES (%(order_id)s, %(digest)s, %(service)s) "
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
    )
    #: Returns a row only when the order is new (`workers.api.intake`'s one-statement path).
    first_time: str | None = statement
    _STORED = "SELECT content_hash FROM accepted_orders WHERE order_id = %(order_id)s"

    def __init__(self, *, order_id: uuid.UUID, digest: str, service: str) -> None:
        self.params: dict[str, Any] = {"order_id": order_id, "digest": digest, "service": service}

    async def judge(self, conn: AsyncConnection[TupleRow], rows: list[TupleRow]) -> Acceptance:
        if rows:
            return Acceptance.NEW
        row = await (await conn.execute(self._STORED, self.params)).fetchone()
        stored = None if row is None else row[0]
        return Acceptance.SAME if stored in (None, self.params["digest"]) else Acceptance.CONFLICT


class CancelAdmission:
    """Record the order's cancellation, or compare with the one accepted; None: order unknown (404).

    The row is locked, so two concurrent cancellations of one order are judged one after the other.
    """

    statement = "SELECT cancel_hash FROM accepted_orders WHERE order_id = %(order_id)s FOR UPDATE"
    first_time: str | None = None  # cancellations are rare: always judged step by step
    _RECORD = "UPDATE accepted_orders SET cancel_hash = %(digest)s WHERE order_id = %(order_id)s"

    def __init__(self, *, order_id: uuid.UUID, digest: str) -> None:
        self.params: dict[str, Any] = {"order_id": order_id, "digest": digest}

    async def judge(self, conn: AsyncConnection[TupleRow], rows: list[TupleRow]) -> Acceptance | None:
        if not rows:
            return None
        if rows[0][0] is None:
            await conn.execute(self._RECORD, self.params)
            return Acceptance.NEW
        return Acceptance.SAME if rows[0][0] == self.params["digest"] else Acceptance.CONFLICT
