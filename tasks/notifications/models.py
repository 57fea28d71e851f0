"""Notifications' tables: what was sent to whom (by dedupe key), and who opted out of what.

A `notifications` row is keyed by the dedupe key (order, template, role, channel), so "was this
notification already sent?" is one primary-key lookup, and two deliveries of the same
notification serialise on that row.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

PENDING = "pending"
SENT = "sent"
SKIPPED_OPT_OUT = "skipped_opt_out"
FAILED = "failed"


class Notification(Base):
    __tablename__ = "notifications"

    dedupe_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    template: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    # The email's RFC 5322 Message-ID, or the push gateway's push id.
    message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("channel IN ('email', 'push')", name="channel_valid"),
        CheckConstraint("status IN ('pending', 'sent', 'skipped_opt_out', 'failed')", name="status_valid"),
    )


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("channel IN ('email', 'push')", name="channel_valid"),)
