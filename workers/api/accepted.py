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

from sqlalchemy import DateTime, String, Uuid, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

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


def accept(session: Session, *, order_id: uuid.UUID, digest: str, service: str) -> Acceptance:
    """Record the order, or compare with the body it was first accepted with.

    INSERT ... ON CONFLICT rather than a lookup first: two concurrent requests for one order
    serialise on the primary key, and the second sees the first's hash once it commits.
    """
    statement = insert(AcceptedOrder).values(order_id=order_id, content_hash=digest, service=service)
    inserted = session.execute(
        statement.on_conflict_do_nothing(index_elements=["order_id"]).returning(AcceptedOrder.order_id)
    ).first()
    if inserted is not None:
        return Acceptance.NEW
    stored = session.scalar(select(AcceptedOrder.content_hash).where(AcceptedOrder.order_id == order_id))
    return Acceptance.SAME if stored in (None, digest) else Acceptance.CONFLICT


def accept_cancel(session: Session, *, order_id: uuid.UUID, digest: str) -> Acceptance | None:
    """Record the order's cancellation, or compare with the one accepted; None: order unknown (404).

    The row is locked, so two concurrent cancellations of one order are judged one after the other.
    """
    order = session.scalar(select(AcceptedOrder).where(AcceptedOrder.order_id == order_id).with_for_update())
    if order is None:
        return None
    if order.cancel_hash is None:
        order.cancel_hash = digest
        return Acceptance.NEW
    return Acceptance.SAME if order.cancel_hash == digest else Acceptance.CONFLICT
