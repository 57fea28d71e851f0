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

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import metrics
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
    for channel in CHANNELS:
        key = dedupe_key_for(msg.order_id, msg.template, msg.recipient_role, channel)
        if opted_out(uow.session, msg.recipient.user_id, channel):
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
    row = _claim(uow.session, msg)
    if row.status == SENT:
        return
    if opted_out(uow.session, msg.recipient.user_id, msg.channel):
        row.status = SKIPPED_OPT_OUT
        metrics.NOTIFICATIONS.labels(msg.channel, "suppressed").inc()
        return
    rendered = render(msg.template, msg.template_context())
    row.message_id = _send(uow.runtime, msg, rendered)
    row.status, row.sent_at = SENT, datetime.now(UTC)


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


def opted_out(session: Session, user_id: str, channel: str) -> bool:
    """Whether the user opted out of `channel`; nobody is opted out until they say so."""
    query = select(NotificationPreference.opted_out).filter_by(user_id=user_id, channel=channel)
    return bool(session.scalar(query))


def _claim(session: Session, msg: DeliverNotification) -> Notification:
    # Insert-if-absent then lock: a concurrent delivery of the same key waits here until this
    # transaction ends, then reads its outcome. `pending` is never committed: it is replaced
    # before the commit, or rolled back with the failed attempt.
    _insert(session, msg, msg.channel, msg.dedupe_key, status=PENDING)
    row = session.get(Notification, msg.dedupe_key, with_for_update=True, populate_existing=True)
    assert row is not None, "the notification row was just inserted or already existed"
    return row


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
