"""Lost broker connections are recovered without restarting the worker or the relay."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from shared.config import Settings
from shared.topology import management_client
from tasks.fulfilment.models import Order
from tests.fixtures.processes import count_rows, enqueue_orders, fulfilment_worker, running_relay
from tests.fixtures.services import wait_until

pytestmark = pytest.mark.timeout(120)


def _close_every_connection(settings: Settings) -> int:
    """Force-close every AMQP connection of the test vhost, as a broker restart or network cut does."""
    with management_client(settings) as client:
        vhost = quote(settings.amqp_vhost, safe="")
        connections = client.get(f"/api/vhosts/{vhost}/connections").json()
        for connection in connections:
            client.delete(f"/api/connections/{quote(connection['name'], safe='')}")
    return len(connections)


def _connections(settings: Settings) -> int:
    with management_client(settings) as client:
        return len(client.get(f"/api/vhosts/{quote(settings.amqp_vhost, safe='')}/connections").json())


def test_the_worker_and_relay_reconnect_after_every_connection_is_closed(settings, broker, runtime, tmp_path):
    with running_relay(settings), fulfilment_worker(settings, log=tmp_path / "worker.log"):
        # Given a worker and a relay that are processing orders
        enqueue_orders(runtime, 10)
        wait_until(lambda: count_rows(runtime, Order) == 10, timeout=30)
        # When the broker drops every connection (the management UI's "force close")
        wait_until(lambda: _connections(settings) >= 2, timeout=30)
        assert _close_every_connection(settings) >= 2
        # Then both reconnect on their own and later orders are still processed
        enqueue_orders(runtime, 10)
        wait_until(lambda: count_rows(runtime, Order) == 20, timeout=60)
