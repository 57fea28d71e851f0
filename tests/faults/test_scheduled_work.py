"""Scheduled work outlives worker restarts and the broker's consumer timeout (issue 8, item 1).

A delayed message that a worker holds unacked until its eta is handed back by every restart and
every consumer timeout; on a quorum queue each hand-back counts a delivery, until the delivery
limit dead-letters a job that never ran. These tests hold real `circulate worker` processes
against delayed jobs: restarted 25 times (more than the delivery limit of 20), and on a RabbitMQ
node whose consumer timeout is 3 seconds. Both run on the module's own PostgreSQL and RabbitMQ
(tests/fixtures/own_services.py), so `make test` runs them beside the other layers.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from sqlalchemy import select, text

from shared.config import Settings
from shared.enqueue import enqueue
from shared.idempotency import ProcessedMessage
from shared.outbox import backlog
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.factories import place_order
from tests.fixtures.processes import count_rows, fulfilment_worker, kill_group, running_relay
from tests.fixtures.services import queue_depth, wait_until

pytestmark = [pytest.mark.timeout(300)]
# own_services, own_postgres, own_rabbit, own_settings; registered as a plugin (not imported) so
# that pytest can still rewrite its asserts.
pytest_plugins = ["tests.fixtures.own_services"]

RESTARTS = 25
#: Due after the restarts are over: each takes a worker's boot and shutdown, 3-4.5 s on the
#: development VM under load.
DUE_IN_MS = 150_000
CONSUMER_TIMEOUT_MS = 3_000
#: Pending for several consumer timeouts before it is due.
DUE_LATER_MS = 20_000


@pytest.fixture(scope="module")
def own_rabbit_config() -> list[str]:
    return [f"consumer_timeout = {CONSUMER_TIMEOUT_MS}"]


@pytest.fixture(scope="module")
def settings(own_settings: Settings) -> Settings:
    """Every fixture of this module (runtime, clean_db, broker) points at the own instances."""
    return own_settings


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    yield runtime
    runtime.close()


def _schedule_orders(runtime: Runtime, count: int, *, delay_ms: int) -> set[str]:
    """`count` orders enqueued as a producer would, each due `delay_ms` from now."""
    keys = set()
    with runtime.sessions.begin() as session:
        for _ in range(count):
            payload = place_order()
            keys.add(f"order-placed:{payload.order_id}")
            enqueue(session, payload, idempotency_key=f"order-placed:{payload.order_id}", delay_ms=delay_ms)
    return keys


def _consumers(settings: Settings, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def _dead_lettered(settings: Settings, queue: str) -> list[str]:
    """Why each message in `queue` (an `.XQ`) was dead-lettered; the messages stay there."""
    reasons = []
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        while True:
            method, properties, _ = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return reasons
            headers = properties.headers or {}
            reasons.append(str(headers.get("x-first-death-reason", "rejected by a worker")))
    finally:
        connection.close()


def _recorded_dead_letters(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM dead_letters")).scalar_one())


def _processed(runtime: Runtime, keys: set[str]) -> int:
    with runtime.sessions() as session:
        found = session.scalars(
            select(ProcessedMessage.idempotency_key).where(ProcessedMessage.idempotency_key.in_(keys))
        )
        return len(list(found))


def _restart_worker(settings: Settings, log: Path, sig: signal.Signals) -> None:
    """Start a worker, wait until it consumes the fulfilment queues and holds whatever is delayed
    there (none of `fulfilment.DQ` is ready), then stop it with `sig`."""
    with fulfilment_worker(settings, log=log) as worker:
        wait_until(lambda: _consumers(settings, "fulfilment.DQ") >= 1, timeout=60)
        wait_until(lambda: queue_depth(settings, "fulfilment.DQ") == 0, timeout=30)
        kill_group(worker, sig)
    # The broker has seen the connection go: nothing is held by that worker any more
    wait_until(lambda: _consumers(settings, "fulfilment.DQ") == 0, timeout=30)


def test_a_job_due_in_minutes_survives_25_worker_restarts_and_runs_exactly_once_when_due(
    settings, broker, runtime, tmp_path
):
    # Given an order a producer scheduled to be placed in 150 s, and the relay running
    keys = _schedule_orders(runtime, 1, delay_ms=DUE_IN_MS)
    due = time.monotonic() + DUE_IN_MS / 1000
    with running_relay(settings):
        wait_until(lambda: _relay_idle(runtime), timeout=30)
        # When a worker on its queue is restarted 25 times, killed and stopped in turn
        for restart in range(RESTARTS):
            sig = signal.SIGKILL if restart % 2 else signal.SIGTERM
            _restart_worker(settings, tmp_path / f"worker-{restart}.log", sig)
        # Then the restarts dead-lettered nothing, and the job has not run early
        assert _dead_lettered(settings, "fulfilment.XQ") == []
        assert time.monotonic() < due, "the restarts took longer than the job's delay"
        assert count_rows(runtime, Order) == 0
        # And a worker that keeps running runs it once it is due, exactly once
        with fulfilment_worker(settings, log=tmp_path / "worker-last.log"):
            wait_until(lambda: count_rows(runtime, Order) == 1, timeout=due - time.monotonic() + 30)
            assert time.monotonic() >= due - 1
            wait_until(lambda: queue_depth(settings, "fulfilment") == 0, timeout=30)
    assert count_rows(runtime, Order) == 1
    assert _processed(runtime, keys) == 1
    assert _dead_lettered(settings, "fulfilment.XQ") == []
    assert _recorded_dead_letters(runtime) == 0


def _relay_idle(runtime: Runtime) -> bool:
    """The relay has published every row that is due (a scheduled one waits)."""
    with runtime.sessions() as session:
        return backlog(session)[0] == 0


def _channels_closed(node_log_dir: Path) -> list[str]:
    """Lines of the node's log where it closed a channel for an unacknowledged delivery."""
    lines = []
    for path in node_log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if "delivery acknowledgement on channel" in line or "PRECONDITION_FAILED" in line:
                lines.append(line)
    return lines


def test_a_broker_with_a_consumer_timeout_of_seconds_closes_no_channel_while_delayed_work_is_pending(
    settings, own_rabbit, clean_db, runtime, tmp_path
):
    # Given three orders due in 20 s, and a node whose consumer timeout is 3 s (checked every 0.5 s)
    keys = _schedule_orders(runtime, 3, delay_ms=DUE_LATER_MS)
    due = time.monotonic() + DUE_LATER_MS / 1000
    # When a worker (retry delays bounded well below that timeout) and the relay run until due
    with (
        running_relay(settings),
        fulfilment_worker(settings, log=tmp_path / "worker.log", CIRCULATE_BROKER_DELAY_MAX_MS="1000"),
    ):
        wait_until(lambda: _consumers(settings, "fulfilment.DQ") >= 1, timeout=60)
        wait_until(lambda: count_rows(runtime, Order) == 3, timeout=DUE_LATER_MS / 1000 + 60)
        assert time.monotonic() >= due - 1
        wait_until(lambda: queue_depth(settings, "fulfilment") == 0, timeout=30)
        # Then, all that time, the node closed no channel for a delivery held unacked
        assert _channels_closed(own_rabbit.directory / "log") == []
    # And each order ran exactly once, and nothing was dead-lettered
    assert count_rows(runtime, Order) == 3
    assert _processed(runtime, keys) == 3
    assert _dead_lettered(settings, "fulfilment.XQ") == []
    assert _recorded_dead_letters(runtime) == 0
