"""Notifications through a real worker, RabbitMQ, Postgres, the SMTP sink and the push sandbox."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.dead_letters.models import DeadLetter
from shared.messages import Envelope, Payload
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tasks.notifications import handlers
from tasks.notifications.handlers import set_preference
from tasks.notifications.identity import dedupe_key_for, message_id_for
from tasks.notifications.messages import DeliverNotification, SendNotification
from tasks.notifications.models import Notification
from tests.fixtures import sandbox as sandbox_fixtures
from tests.fixtures import smtp as smtp_fixtures
from tests.fixtures.sandbox import Sandbox, push_client_for
from tests.fixtures.services import publish_raw, wait_until
from workers.harness.smtp_sink import SmtpSink

webhook_receiver = sandbox_fixtures.webhook_receiver
sandbox = sandbox_fixtures.sandbox
smtp_sink = smtp_fixtures.smtp_sink


@pytest.fixture
def worker_adapters(worker_adapters: dict[str, Any], sandbox: Sandbox, smtp_sink: SmtpSink) -> dict[str, Any]:
    """The default adapters plus a mailer and a push client pointed at this test's servers."""
    return {
        **worker_adapters,
        "mailer": lambda settings: smtp_fixtures.mailer_for(smtp_sink),
        "push": lambda settings: push_client_for(sandbox),
    }


def order_confirmed(**overrides: Any) -> SendNotification:
    fields: dict[str, Any] = {
        "order_id": str(uuid.uuid4()),
        "template": "order_confirmed",
        "recipient_role": "buyer",
        "recipient": {"user_id": "buyer-ada", "email": "ada@buyers.test", "name": "Ada"},
        "context": {"amount": "GBP 25.00"},
    }
    return SendNotification.model_validate(fields | overrides)


def delivery(request: SendNotification, channel: str) -> DeliverNotification:
    key = dedupe_key_for(request.order_id, request.template, request.recipient_role, channel)
    return DeliverNotification.model_validate({**request.model_dump(), "channel": channel, "dedupe_key": key})


def send(broker, payload: Payload) -> None:
    """Enqueue under a fresh idempotency key: a resend, which the inbox alone would not catch."""
    envelope = Envelope(idempotency_key=f"test:{uuid.uuid4()}", kind=payload.kind, correlation_id="test")
    kwargs = {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}
    broker.get_actor(payload.kind).send_with_options(kwargs=kwargs)


def settle(broker, worker) -> None:
    broker.join("notifications", timeout=10_000)
    worker.join()


def outbox_rows(runtime: Runtime, kind: str) -> list[OutboxRow]:
    with runtime.sessions() as session:
        return list(
            session.scalars(select(OutboxRow).where(OutboxRow.actor_name == kind).order_by(OutboxRow.id))
        )


def relay(settings: Settings, runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    """Publish the outbox rows of `kind` as the relay would; return their message kwargs."""
    published = outbox_rows(runtime, kind)
    for row in published:
        publish_raw(settings, row.queue_name, row.body)
    return [json.loads(row.body)["kwargs"] for row in published]


def rows(runtime: Runtime) -> dict[str, Notification]:
    with runtime.sessions() as session:
        return {row.channel: row for row in session.scalars(select(Notification))}


def sent(runtime: Runtime, *channels: str) -> bool:
    found = rows(runtime)
    return all(channel in found and found[channel].status == "sent" for channel in channels)


def dead_letters(runtime: Runtime) -> list[DeadLetter]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DeadLetter)))


def test_a_notification_request_is_delivered_once_by_email_and_once_by_push(
    settings, broker, worker, runtime, sandbox: Sandbox, smtp_sink: SmtpSink
):
    # Given a request, fanned out into one delivery per channel
    request = order_confirmed()
    send(broker, request)
    wait_until(lambda: len(outbox_rows(runtime, "notifications.deliver")) == 2)
    # When the relay publishes each delivery twice (a relay that crashed before marking them)
    relay(settings, runtime, "notifications.deliver")
    deliveries = relay(settings, runtime, "notifications.deliver")
    wait_until(lambda: sent(runtime, "email", "push"))
    settle(broker, worker)
    # Then one email with the derived Message-ID and one push reached the user
    assert sorted(d["envelope"]["idempotency_key"].rsplit(":", 1)[1] for d in deliveries) == ["email", "push"]
    email_key, push_key = (
        dedupe_key_for(request.order_id, "order_confirmed", "buyer", c) for c in ("email", "push")
    )
    [email] = smtp_sink.messages
    assert email["Message-ID"] == message_id_for(email_key)
    assert email["To"] == "ada@buyers.test"
    assert rows(runtime)["email"].message_id == message_id_for(email_key)
    [push] = sandbox.pushes()
    assert (push["user_id"], push["dedupe_key"]) == ("buyer-ada", push_key)
    assert rows(runtime)["push"].message_id == push["push_id"]


