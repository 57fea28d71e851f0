"""The tests' own service instances do what fault tests need of them: a RabbitMQ node whose
consumer timeout fires within seconds, a cluster that survives a member's SIGKILL, and a
PostgreSQL that comes back on its own port after a restart and after a crash."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pika
import psycopg
import pytest

if TYPE_CHECKING:
    from tests.fixtures.own_services import OwnServices

pytestmark = pytest.mark.timeout(180)
# The own_* fixtures (own_services, own_postgres, own_rabbit, own_rabbit_config); the module is
# registered as a plugin, not imported, so that pytest can still rewrite its asserts.
pytest_plugins = ["tests.fixtures.own_services"]

CONSUMER_TIMEOUT_MS = 3_000


@pytest.fixture(scope="module")
def own_rabbit_config() -> list[str]:
    return [f"consumer_timeout = {CONSUMER_TIMEOUT_MS}"]


def test_a_node_of_our_own_closes_a_channel_that_holds_a_delivery_past_its_consumer_timeout(own_rabbit):
    own_rabbit.add_vhost("timeouts")
    connection = pika.BlockingConnection(pika.URLParameters(own_rabbit.amqp_url("timeouts")))
    try:
        # Given a consumer that takes a delivery from a quorum queue and never acks it
        channel = connection.channel()
        channel.queue_declare("held", durable=True, arguments={"x-queue-type": "quorum"})
        channel.basic_publish("", "held", b"held", pika.BasicProperties(delivery_mode=2))
        delivered_at: list[float] = []
        channel.basic_consume("held", lambda *_: delivered_at.append(time.monotonic()))
        # Then the node closes its channel once the consumer timeout has passed, not a minute later
        connection.call_later(20, channel.stop_consuming)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            channel.start_consuming()
        waited = time.monotonic() - delivered_at[0]
    finally:
        connection.close()
    assert closed.value.reply_code == 406
    assert "delivery acknowledgement on channel 1 timed out" in closed.value.reply_text
    assert CONSUMER_TIMEOUT_MS / 1000 <= waited < CONSUMER_TIMEOUT_MS / 1000 + 5
    # And the message is back in the queue for the next consumer
    connection = pika.BlockingConnection(pika.URLParameters(own_rabbit.amqp_url("timeouts")))
    try:
        method, _, body = connection.channel().basic_get("held", auto_ack=True)
    finally:
        connection.close()
    assert body == b"held"
    assert method.redelivered


def test_a_postgres_of_our_own_answers_on_its_own_port_after_a_restart_and_a_crash(own_postgres):
    assert own_postgres.port != 5432
    with psycopg.connect(own_postgres.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE survivors (name text)")
        conn.execute("INSERT INTO survivors VALUES ('committed before the restart')")
    # When the cluster restarts, then is killed with SIGKILL and started again (crash recovery)
    own_postgres.restart()
    with psycopg.connect(own_postgres.conninfo(), autocommit=True) as conn:
        conn.execute("INSERT INTO survivors VALUES ('committed before the crash')")
    own_postgres.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(own_postgres.conninfo(), connect_timeout=2).close()
    own_postgres.start()
    # Then every committed row is still there, on the same port
    with psycopg.connect(own_postgres.conninfo()) as conn:
        rows = conn.execute("SELECT name FROM survivors ORDER BY name").fetchall()
    assert rows == [("committed before the crash",), ("committed before the restart",)]


@pytest.mark.slow
def test_three_nodes_of_our_own_form_a_cluster_that_outlives_a_killed_member(own_services: OwnServices):
    nodes = own_services.rabbit_cluster(3)
    seed, second, third = nodes
    try:
        # When one member's beam process is killed with SIGKILL
        second.kill()
        # Then the others still serve AMQP, and the member rejoins when started again
        running = seed.ctl("eval", "rabbit_nodes:all_running().")
        assert second.name not in running and third.name in running
        pika.BlockingConnection(pika.URLParameters(third.amqp_url())).close()
        second.start()
        assert second.name in seed.ctl("eval", "rabbit_nodes:all_running().")
    finally:
        for node in nodes:
            node.close()
