"""The exporter against the real RabbitMQ management API and Postgres.

RabbitMQ refreshes its queue statistics every 5 seconds, so queue assertions poll the exporter
until the numbers arrive, as Prometheus would see them on its next scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from shared.db import build_engine
from shared.enqueue import enqueue
from shared.metrics_runtime import serve_metrics, stop_serving
from shared.runtime import Runtime
from shared.topology import management_client
from tests.factories import place_order
from tests.fixtures.services import publish_raw, wait_until
from workers.exporter import Exporter


class Clock:
    """The exporter's monotonic clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exporter(settings: Settings, broker: object, clock: Clock) -> Iterator[Exporter]:
    exporter = Exporter(
        vhost=settings.amqp_vhost,
        management=management_client(settings),
        engine=build_engine(settings, pool_size=1),
        monotonic=clock,
    )
    yield exporter
    exporter.close()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(exporter: Exporter) -> Samples:
    """Every sample of one collection, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in exporter.collect()
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_the_exporter_reports_the_published_queue_depths_and_the_age_of_what_waits(settings, exporter, clock):
    # Given 3 messages ready on shipping, 2 delayed (.DQ) and 1 dead (ledger.XQ), and no worker
    for _ in range(3):
        publish_raw(settings, "shipping", b"{}")
    for _ in range(2):
        publish_raw(settings, "shipping.DQ", b"{}")
    publish_raw(settings, "ledger.XQ", b"{}")
    expected = {
        ("shipping", "ready"): 3.0,
        ("shipping", "delayed"): 2.0,
        ("shipping", "unacked"): 0.0,
        ("ledger", "dead"): 1.0,
        ("fulfilment", "ready"): 0.0,
    }

    # When the exporter is scraped (until RabbitMQ's statistics catch up: they lag by up to 5 s,
    # for depths and for the consumers of workers that earlier tests stopped alike)
    def depths_match():
        samples = scrape(exporter)
        depths = {
            key: value(samples, "circulate_queue_messages", queue=key[0], state=key[1]) for key in expected
        }
        idle = value(samples, "circulate_queue_consumers", queue="shipping") == 0
        return samples if depths == expected and idle else None

    samples = wait_until(depths_match, timeout=30, interval=0.5)

    # Then every queue is reported, nobody consumes them, and RabbitMQ was readable
    assert value(samples, "circulate_exporter_source_up", source="rabbitmq") == 1
    reported = {dict(labels)["queue"] for name, labels in samples if name == "circulate_queue_consumers"}
    assert reported >= {"fulfilment", "shipping", "ledger", "notifications"}

    # And when 90 seconds pass without a consumer, the oldest waiting message is at least that old
    clock.now += 90
    samples = scrape(exporter)
    assert value(samples, "circulate_queue_oldest_message_age_seconds", queue="shipping") >= 90
    assert value(samples, "circulate_queue_oldest_message_age_seconds", queue="fulfilment") == 0


def test_the_exporter_reports_the_outbox_backlog(runtime: Runtime, exporter):
    with runtime.sessions.begin() as session:
        for number in range(4):
            enqueue(session, place_order(), idempotency_key=f"exporter-test-{number}")

    samples = scrape(exporter)

    assert value(samples, "circulate_outbox_backlog") == 4
    assert value(samples, "circulate_outbox_oldest_age_seconds") >= 0
    assert value(samples, "circulate_exporter_source_up", source="database") == 1


def test_the_exporter_reports_scheduled_work_by_kind_apart_from_the_backlog(runtime: Runtime, exporter):
    with runtime.sessions.begin() as session:
        enqueue(session, place_order(), idempotency_key="due-now")
        for number in range(3):
            enqueue(session, place_order(), idempotency_key=f"later-{number}", delay_ms=3_600_000 + number)

    samples = scrape(exporter)

    assert value(samples, "circulate_outbox_backlog") == 1
    assert value(samples, "circulate_scheduled_messages", actor="fulfilment.place_order") == 3
    next_due = value(samples, "circulate_scheduled_next_due_seconds", actor="fulfilment.place_order")
    assert 3_590 < next_due <= 3_600


def test_an_unreachable_rabbitmq_drops_queue_metrics_but_keeps_the_database_ones(settings, clean_db):
    unreachable = settings.model_copy(update={"rabbitmq_management_url": "http://127.0.0.1:9"})
    exporter = Exporter.from_settings(unreachable)
    try:
        samples = scrape(exporter)
    finally:
        exporter.close()

    assert value(samples, "circulate_exporter_source_up", source="rabbitmq") == 0
    assert not any(name == "circulate_queue_messages" for name, _ in samples)
    assert value(samples, "circulate_outbox_backlog") == 0


def test_the_exporter_serves_the_prometheus_text_format_over_http(exporter):
    registry = CollectorRegistry()
    registry.register(exporter)
    server = serve_metrics(registry, host="127.0.0.1", port=0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
    finally:
        stop_serving(server)

    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert response.status_code == 200
    assert {"circulate_queue_messages", "circulate_outbox_backlog", "circulate_exporter_source_up"} <= names
