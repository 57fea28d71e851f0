"""Notifications' domain functions: fan a notification out per channel, then deliver each once.

Sending leaves our transaction (an SMTP relay, a push gateway), so "once" rests on one dedupe key
per (order, template, role, channel), `identity.dedupe_key_for`:
- it is the `notifications` row's primary key: a delivery that finds the row `sent` does nothing,
  and two deliveries of the same notification (a resent request under another message key)
  wait for each other on that row instead of both sending;
- the push gateway stores one push per dedupe key, however often it is sent;
- the email's Message-ID is derived from it, so a copy re-sent after a crash is recognisable.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import metrics
from shared.db import driver_connection
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tasks.notifications.identity import dedupe_key_for, message_id_for
from tasks.notifications.messages import (
    CHANNELS,
    Channel,
    DeliverNotification,
    NotificationRequest,
    SendNotification,
)
from tasks.notifications.models import PENDING, SENT, SKIPPED_OPT_OUT, Notification, NotificationPreference
from tasks.notifications.push import PushClient
from tasks.notifications.smtp import Mailer
from tasks.notifications.templates import Rendered, render


def send(uow: UnitOfWork, msg: SendNotification) -> None:
    """Ask for one delivery per channel the recipient has not opted out of, and note the others.

    Each channel is its own message so that an SMTP outage retries the email alone.
    """
    refused = opted_out_channels(uow.session, msg.recipient.user_id)
    for channel in CHANNELS:
        key = dedupe_key_for(msg.order_id, msg.template, msg.recipient_role, channel)
        if channel in refused:
            _insert(uow.session, msg, channel, key, status=SKIPPED_OPT_OUT)
            metrics.NOTIFICATIONS.labels(channel, "suppressed").inc()
            continue
        delivery = {**msg.model_dump(), "channel": channel, "dedupe_key": key}
        uow.outbox.add(DeliverNotification.model_validate(delivery), key_suffix=channel)


def deliver(uow: UnitOfWork, msg: DeliverNotification) -> None:
    """Send one notification on one channel, unless it was already sent, and record it as sent.

    The email or push leaves before our commit. If the worker dies after the relay accepted it
    and before the commit, the redelivery sends it again, but with the same Message-ID (email),
    which receivers and mail clients use to drop the copy, or the same dedupe key (push), which
    the gateway collapses: at least once on the wire, once in front of the user. An opt-out that
    arrived after `send` is honoured here too, so a retry never reaches someone who said no.
    """
    status, refused = _claim(uow.session, msg)
    if status == SENT:
        return
    if refused:
        _record(uow, msg.dedupe_key, status=SKIPPED_OPT_OUT)
        metrics.NOTIFICATIONS.labels(msg.channel, "suppressed").inc()
        return
    rendered = render(msg.template, msg.template_context())
    message_id = _send(uow.runtime, msg, rendered)
    _record(uow, msg.dedupe_key, status=SENT, message_id=message_id, sent_at=datetime.now(UTC))


def set_preference(session: Session, user_id: str, channel: Channel, opted_out: bool) -> None:
    """Record that `user_id` does (or no longer does) want notifications on `channel`; for the API/CLI."""
    values = {"user_id": user_id, "channel": channel, "opted_out": opted_out}
    statement = insert(NotificationPreference).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[NotificationPreference.user_id, NotificationPreference.channel],
            set_={"opted_out": statement.excluded.opted_out, "updated_at": func.now()},
        )
    )


#: A user's opted-out channels: one statement for every channel.
_OPTED_OUT_CHANNELS = "SELECT channel FROM notification_preferences WHERE user_id = %(user_id)s AND opted_out"


def opted_out_channels(session: Session, user_id: str) -> frozenset[str]:
    """The channels `user_id` opted out of; nobody is opted out of anything until they say so."""
    rows = driver_connection(session).execute(_OPTED_OUT_CHANNELS, {"user_id": user_id}).fetchall()
    return frozenset(channel for (channel,) in rows)


#: Insert-if-absent and lock in one statement: the no-op update of a row that exists takes its
#: row lock, so a concurrent delivery of the same key waits here until this transaction ends,
#: then reads its outcome. The recipient's opt-out for the channel comes back with it. `pending`
#: is never committed: it is replaced before the commit, or rolled back with the failed attempt.
_CLAIM = (
    "INSERT INTO notifications (dedupe_key, order_id, template, channel, user_id, status) "
    "VALUES (%(key)s, %(order_id)s, %(template)s, %(channel)s, %(user_id)s, %(pending)s) "
    "ON CONFLICT (dedupe_key) DO UPDATE SET status = notifications.status "
    "RETURNING status, EXISTS (SELECT 1 FROM notification_preferences p "
    "WHERE p.user_id = %(user_id)s AND p.channel = %(channel)s AND p.opted_out)"
)
_RECORD = (
    "UPDATE notifications SET status = %(status)s, message_id = %(message_id)s, sent_at = %(sent_at)s "
    "WHERE dedupe_key = %(key)s"
)


def _claim(session: Session, msg: DeliverNotification) -> tuple[str, bool]:
    """The notification's row, inserted or locked: its status, and whether the channel is refused."""
    params = {
        "key": msg.dedupe_key,
        "order_id": msg.order_id,
        "template": msg.template,
        "channel": msg.channel,
        "user_id": msg.recipient.user_id,
        "pending": PENDING,
    }
    status, refused = driver_connection(session).execute(_CLAIM, params).fetchone()
    return str(status), bool(refused)


def _record(
    uow: UnitOfWork, key: str, *, status: str, message_id: str | None = None, sent_at: datetime | None = None
) -> None:
    """The outcome replaces `pending` with the commit (`write_at_commit`): nothing in the
    transaction reads it, a batch-mate's notification is another row, and a concurrent delivery
    of this key waits on the row lock `_claim` took until the commit anyway."""
    params = {"key": key, "status": status, "message_id": message_id, "sent_at": sent_at}
    uow.write_at_commit(_RECORD, params)


def _insert(session: Session, msg: NotificationRequest, channel: str, key: str, *, status: str) -> None:
    values = {
        "dedupe_key": key,
        "order_id": msg.order_id,
        "template": msg.template,
        "channel": channel,
        "user_id": msg.recipient.user_id,
        "status": status,
    }
    session.execute(insert(Notification).values(values).on_conflict_do_nothing())


def _send(runtime: Runtime, msg: DeliverNotification, rendered: Rendered) -> str:
    """`_hand_over`, counted in `circulate_notifications_total` as sent or failed (each attempt)."""
    try:
        sent_id = _hand_over(runtime, msg, rendered)
    except Exception:
        metrics.NOTIFICATIONS.labels(msg.channel, "failed").inc()
        raise
    metrics.NOTIFICATIONS.labels(msg.channel, "sent").inc()
    return sent_id


def _hand_over(runtime: Runtime, msg: DeliverNotification, rendered: Rendered) -> str:
    """Hand the notification over; returns the email's Message-ID or the gateway's push id."""
    if msg.channel == "email":
        message_id = message_id_for(msg.dedupe_key)
        runtime.adapter("mailer", Mailer).send(
            to=msg.recipient.email, subject=rendered.subject, body=rendered.text_body, message_id=message_id
        )
        return message_id
    return runtime.adapter("push", PushClient).send(
        user_id=msg.recipient.user_id,
        title=rendered.push_title,
        body=rendered.push_body,
        dedupe_key=msg.dedupe_key,
    )
