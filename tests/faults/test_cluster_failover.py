"""A 3-node RabbitMQ cluster loses the node that leads the queues, and work goes on (issue 11).

The cluster, its PostgreSQL and every process are the module's own (tests/fixtures/own_services.py).
`circulate setup` spreads quorum queue leaders over the nodes; then a worker and the relay, both
given all three URLs, run orders through while the node that leads the `fulfilment` queue and
holds the worker's and the relay's connections is killed with SIGKILL. The stall (from the kill
until an order published after it is consumed on a surviving node) is printed, not asserted:
docs/operations/cluster.md quotes it. What is asserted: work resumes with the node still dead,
and every order is handled exactly once, none dead-lettered.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, text

from shared.broker_nodes import management_client
from shared.config import Settings
from shared.idempotency import ProcessedMessage
from shared.migrate import create_database_if_missing, migrate
from shared.runtime import Runtime
from shared.topology import declare_queues, ensure_vhost
from tasks.fulfilment.models import Order
from tests.fixtures.processes import count_rows, enqueue_orders, fulfilment_worker, running_relay
from tests.fixtures.services import make_settings, wait_until

if TYPE_CHECKING:  # the fixtures module is a plugin here, never imported (pytest rewrites its asserts)
    from tests.fixtures.own_services import OwnRabbitNode, OwnServices

pytestmark = [pytest.mark.timeout(300)]
pytest_plugins = ["tests.fixtures.own_services"]

VHOST = "circulate_cluster"
BEFORE, DURING, AFTER = 20, 100, 30
#: Generous bounds for waits, not timing assertions: the stall itself is printed.
RESUME_BOUND_S = 60
QUEUE_FIELDS = {"leader", "members", "online", "state", "messages", "messages_unacknowledged", "consumers"}


@pytest.fixture(scope="module")
def cluster(own_services: OwnServices) -> Iterator[list[OwnRabbitNode]]:
    nodes = own_services.rabbit_cluster(3)
    yield nodes
    for node in nodes:
        node.close()


@pytest.fixture(scope="module")
def settings(own_postgres, cluster: list[OwnRabbitNode]) -> Settings:
    """All three nodes in one setting, set up as `circulate setup` does."""
    settings = make_settings(
        database_url=own_postgres.url("circulate_cluster"),
        amqp_url=";".join(node.amqp_url(VHOST) for node in cluster),
        rabbitmq_management_url=",".join(node.management_url for node in cluster),
    )
    create_database_if_missing(settings)
    migrate(settings)
    ensure_vhost(settings)
    declare_queues(settings)
    return settings


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    yield runtime
    runtime.close()


def _queues(settings: Settings) -> dict[str, dict]:
    with management_client(settings) as client:
        response = client.get(f"/api/queues/{quote(VHOST, safe='')}")
        response.raise_for_status()
        return {queue["name"]: queue for queue in response.json()}


def _leaders(settings: Settings) -> dict[str, str]:
    return {name: str(queue.get("leader") or queue.get("node")) for name, queue in _queues(settings).items()}


def _client_nodes(settings: Settings, product: str) -> list[str]:
    """The nodes holding this vhost's client connections whose library names `product`."""
    with management_client(settings) as client:
        response = client.get(f"/api/vhosts/{quote(VHOST, safe='')}/connections")
        response.raise_for_status()
        found = response.json()
    return [
        str(c["node"])
        for c in found
        if product in str(c.get("client_properties", {}).get("product", "")).lower()
    ]


def _lead_from(node: OwnRabbitNode, queue: str) -> None:
    """Move `queue`'s leadership to `node` (Ra's leader transfer; the test's own arrangement)."""
    expression = (
        f'{{ok, Q}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"{VHOST}">>, queue, <<"{queue}">>)), '
        f"{{RaName, Leader}} = amqqueue:get_pid(Q), "
        f"ra:transfer_leadership({{RaName, Leader}}, {{RaName, '{node.name}'}})."
    )
    node.ctl("eval", expression)


def _orders_among(runtime: Runtime, ids: set[str]) -> int:
    with runtime.sessions() as session:
        return len(list(session.scalars(select(Order.id).where(Order.id.in_([uuid.UUID(i) for i in ids])))))


def _published_after(runtime: Runtime, wall: float) -> float | None:
    """Epoch seconds of the first outbox row the broker confirmed after `wall`."""
    with runtime.engine.connect() as connection:
        first = connection.execute(
            text(
                "SELECT extract(epoch FROM min(published_at)) FROM outbox "
                "WHERE published_at > to_timestamp(:t)"
            ),
            {"t": wall},
        ).scalar()
    return float(first) if first is not None else None


def _consuming_resumed(log: Path, wall: float) -> float:
    """When the worker handled messages again after the kill at `wall` (epoch seconds): the end of
    the longest pause between two handled messages (its log's outcome lines) after the kill."""
    handled = [wall]
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "outcome" in record:
                at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                if at > wall:
                    handled.append(at)
    handled.sort()
    gaps = list(itertools.pairwise(handled))
    return max(gaps, key=lambda gap: gap[1] - gap[0])[1] if gaps else wall


def _queue_state(settings: Settings, node: OwnRabbitNode, queue: str) -> str:
    """What the cluster says about `queue`: the management API's view and Ra's, for a failure."""
    try:
        seen = {k: v for k, v in _queues(settings)[queue].items() if k in QUEUE_FIELDS}
    except (httpx.HTTPError, KeyError) as error:
        seen = {"management API": repr(error)}
    expression = f'rabbit_quorum_queue:status(<<"{VHOST}">>, <<"{queue}">>).'
    try:
        status = node.ctl("eval", expression, timeout=30)
    except Exception as error:  # a report, whatever failed
        status = repr(error)
    return f"{queue} from the management API: {seen}\nRa's status from {node.name}: {status}"


