"""`shared.amqp_batch`: a batch cancelled before its frames reach the writer leaves no trace."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, cast

import aiormq
from pamqp import commands as spec

from shared.amqp_batch import Publish, publish_batch


class _FullWriterChannel:
    """The channel attributes a batch uses, with a writer's queue that is already full."""

    publisher_confirms = True
    number = 1
    max_content_size = 131_064

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.delivery_tag = 7
        self.confirmations: dict[int, Any] = {}
        self.message_id_delivery_tag: dict[str, int] = {}
        self.write_queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
        self.write_queue.put_nowait(object())

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


def test_a_batch_cancelled_while_the_writer_is_full_frees_its_delivery_tags_and_message_ids() -> None:
    async def main() -> _FullWriterChannel:
        channel = _FullWriterChannel()
        publishes = [
            Publish("q", b"x", spec.Basic.Properties(message_id=str(uuid.uuid4()))) for _ in range(3)
        ]
        batch = asyncio.create_task(publish_batch(cast(aiormq.Channel, channel), publishes))
        await asyncio.sleep(0.01)
        batch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batch
        return channel

    channel = asyncio.run(main())
    assert channel.delivery_tag == 7
    assert channel.confirmations == {} and channel.message_id_delivery_tag == {}
    assert not channel.lock.locked()
