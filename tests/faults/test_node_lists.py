"""The tests' broker helpers and the benchmark's publisher take a node list, as every process does.

`CIRCULATE_AMQP_URL` may list a cluster's nodes (`shared.broker_urls`); a helper that hands the
raw setting to `pika.URLParameters` or `aiormq.connect` breaks on a list, and one that knows a
single node hangs on to it when it dies. Here the list starts with a node that is down.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from shared.config import Settings
from tests.fixtures.services import drain, queue_depth
from workers.harness.bench.env import publish

QUEUE = "fulfilment"


def _with_a_dead_node_first(settings: Settings) -> Settings:
    vhost = quote(settings.amqp_vhost, safe="")
    dead = f"amqp://guest:guest@127.0.0.1:1/{vhost}"  # nothing listens on port 1
    return settings.model_copy(update={"amqp_url": f"{dead},{settings.amqp_url}"})


def test_publish_queue_depth_and_drain_reach_the_live_node_of_a_list(settings: Settings) -> None:
    listed = _with_a_dead_node_first(settings)
    drain(listed, QUEUE)
    body = f"node-list-{uuid.uuid4()}".encode()
    publish(listed.amqp_url, [body], queue=QUEUE)
    assert queue_depth(listed, QUEUE) == 1
    assert drain(listed, QUEUE) == [body]
    assert queue_depth(listed, QUEUE) == 0
