"""Shipping's table: the one label bought for an order, as the carrier sold it.

`order_id` is the primary key on purpose: an order has at most one label, so a second purchase
for the same order cannot even be stored, whatever path it took.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

PURCHASED = "purchased"
VOIDED = "voided"


class Label(Base):
    __tablename__ = "labels"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    carrier: Mapped[str] = mapped_column(String(100))
    label_id: Mapped[str] = mapped_column(String(100), unique=True)
    tracking_number: Mapped[str] = mapped_column(String(100))
    label_url: Mapped[str] = mapped_column(String(500))
    cost_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default=PURCHASED)
    purchased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("status IN ('purchased', 'voided')", name="status_valid"),
        CheckConstraint("cost_minor >= 0", name="cost_not_negative"),
        CheckConstraint("(status = 'voided') = (voided_at IS NOT NULL)", name="voided_at_iff_voided"),
    )
