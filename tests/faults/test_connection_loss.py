"""Lost broker connections are recovered without restarting the worker or the relay."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from shared.config import Settings
from shared.enqueue import enqueue
from shared.runtime import Runtime
from shared.topology import management_client
from tasks.fulfilment.models import Order
from tests.factories import place_order
from tests.fixtures.processes import circulate
from tests.fixtures.services import wait_until
from workers.relay import run_relay

pytestmark = pytest.mark.timeout(120)


def _orders(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def _enqueue(runtime: Runtime, count: int) -> None:
    with runtime.sessions.begin() as session:
        for _ in range(count):
            payload = place_order()
            enqueue(session, payload, idempotency_key=f"order-placed:{payload.order_id}")


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
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    relay = threading.Thread(target=lambda: loop.run_until_complete(run_relay(settings, stop)), daemon=True)
    relay.start()
    try:
        with circulate(
            settings,
            "worker",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            "fulfilment",
            log=tmp_path / "worker.log",
        ):
            # Given a worker and a relay that are processing orders
            _enqueue(runtime, 10)
            wait_until(lambda: _orders(runtime) == 10, timeout=30)
            # When the broker drops every connection (the management UI's "force close")
            wait_until(lambda: _connections(settings) >= 2, timeout=30)
            assert _close_every_connection(settings) >= 2
            # Then both reconnect on their own and later orders are still processed
            _enqueue(runtime, 10)
            wait_until(lambda: _orders(runtime) == 20, timeout=60)
    finally:
        loop.call_soon_threadsafe(stop.set)
        relay.join(timeout=15)