def test_the_same_notification_delivered_twice_under_different_keys_is_sent_once(
    broker, worker, runtime, sandbox: Sandbox, smtp_sink: SmtpSink
):
    request = order_confirmed()

    for _ in range(2):
        send(broker, delivery(request, "email"))
        send(broker, delivery(request, "push"))
    wait_until(lambda: sent(runtime, "email", "push"))
    settle(broker, worker)

    assert len(smtp_sink.messages) == 1
    assert len(sandbox.pushes()) == 1
    assert sandbox.stats()["pushes"] == 1


def test_a_user_who_opted_out_of_email_gets_no_email_but_still_gets_the_push(
    settings, broker, worker, runtime, smtp_sink: SmtpSink
):
    # Given a buyer who opted out of email
    request = order_confirmed()
    with runtime.sessions.begin() as session:
        set_preference(session, "buyer-ada", "email", opted_out=True)
    # When a notification is requested
    send(broker, request)
    wait_until(lambda: "email" in rows(runtime))
    settle(broker, worker)
    # Then the email is recorded as skipped and only the push is asked for
    assert rows(runtime)["email"].status == "skipped_opt_out"
    [only] = relay(settings, runtime, "notifications.deliver")
    assert only["payload"]["channel"] == "push"
    assert smtp_sink.messages == []


def test_an_opt_out_that_arrives_after_the_request_is_honoured_on_delivery(
    broker, worker, runtime, smtp_sink: SmtpSink
):
    request = order_confirmed()
    with runtime.sessions.begin() as session:
        set_preference(session, "buyer-ada", "email", opted_out=True)

    send(broker, delivery(request, "email"))
    wait_until(lambda: "email" in rows(runtime))
    settle(broker, worker)

    assert rows(runtime)["email"].status == "skipped_opt_out"
    assert smtp_sink.messages == []


def test_a_user_who_opts_back_in_gets_email_again(broker, worker, runtime, smtp_sink: SmtpSink):
    with runtime.sessions.begin() as session:
        set_preference(session, "buyer-ada", "email", opted_out=True)
    with runtime.sessions.begin() as session:
        set_preference(session, "buyer-ada", "email", opted_out=False)

    send(broker, delivery(order_confirmed(), "email"))

    wait_until(lambda: sent(runtime, "email"))
    assert len(smtp_sink.messages) == 1


def test_an_smtp_451_is_retried_and_then_delivered(broker, worker, runtime, smtp_sink: SmtpSink):
    # Two refusals: the first try and the first retry fail, the second retry gets through.
    smtp_sink.reject_next(2, 451)
    request = order_confirmed()

    send(broker, delivery(request, "email"))

    wait_until(lambda: sent(runtime, "email"))
    settle(broker, worker)
    [email] = smtp_sink.messages
    assert email["Message-ID"] == message_id_for(
        dedupe_key_for(request.order_id, "order_confirmed", "buyer", "email")
    )
    assert dead_letters(runtime) == []


def test_an_smtp_550_dead_letters_the_email_without_retries(broker, worker, runtime, smtp_sink: SmtpSink):
    smtp_sink.reject_next(1, 550)

    send(broker, delivery(order_confirmed(), "email"))

    [dead] = wait_until(lambda: dead_letters(runtime))
    assert (dead.exception_type, dead.attempts) == ("MailRejected", 1)
    assert rows(runtime) == {}


def test_a_push_gateway_outage_is_retried_and_then_delivered(broker, worker, runtime, sandbox: Sandbox):
    # Four failures: more than the client's three quick attempts, so the broker retries too.
    sandbox.set_faults(fail_next=4, mode="5xx")

    send(broker, delivery(order_confirmed(), "push"))

    wait_until(lambda: sent(runtime, "push"))
    assert len(sandbox.pushes()) == 1


def test_a_request_for_a_template_without_its_context_is_dead_lettered_at_once(
    settings, broker, worker, runtime
):
    body = order_confirmed().model_dump(mode="json") | {"context": {}}
    envelope = Envelope(idempotency_key="test:no-amount", kind="notifications.send", correlation_id="test")
    broker.get_actor("notifications.send").send_with_options(
        kwargs={"envelope": envelope.model_dump(mode="json"), "payload": body}
    )

    [dead] = wait_until(lambda: dead_letters(runtime))
    assert (dead.exception_type, dead.attempts) == ("InvalidMessage", 1)
    assert "amount" in dead.reason


def test_a_concurrent_delivery_of_the_same_notification_waits_for_the_first_and_sees_it_sent(runtime):
    """The claim inserts the row or locks the one there: the second claim blocks on the first
    transaction's row and reads its outcome, so two deliveries of one notification never both send."""
    message = delivery(order_confirmed(), "email")
    seen: list[tuple[str, bool]] = []
    with UnitOfWork(runtime.sessions, runtime=runtime) as first:
        assert handlers._claim(first.session, message) == ("pending", False)

        def second_delivery() -> None:
            with runtime.sessions() as second, second.begin():
                seen.append(handlers._claim(second, message))

        waiting = threading.Thread(target=second_delivery)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), "the second claim must wait for the first transaction's row lock"
        handlers._record(first, message.dedupe_key, status="sent", message_id="<m@test>")
        first.commit()
    waiting.join(timeout=10.0)
    assert seen == [("sent", False)]
