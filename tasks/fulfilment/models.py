"""Fulfilment's tables: an order, the history of its state transitions, listing reservations.

An order also keeps the two facts its label handover waits for (`states.label_handover_due`): the
ledger's answer about the payment (`payment_state`) and the label shipping recorded (`label`),
kept so the seller can be handed it when the payment is booked after the label arrived.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, String, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    listing_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    buyer_id: Mapped[str] = mapped_column(String(100))
    seller_id: Mapped[str] = mapped_column(String(100))
    buyer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    seller: Mapped[dict[str, Any]] = mapped_column(JSONB)
    market: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    item_price_minor: Mapped[int] = mapped_column(BigInteger)
    shipping_price_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(30))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payment_state: Mapped[str] = mapped_column(String(20), server_default="pending")
    label: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class OrderTransition(Base):
    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    event: Mapped[str] = mapped_column(String(50))
    cause: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ListingReservation(Base):
    """At most one row per listing: the order that bought the unique item."""

    __tablename__ = "listing_reservations"

    listing_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
