"""The exporter (`circulate exporter`): shared state as metrics, gathered once, on each scrape.

Queue depths, the outbox, dead letters, orders and the ledger are the same whichever worker
looks, so one process reads them instead of every worker: RabbitMQ's management API
(`/api/queues/{vhost}`, one request for every queue) and a few SQL aggregates. Everything is read
when Prometheus scrapes, so a value is never older than the scrape, and the gauges are built anew
each time (`shared.metrics.ExporterMetrics`), so a queue or group that goes away goes away here too.

A source that cannot be read drops its metrics from that scrape and sets
`circulate_exporter_source_up{source}` to 0, rather than repeating stale values; every SQL
aggregate runs in its own transaction under a statement timeout, so one bad query (a table
another migration has not created yet) spoils nothing else.

Liveness: the main thread writes the heartbeat (`shared.heartbeat.LoopHeartbeat`, role
`exporter`) every second with the time the exporter last made progress: now while no scrape is
being collected, else when the collection in progress began. A collection stuck on a source that
never answers (it holds the lock every later scrape waits on) lets the beat go stale.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from dramatiq.common import q_name
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from shared import outbox, schedule
from shared.config import QUEUES, Settings
from shared.db import build_engine
from shared.dead_letters import archive
from shared.heartbeat import LoopHeartbeat
from shared.metrics import ExporterMetrics
from shared.metrics_runtime import serve_metrics, stop_serving
from shared.topology import management_client
from workers.queue_age import PublishHistory

logger = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 5_000

_ORDERS = text("SELECT state, count(*) FROM orders GROUP BY state")
_JOURNAL_EXISTS = text("SELECT to_regclass('journal_entries') IS NOT NULL")
_LEDGER = text("SELECT currency, COALESCE(sum(amount_minor), 0) FROM journal_entries GROUP BY currency")


@dataclass
class QueueStats:
    """One Dramatiq queue: its own counts plus those of its `.DQ` and `.XQ`."""

    ready: int = 0
    unacked: int = 0
    delayed: int = 0
    dead: int = 0
    consumers: int = 0
    published: int = 0
    head_timestamp: float | None = None


def summarize(queues: Iterable[dict[str, Any]], expected: Iterable[str] = QUEUES) -> dict[str, QueueStats]:
    """Fold the management API's queue list into one entry per Dramatiq queue.

    Expected queues are always present, with zeros when RabbitMQ does not have them, so a missing
    queue shows as having no consumers instead of vanishing from the alerts.
    """
    stats = {name: QueueStats() for name in expected}
    for queue in queues:
        name = str(queue.get("name", ""))
        entry = stats.setdefault(q_name(name), QueueStats())
        messages = _int(queue.get("messages"))
        if name.endswith(".DQ"):
            entry.delayed = messages  # ready, plus those a worker holds until their eta
        elif name.endswith(".XQ"):
            entry.dead = messages
        else:
            entry.ready = _int(queue.get("messages_ready"))
            entry.unacked = _int(queue.get("messages_unacknowledged"))
            entry.consumers = _int(queue.get("consumers"))
            entry.published = _int((queue.get("message_stats") or {}).get("publish"))
            head = queue.get("head_message_timestamp")
            entry.head_timestamp = float(head) if isinstance(head, int | float) else None
    return stats


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


class Exporter(Collector):
    """A prometheus_client collector reading RabbitMQ and Postgres on every `collect`."""

    def __init__(
        self,
        *,
        vhost: str,
        management: httpx.Client,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vhost = vhost
        self._management = management
        self._engine = engine
        self._clock = clock
        self._monotonic = monotonic
        self._history = PublishHistory()
        self._lock = threading.Lock()
        self._collecting_since: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Exporter:
        return cls(
            vhost=settings.amqp_vhost,
            management=management_client(settings),
            engine=build_engine(settings, pool_size=1),
        )

    def close(self) -> None:
        self._management.close()
        self._engine.dispose()

    def collect(self) -> list[Metric]:
        with self._lock:  # two scrapers at once must not interleave the age history
            self._collecting_since = self._clock()
            try:
                gauges = ExporterMetrics()
                gauges.source_up.labels("rabbitmq").set(self._collect_queues(gauges))
                gauges.source_up.labels("database").set(self._collect_database(gauges))
            finally:
                self._collecting_since = None
        return [family for gauge in gauges.all() for family in gauge.collect()]

    def last_progress(self) -> float:
        """Now while no scrape is being collected, else when the collection in progress began."""
        since = self._collecting_since
        return self._clock() if since is None else since

    def _collect_queues(self, gauges: ExporterMetrics) -> bool:
        try:
            response = self._management.get(f"/api/queues/{quote(self._vhost, safe='')}")
            response.raise_for_status()
            queues = summarize(response.json())
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("could not read queues from RabbitMQ's management API: %s", error)
            return False
        for name, stats in sorted(queues.items()):
            for state in ("ready", "unacked", "delayed", "dead"):
                gauges.queue_messages.labels(name, state).set(getattr(stats, state))
            gauges.queue_consumers.labels(name).set(stats.consumers)
            gauges.queue_oldest_message_age.labels(name).set(self._oldest_age(name, stats))
        return True

    def _oldest_age(self, name: str, stats: QueueStats) -> float:
        depth = stats.ready + stats.unacked
        estimate = self._history.oldest_age(
            name, now=self._monotonic(), published=stats.published, depth=depth
        )
        if depth and stats.head_timestamp is not None:
            return max(0.0, self._clock() - stats.head_timestamp)
        return estimate

    def _collect_database(self, gauges: ExporterMetrics) -> bool:
        readers = (_outbox, _scheduled, _dead_letters, _orders, _ledger)
        return all([self._read(reader, gauges) for reader in readers])

    def _read(self, reader: Callable[[Connection, ExporterMetrics], None], gauges: ExporterMetrics) -> bool:
        try:
            with self._engine.begin() as connection:
                connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                reader(connection, gauges)
        except Exception as error:  # any failure of one aggregate must leave the others standing
            logger.warning("exporter query %s failed: %s", reader.__name__, error)
            return False
        return True


def _outbox(connection: Connection, gauges: ExporterMetrics) -> None:
    with Session(bind=connection) as session:
        backlog, oldest_age = outbox.backlog(session)
    gauges.outbox_backlog.set(backlog)
    gauges.outbox_oldest_age.set(oldest_age)


def _scheduled(connection: Connection, gauges: ExporterMetrics) -> None:
    with Session(bind=connection) as session:
        kinds = schedule.summary(session)
    now = datetime.now(UTC)
    for kind in kinds:
        gauges.scheduled_messages.labels(kind.kind).set(kind.count)
        gauges.scheduled_next_due.labels(kind.kind).set((kind.next_due - now).total_seconds())


def _dead_letters(connection: Connection, gauges: ExporterMetrics) -> None:
    for queue, actor, exception_type, count in connection.execute(archive.DEAD_BY_KIND):
        gauges.dead_letters.labels(q_name(queue), actor, exception_type).inc(count)


def _orders(connection: Connection, gauges: ExporterMetrics) -> None:
    for state, count in connection.execute(_ORDERS):
        gauges.orders.labels(state).set(count)


def _ledger(connection: Connection, gauges: ExporterMetrics) -> None:
    if not connection.execute(_JOURNAL_EXISTS).scalar():
        return  # the ledger's tables arrive with its own migration
    for currency, imbalance in connection.execute(_LEDGER):
        gauges.ledger_imbalance.labels(currency).set(int(imbalance))


def run_exporter(settings: Settings, host: str, port: int) -> None:
    """Serve the exporter on host:port until SIGTERM or SIGINT."""
    exporter = Exporter.from_settings(settings)
    heartbeat = LoopHeartbeat.for_role(settings.heartbeat_dir, "exporter")
    registry = CollectorRegistry()
    registry.register(exporter)
    server = serve_metrics(registry, host=host, port=port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        beat_until(stop, exporter, heartbeat)
    finally:
        stop_serving(server)
        exporter.close()


def beat_until(
    stop: threading.Event, exporter: Exporter, heartbeat: LoopHeartbeat, *, every_s: float = 1.0
) -> None:
    """Write the exporter's progress to its heartbeat every `every_s` until `stop` is set."""
    while not stop.wait(every_s):
        heartbeat.progressed(at=exporter.last_progress())
