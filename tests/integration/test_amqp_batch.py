"""`shared.amqp_batch.publish_batch` against the real broker: each message's own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiormq
import pytest
from pamqp import commands as spec

from shared.amqp_batch import Outcome, Publish, publish_batch
from shared.config import Settings
from shared.relay import open_channel

T = TypeVar("T")


def _publish(queue: str, body: bytes) -> Publish:
    return Publish(queue, body, spec.Basic.Properties(delivery_mode=2, message_id=str(uuid.uuid4())))


def _on_channel(settings: Settings, use: Callable[[aiormq.Channel], Awaitable[T]]) -> T:
    async def main() -> T:
        connection, channel = await open_channel(settings.amqp_urls)
        try:
            return await use(channel)  # type: ignore[arg-type]
        finally:
            await connection.close()

    return asyncio.run(main())


def _queue(channel: aiormq.Channel, name: str, **arguments: object) -> Awaitable[object]:
    return channel.queue_declare(name, auto_delete=True, arguments=arguments or None)


def _received(channel: aiormq.Channel, queue: str, count: int) -> Awaitable[list[bytes]]:
    async def get_all() -> list[bytes]:
        bodies = []
        for _ in range(count):
            message = await channel.basic_get(queue, no_ack=True)
            assert message.body is not None
            bodies.append(message.body)
        return bodies

    return get_all()


def test_every_message_of_a_batch_is_delivered_in_order_and_acked(settings):
    queue = f"batch-{uuid.uuid4()}"
    publishes = [_publish(queue, f'{{"n":{n}}}'.encode()) for n in range(300)]

    async def use(channel: aiormq.Channel) -> tuple[list[Outcome], list[bytes]]:
        await _queue(channel, queue)
        outcomes = await publish_batch(channel, publishes)
        return outcomes, await _received(channel, queue, len(publishes))

    outcomes, bodies = _on_channel(settings, use)
    assert all(isinstance(outcome, spec.Basic.Ack) for outcome in outcomes)
    assert bodies == [publish.body for publish in publishes]


def test_an_unroutable_message_comes_back_as_an_error_and_its_neighbours_are_acked(settings):
    queue = f"batch-{uuid.uuid4()}"
    publishes = [_publish(queue, b"first"), _publish("no-such-queue", b"lost"), _publish(queue, b"last")]

    async def use(channel: aiormq.Channel) -> list[Outcome]:
        await _queue(channel, queue)
        return await publish_batch(channel, publishes)

    first, returned, last = _on_channel(settings, use)
    assert isinstance(first, spec.Basic.Ack) and isinstance(last, spec.Basic.Ack)
    assert isinstance(returned, aiormq.exceptions.PublishError)
    assert returned.message.body == b"lost"


def test_a_message_the_queue_refuses_is_nacked_and_the_rest_of_the_batch_is_not(settings):
    # A queue that holds one message and refuses the publishes beyond it
    queue = f"batch-{uuid.uuid4()}"
    publishes = [_publish(queue, b"kept"), _publish(queue, b"refused")]

    async def use(channel: aiormq.Channel) -> list[Outcome]:
        await _queue(channel, queue, **{"x-max-length": 1, "x-overflow": "reject-publish"})
        return await publish_batch(channel, publishes)

    kept, refused = _on_channel(settings, use)
    assert isinstance(kept, spec.Basic.Ack)
    assert isinstance(refused, aiormq.exceptions.DeliveryError)


def test_a_body_larger_than_a_frame_is_split_and_arrives_whole(settings):
    queue = f"batch-{uuid.uuid4()}"

    async def use(channel: aiormq.Channel) -> tuple[list[Outcome], list[bytes], int]:
        large = bytes(range(256)) * (3 * channel.max_content_size // 256 + 7)
        await _queue(channel, queue)
        outcomes = await publish_batch(channel, [_publish(queue, large), _publish(queue, b"small")])
        return outcomes, await _received(channel, queue, 2), len(large)

    outcomes, bodies, size = _on_channel(settings, use)
    assert all(isinstance(outcome, spec.Basic.Ack) for outcome in outcomes)
    assert [len(body) for body in bodies] == [size, len(b"small")]
    assert bodies[0] == (bytes(range(256)) * (size // 256 + 1))[:size]


def test_batches_and_single_publishes_share_the_channel_s_delivery_tags(settings):
    # Given a single publish, then a batch, then a single publish on one channel
    queue = f"batch-{uuid.uuid4()}"

    async def use(channel: aiormq.Channel) -> list[object]:
        await _queue(channel, queue)
        outcomes: list[object] = [await channel.basic_publish(b"one", routing_key=queue)]
        outcomes += await publish_batch(channel, [_publish(queue, b"two"), _publish(queue, b"three")])
        outcomes.append(await channel.basic_publish(b"four", routing_key=queue))
        outcomes.append(await _received(channel, queue, 4))
        return outcomes

    *outcomes, bodies = _on_channel(settings, use)
    # Then every publish is confirmed as its own and the channel's numbering still agrees with the broker's
    assert all(isinstance(outcome, spec.Basic.Ack) for outcome in outcomes)
    assert bodies == [b"one", b"two", b"three", b"four"]


def test_a_batch_whose_connection_closes_settles_every_message_instead_of_waiting(settings):
    queue = f"batch-{uuid.uuid4()}"

    async def use(channel: aiormq.Channel) -> list[Outcome]:
        await _queue(channel, queue)
        publishes = [_publish(queue, b"x" * 100) for _ in range(50)]
        batch = asyncio.create_task(publish_batch(channel, publishes))
        await asyncio.sleep(0)  # the batch is queued for the writer
        await channel.connection.close()
        return await asyncio.wait_for(batch, timeout=10)

    outcomes = _on_channel(settings, use)
    # Each was either confirmed before the close or refused by it: none is left waiting
    assert len(outcomes) == 50
    assert all(isinstance(outcome, spec.Basic.Ack | BaseException) for outcome in outcomes)


def test_a_message_without_an_id_is_refused_before_anything_is_sent(settings):
    queue = f"batch-{uuid.uuid4()}"
    anonymous = Publish(queue, b"x", spec.Basic.Properties(delivery_mode=2))

    async def use(channel: aiormq.Channel) -> int:
        declared = await _queue(channel, queue)
        with pytest.raises(ValueError, match="message id"):
            await publish_batch(channel, [_publish(queue, b"ok"), anonymous])
        await asyncio.sleep(0.2)
        depth = await channel.queue_declare(queue, passive=True)
        assert declared is not None
        return int(depth.message_count or 0)

    assert _on_channel(settings, use) == 0