def _relay_on(settings: Settings, node: str) -> contextlib.ExitStack:
    """A relay in this process whose connection landed on `node` (nodes are tried from a random
    first one, so it is restarted until it does)."""
    for tries in range(1, 41):
        stack = contextlib.ExitStack()
        stack.enter_context(running_relay(settings))
        landed = wait_until(lambda: _client_nodes(settings, "aiormq"), timeout=30)
        if landed == [node]:
            print(f"\nthe relay landed on {node} at its start number {tries}")
            return stack
        stack.close()
        wait_until(lambda: not _client_nodes(settings, "aiormq"), timeout=30)
    raise AssertionError(f"the relay never connected to {node}")


def test_setup_spreads_the_quorum_queue_leaders_over_the_nodes(settings: Settings) -> None:
    # RabbitMQ moves the leaders in the background after setup asks it to
    leaders = wait_until(lambda: len(set(_leaders(settings).values())) > 1 and _leaders(settings), timeout=30)
    print(f"\nqueue leaders after setup: {sorted(leaders.items())}")
    assert len(leaders) == 12
    assert len(set(leaders.values())) > 1


def test_orders_flow_on_with_every_one_handled_once_after_the_leading_node_is_killed(
    settings: Settings, runtime: Runtime, cluster: list[OwnRabbitNode], tmp_path: Path
) -> None:
    by_name = {node.name: node for node in cluster}
    began = time.monotonic()
    with fulfilment_worker(settings, log=tmp_path / "worker.log", threads=4) as worker:
        # Given a worker and the relay, on the same node, which also leads the fulfilment queue
        worker_node = wait_until(lambda: sorted(set(_client_nodes(settings, "pika"))), timeout=60)
        assert len(worker_node) == 1, f"one worker process connects to one node: {worker_node}"
        victim = by_name[worker_node[0]]
        print(f"\nworker connected after {time.monotonic() - began:.1f}s")
        with _relay_on(settings, victim.name):
            print(f"relay placed after {time.monotonic() - began:.1f}s")
            _lead_from(victim, "fulfilment")
            wait_until(lambda: _leaders(settings)["fulfilment"] == victim.name, timeout=30)
            first = enqueue_orders(runtime, BEFORE)
            wait_until(lambda: count_rows(runtime, Order) == BEFORE, timeout=RESUME_BOUND_S)
            during = enqueue_orders(runtime, DURING)
            wait_until(lambda: count_rows(runtime, Order) >= BEFORE + DURING // 10, timeout=RESUME_BOUND_S)

            state = _queue_state(settings, victim, "fulfilment")
            print(f"killing after {time.monotonic() - began:.1f}s; {state}")
            # When that node is killed with SIGKILL mid-stream, and more orders are written after it
            killed_wall = time.time()
            victim.kill()
            after = enqueue_orders(runtime, AFTER)

            # Then orders written after the kill are published and consumed on a surviving node
            try:
                wait_until(lambda: _orders_among(runtime, after), timeout=RESUME_BOUND_S)
            except AssertionError as error:
                survivor = next(node for node in cluster if node is not victim)
                raise AssertionError(f"{error}\n{_queue_state(settings, survivor, 'fulfilment')}") from None
            wait_until(lambda: count_rows(runtime, Order) == BEFORE + DURING + AFTER, timeout=RESUME_BOUND_S)
            drained_s = time.time() - killed_wall
        survivors = sorted(set(_leaders(settings).values()))
        worker_alive = worker.poll() is None
    log = (tmp_path / "worker.log").read_text(errors="replace")
    published = _published_after(runtime, killed_wall)
    assert published is not None
    publish_stall_s = published - killed_wall
    consume_stall_s = _consuming_resumed(tmp_path / "worker.log", killed_wall) - killed_wall
    print(
        f"\nkilled {victim.name} (fulfilment leader; held the worker's and the relay's connections) "
        f"mid-stream: publishing resumed {publish_stall_s:.1f}s and consuming {consume_stall_s:.1f}s after "
        f"the kill; all {DURING + AFTER} orders done {drained_s:.1f}s after it; leaders now on {survivors}; "
        f"worker log: {log.count('cannot be sent')} lost-ack report(s), "
        f"{log.count('Failed to post_process_message')} ack retries, {log.count('was skipped')} skip lines"
    )
    # With the killed node still down, every order exists once and was handled once
    assert not victim.is_running()
    assert worker_alive
    assert victim.name not in survivors
    with runtime.sessions() as session:
        orders = {str(order_id) for order_id in session.scalars(select(Order.id))}
        keys = list(session.scalars(select(ProcessedMessage.idempotency_key)))
    assert orders == first | during | after
    placed = [key for key in keys if key.startswith("order-placed:")]
    assert len(placed) == len(set(placed)) == BEFORE + DURING + AFTER
    assert _queues(settings)["fulfilment.XQ"].get("messages", 0) == 0
    # And the management API still answers, from a surviving node, with the killed one listed first
    first_is_dead = Settings(
        **{
            **settings.model_dump(),
            "rabbitmq_management_url": f"{victim.management_url},{settings.rabbitmq_management_url}",
        }
    )
    with management_client(first_is_dead) as client:
        assert client.get("/api/overview").status_code == 200
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=victim.management_url) as direct:
        direct.get("/api/overview")
