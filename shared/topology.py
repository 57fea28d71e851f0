"""The RabbitMQ side of `circulate setup`: the vhost (management API) and every queue.

Queues are declared here once, with the arguments of `shared.broker.CirculateBroker`, rather
than on every enqueue; workers re-declare the same queues at boot, which RabbitMQ treats as a
no-op when the arguments agree.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from shared.broker import build_broker
from shared.config import Settings
from shared.errors import ConfigurationError


def management_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        base_url=settings.rabbitmq_management_url,
        auth=(settings.rabbitmq_management_user, settings.rabbitmq_management_password.get_secret_value()),
        timeout=10.0,
    )


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
    """Declare every queue (with its .DQ and .XQ); returns their names."""
    broker = build_broker(settings)
    try:
        return broker.declare_topology()
    finally:
        broker.close()
