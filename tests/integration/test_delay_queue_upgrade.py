"""A `.DQ` declared by an earlier version (with a delivery limit) neither stops a worker nor stays."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pika
import pytest

from shared import schedule
from shared.broker import build_broker
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.runtime import Runtime
from shared.topology import delete_vhost, ensure_vhost, replace_stale_delay_queues
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import make_settings, queue_depth

OLD_DQ_ARGUMENTS = {
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": "fulfilment.XQ",
    "x-queue-type": "quorum",
    "x-delivery-limit": 20,
}


@pytest.fixture
def upgraded(settings: Settings) -> Iterator[Settings]:
    """A vhost of its own where an earlier version declared `fulfilment.DQ` and left a message."""
    own = make_settings(amqp_url=settings.amqp_url + "_dq_upgrade")
    delete_vhost(own)
    ensure_vhost(own)
    with _channel(own) as channel:
        channel.queue_declare("fulfilment.DQ", durable=True, arguments=OLD_DQ_ARGUMENTS)
        channel.basic_publish("", "fulfilment.DQ", b"{}")
    yield own
    delete_vhost(own)


class _channel:
    def __init__(self, settings: Settings) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))

    def __enter__(self) -> pika.adapters.blocking_connection.BlockingChannel:
        return self.connection.channel()

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def _has_new_arguments(settings: Settings) -> bool:
    new = {key: value for key, value in OLD_DQ_ARGUMENTS.items() if key != "x-delivery-limit"}
    try:
        with _channel(settings) as channel:
            channel.queue_declare("fulfilment.DQ", durable=True, arguments=new)
    except pika.exceptions.ChannelClosedByBroker as error:
        assert error.reply_code == 406
        return False
    return True


def test_a_worker_uses_an_old_delay_queue_as_it_is_and_says_so(upgraded: Settings, caplog):
    broker = build_broker(upgraded)
    try:
        broker.declare_queue("fulfilment", ensure=True)
        broker.consume("fulfilment.DQ", prefetch=1, timeout=100).close()
    finally:
        broker.close()

    assert "fulfilment.DQ was declared by an earlier version" in caplog.text
    assert not _has_new_arguments(upgraded)


def test_setup_moves_what_an_old_delay_queue_holds_to_the_schedule_and_replaces_it(
    upgraded: Settings, clean_db: Runtime
):
    due_ms = int(time.time() * 1000) + 3 * 86_400_000
    with _channel(upgraded) as channel:
        channel.queue_purge("fulfilment.DQ")
        channel.basic_publish("", "fulfilment.DQ", _delayed_body(due_ms))

    moved = replace_stale_delay_queues(upgraded, clean_db.sessions)

    assert moved == {"fulfilment.DQ": 1}
    assert _has_new_arguments(upgraded)
    assert queue_depth(upgraded, "fulfilment.DQ") == 0
    with clean_db.sessions() as session:
        (kind,) = schedule.summary(session)
    assert (kind.kind, kind.count) == ("fulfilment.place_order", 1)
    assert abs(kind.next_due.timestamp() * 1000 - due_ms) < 1_000


def test_setup_refuses_to_replace_an_old_delay_queue_that_workers_still_consume(upgraded: Settings, runtime):
    with _channel(upgraded) as channel:
        channel.basic_consume("fulfilment.DQ", lambda *args: None)
        with pytest.raises(ConfigurationError, match="stop the workers"):
            replace_stale_delay_queues(upgraded, runtime.sessions)
    assert not _has_new_arguments(upgraded)


def _delayed_body(due_ms: int) -> bytes:
    payload = place_order()
    message = {
        "queue_name": "fulfilment.DQ",
        "actor_name": "fulfilment.place_order",
        "args": [],
        "kwargs": message_kwargs(payload, envelope_for(payload)),
        "options": {"eta": due_ms},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": int(time.time() * 1000),
    }
    return json.dumps(message, default=str).encode()
