"""The RabbitMQ side of `circulate setup`: the vhost (management API) and every queue.

Queues are declared here once, with the arguments of `shared.broker.CirculateBroker`, rather
than on every enqueue; workers re-declare the same queues at boot, which RabbitMQ treats as a
no-op when the arguments agree.

On a cluster, a quorum queue's leader is placed on the node the declaring client is connected to
(`client-local`, RabbitMQ's default), so every leader would sit on one node and that node's loss
would pause every queue at once. RabbitMQ 3.10 has a `balanced` leader locator, but as a queue
argument it cannot be added to queues that exist (RabbitMQ refuses the redeclaration as
inequivalent, and workers redeclare at boot). So setup asks the management API to rebalance
leaders instead (`POST /api/rebalance/queues`, what `rabbitmq-queues rebalance all` does), which
spreads new and existing queues alike; on a single node it is not asked.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import dramatiq
import httpx
import pika
from dramatiq.common import dq_name, xq_name
from sqlalchemy.orm import Session, sessionmaker

from shared.broker import UNDECODABLE_ACTOR, StrictJSONEncoder, build_broker
from shared.broker_nodes import blocking_connection, management_client
from shared.config import QUEUES, Settings
from shared.errors import ConfigurationError
from shared.options import REJECTED
from shared.schedule import schedule_message

logger = logging.getLogger(__name__)
Channel = pika.adapters.blocking_connection.BlockingChannel


__all__ = [
    "declare_queues",
    "delete_vhost",
    "ensure_vhost",
    "management_client",
    "rebalance_queue_leaders",
    "replace_stale_delay_queues",
]


def ensure_vhost(settings: Settings) -> None:
    """Create the AMQP URL's vhost and give its user full rights there; idempotent."""
    vhost = quote(settings.amqp_vhost, safe="")
    user = settings.rabbitmq_management_user
    try:
        with management_client(settings) as client:
            client.put(f"/api/vhosts/{vhost}").raise_for_status()
            permissions = {"configure": ".*", "write": ".*", "read": ".*"}
            client.put(f"/api/permissions/{vhost}/{quote(user)}", json=permissions).raise_for_status()
    except httpx.HTTPError as error:
        raise ConfigurationError(
            f"RabbitMQ's management API at {settings.rabbitmq_management_url} did not accept the vhost "
            f"({error}); enable it with `rabbitmq-plugins enable rabbitmq_management`"
        ) from error


def delete_vhost(settings: Settings) -> None:
    """Drop the vhost and everything in it; tests use this to start from an empty broker."""
    with management_client(settings) as client:
        response = client.delete(f"/api/vhosts/{quote(settings.amqp_vhost, safe='')}")
        if response.status_code not in (204, 404):
            response.raise_for_status()


def declare_queues(settings: Settings) -> list[str]:
    """Declare every queue (with its .DQ and .XQ), then spread leaders; returns the queues' names."""
    broker = build_broker(settings)
    try:
        declared = broker.declare_topology()
    finally:
        broker.close()
    rebalance_queue_leaders(settings)
    return declared


def rebalance_queue_leaders(settings: Settings) -> bool:
    """Ask a cluster of several running nodes to spread queue leaders; True if it was asked.

    RabbitMQ moves leaders in the background, within a second or so on an idle cluster. It
    rebalances every vhost's queues, as the CLI does by default. A refusal (the user is not an
    administrator, as on some hosted brokers) is logged, not fatal: the queues work, only less
    evenly; `rabbitmq-queues rebalance quorum` does the same by hand.
    """
    try:
        with management_client(settings) as client:
            nodes = client.get("/api/nodes")
            nodes.raise_for_status()
            if sum(1 for node in nodes.json() if node.get("running")) < 2:
                return False
            client.post("/api/rebalance/queues").raise_for_status()
    except httpx.HTTPError as error:
        logger.warning("could not ask RabbitMQ to rebalance queue leaders over its nodes: %s", error)
        return False
    logger.info("asked RabbitMQ to rebalance queue leaders over its nodes")
    return True


def replace_stale_delay_queues(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, int]:
    """Replace each `.DQ` an earlier version declared with a delivery limit; returns moved counts.

    RabbitMQ cannot change a queue's arguments, and quorum queues cannot be deleted "if empty",
    so with the workers stopped (no consumer on the queue, else ConfigurationError) each delayed
    message is moved to the PostgreSQL schedule, due at its eta, before the queue is deleted and
    declared anew. A body that is not a Dramatiq message, or has bad options, goes to the `.XQ`
    as it is, where the sweeper archives it.
    """
    broker = build_broker(settings)
    connection = blocking_connection(settings)
    moved: dict[str, int] = {}
    try:
        for queue in QUEUES:
            name, arguments = dq_name(queue), broker.delay_queue_arguments(queue)
            if _declares(connection, name, arguments):
                continue
            channel = connection.channel()
            if channel.queue_declare(name, passive=True).method.consumer_count:
                raise ConfigurationError(
                    f"{name} was declared by an earlier version with a delivery limit and workers "
                    "still consume it; stop the workers and run `circulate setup` again"
                )
            moved[name] = _move_to_schedule(channel, queue, sessions)
            channel.queue_delete(name)
            channel.queue_declare(name, durable=True, arguments=arguments)
            logger.warning("replaced %s; %d delayed message(s) moved to the schedule", name, moved[name])
            channel.close()
    finally:
        connection.close()
        broker.close()
    return moved


def _declares(connection: pika.BlockingConnection, name: str, arguments: dict[str, object]) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(name, durable=True, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != 406:
            raise
        return False
    channel.close()
    return True


def _move_to_schedule(
    channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, sessions: sessionmaker[Session]
) -> int:
    encoder = StrictJSONEncoder()
    moved = 0
    while True:
        method, properties, body = channel.basic_get(dq_name(queue), auto_ack=False)
        if method is None:
            return moved
        fields = encoder.decode(body)
        if fields["actor_name"] == UNDECODABLE_ACTOR or REJECTED in fields["options"]:
            channel.basic_publish("", xq_name(queue), body, properties)
        else:
            options = {k: v for k, v in fields["options"].items() if k != "eta"}
            eta = fields["options"].get("eta")
            message: dramatiq.Message[object] = dramatiq.Message(
                **{**fields, "queue_name": queue, "options": options}
            )
            schedule_message(sessions, message, int(eta) if eta else int(time.time() * 1000))
            moved += 1
        channel.basic_ack(method.delivery_tag)
