"""A batch's acks go to RabbitMQ together: one callback per consumer, each message on its own tag.

The consumer here has no connection: the channel and connection are stand-ins that record what
would be sent and how many callbacks the consumer thread would run.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pika.exceptions
from dramatiq.brokers.rabbitmq import _RabbitmqMessage

from shared.broker import CirculateConsumer, acks_held
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
        self.callbacks = 0

    def add_callback_threadsafe(self, callback: Any) -> None:
        if not self.open:
            raise pika.exceptions.ConnectionWrongStateError("closed")
        self.callbacks += 1
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


def test_acks_held_by_a_batch_are_sent_together_when_it_ends() -> None:
    consumer = _consumer()
    messages = [_delivered(consumer, tag) for tag in (4, 5, 6)]
    with acks_held():
        for message in messages:
            consumer.ack(message)
        assert consumer.channel.acked == []  # nothing sent yet
        assert consumer.known_tags == set()  # but each is taken: never acked twice
    assert consumer.channel.acked == [4, 5, 6]
    assert consumer.connection.callbacks == 1


def test_a_nack_inside_a_batch_and_an_ack_outside_one_are_sent_at_once() -> None:
    consumer = _consumer()
    rejected, later = _delivered(consumer, 1), _delivered(consumer, 2)
    with acks_held():
        consumer.nack(rejected)
        assert consumer.channel.nacked == [1]
    consumer.ack(later)
    assert consumer.channel.acked == [2]


def test_held_acks_whose_connection_died_are_counted_as_lost() -> None:
    consumer = _consumer(open_=False)
    messages = [_delivered(consumer, tag) for tag in (7, 8)]
    before = ACKS_LOST.labels(QUEUE, "ack")._value.get()
    with acks_held():
        for message in messages:
            consumer.ack(message)
    assert ACKS_LOST.labels(QUEUE, "ack")._value.get() == before + 2
    assert consumer._lost_reported


def test_a_held_ack_of_another_consumers_delivery_is_counted_not_sent() -> None:
    old, new = _consumer(), _consumer()
    stale = _delivered(old, 3)
    old.closed = True
    before = ACKS_LOST.labels(QUEUE, "ack")._value.get()
    with acks_held():
        new.ack(stale)
    assert new.channel.acked == [] and old.channel.acked == []
    assert ACKS_LOST.labels(QUEUE, "ack")._value.get() == before + 1
