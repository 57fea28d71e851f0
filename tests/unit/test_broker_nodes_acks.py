"""Acks of deliveries whose connection died with its node: counted once, never sent elsewhere.

A consumer here is built without a connection (the channel and connection are stand-ins that
record what would be sent); the broker never connects, since nothing is published.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pika.exceptions
import pytest
from dramatiq.brokers.rabbitmq import _RabbitmqMessage
from dramatiq.middleware import Middleware

from shared.broker import CirculateBroker, CirculateConsumer, StaleDelivery
from shared.config import Settings
from shared.metrics import ACKS_LOST

QUEUE = "fulfilment"


class _Channel:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.nacked: list[int] = []

    def basic_ack(self, tag: int) -> None:
        self.acked.append(tag)

    def basic_nack(self, tag: int, requeue: bool) -> None:
        self.nacked.append(tag)


class _Connection:
    def __init__(self, *, open_: bool = True) -> None:
        self.open = open_

    def add_callback_threadsafe(self, callback: Any) -> None:
        if not self.open:
            raise pika.exceptions.ConnectionWrongStateError(
                "BlockingConnection.add_callback_threadsafe() called on closed connection"
            )
        callback()


def _consumer(*, open_: bool = True) -> CirculateConsumer:
    consumer = CirculateConsumer.__new__(CirculateConsumer)
    consumer.queue_name = QUEUE
    consumer.known_tags = set()
    consumer.channel = _Channel()
    consumer.connection = _Connection(open_=open_)
    consumer.logger = logging.getLogger("tests.consumer")
    consumer._lost_reported = False
    consumer.closed = False
    return consumer


def _delivered(consumer: CirculateConsumer, tag: int) -> Any:
    message = _RabbitmqMessage(False, tag, dramatiq.Message(QUEUE, "fulfilment.place_order", (), {}, {}))
    message._circulate_consumer = consumer
    consumer.known_tags.add(tag)
    return message


def _lost(operation: str) -> float:
    return ACKS_LOST.labels(QUEUE, operation)._value.get()


def test_an_ack_from_a_lost_connection_is_counted_and_never_sent_on_the_new_channel() -> None:
    # Given a delivery with tag 5 on a connection that died, and a new consumer whose own tag 5
    # is another message
    old, new = _consumer(open_=False), _consumer()
    stale = _delivered(old, 5)
    old.closed = True
    _delivered(new, 5)
    before = _lost("ack")
    # When the worker acks the stale delivery through the current consumer
    new.ack(stale)
    # Then nothing is sent on the new channel and the new delivery is still unacked
    assert new.channel.acked == []
    assert new.known_tags == {5}
    assert _lost("ack") == before + 1


def test_an_ack_on_a_connection_that_just_died_is_counted_instead_of_raised() -> None:
    consumer = _consumer(open_=False)
    message = _delivered(consumer, 7)
    before = _lost("nack")
    consumer.nack(message)  # Dramatiq's would raise ConnectionClosed: a 5 s retry per message
    assert _lost("nack") == before + 1


def test_a_live_delivery_is_acked_on_its_channel() -> None:
    consumer = _consumer()
    consumer.ack(_delivered(consumer, 3))
    assert consumer.channel.acked == [3]


def test_a_lost_connection_is_reported_once_however_many_acks_it_loses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = _consumer(open_=False), _consumer()
    stale = [_delivered(old, tag) for tag in range(1, 201)]
    with caplog.at_level(logging.WARNING, logger="shared.broker"):
        for message in stale:
            new.ack(message)
    reports = [r for r in caplog.records if "cannot be sent" in r.getMessage()]
    assert len(reports) == 1


class _Spy(Middleware):
    def __init__(self) -> None:
        self.started: list[str] = []

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.started.append(message.message_id)


def test_a_prefetched_message_of_a_closed_consumer_is_skipped_before_any_middleware() -> None:
    spy = _Spy()
    broker = CirculateBroker(settings=Settings(), middleware=[spy])
    consumer = _consumer()
    live, stale = _delivered(consumer, 1), _delivered(_consumer(), 2)
    stale._circulate_consumer.closed = True
    broker.emit_before("process_message", live)
    with pytest.raises(StaleDelivery):
        broker.emit_before("process_message", stale)
    assert spy.started == [live.message_id]
