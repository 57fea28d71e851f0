"""Where the benchmark runs: its own database and vhosts, reset between contenders.

Quorum queues live in the vhost of `CIRCULATE_BENCH_AMQP_URL` (declared by Circulate's broker);
classic queues in `<vhost>_classic` (declared by a stock `RabbitmqBroker`, as stock Dramatiq
would); Celery's queue in `<vhost>_celery` (declared by kombu at worker start). Nothing here
touches the databases or vhosts of the demo, the tests or a deployment.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from pamqp import commands as spec

from shared.broker_nodes import connect_any
from shared.broker_urls import split_urls
from shared.config import Settings
from shared.db import libpq_url
from shared.migrate import create_database_if_missing, migrate
from shared.topology import declare_queues, delete_vhost, ensure_vhost

#: Messages in flight before the publisher awaits their confirms (as the relay's batch).
WINDOW = 500
QUEUE = "fulfilment"
CELERY_QUEUE = "bench_celery"


@dataclass(frozen=True)
class BenchEnv:
    quorum: Settings
    classic: Settings
    celery: Settings

    @classmethod
    def from_environment(cls) -> BenchEnv:
        database = os.environ.get(
            "CIRCULATE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/circulate_bench"
        )
        amqp = os.environ.get("CIRCULATE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/circulate_bench")

        def settings(suffix: str, queue_type: str) -> Settings:
            return Settings(database_url=database, amqp_url=amqp + suffix, queue_type=queue_type)

        return cls(settings("", "quorum"), settings("_classic", "classic"), settings("_celery", "classic"))

    @property
    def dsn(self) -> str:
        return libpq_url(self.quorum)

    def prepare(self) -> None:
        """Migrate the database, create the sales table, and make every vhost empty."""
        create_database_if_missing(self.quorum)
        migrate(self.quorum)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bench_sales "
                "(sale_id bigint NOT NULL, amount_minor bigint NOT NULL)"
            )
        for settings in (self.quorum, self.classic, self.celery):
            self.purge(settings)

    def purge(self, settings: Settings) -> None:
        """A fresh vhost with its queues declared the way its contenders declare them."""
        delete_vhost(settings)
        ensure_vhost(settings)
        if settings is self.quorum:
            declare_queues(settings)
        elif settings is self.classic:
            broker = RabbitmqBroker(url=settings.amqp_url)
            try:
                broker.declare_queue(QUEUE, ensure=True)
            finally:
                broker.close()

    def reset_tables(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE bench_sales, processed_messages, outbox")

    def rows(self) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM bench_sales").fetchone()
            return int(row[0]) if row else 0


def publish(
    amqp_url: str,
    bodies: Sequence[bytes],
    *,
    queue: str = QUEUE,
    properties: spec.Basic.Properties | None = None,
) -> float:
    """Windowed publisher confirms to the default exchange; returns the seconds it took."""
    return asyncio.run(_publish(amqp_url, bodies, queue, properties))


async def _publish(
    amqp_url: str, bodies: Sequence[bytes], queue: str, properties: spec.Basic.Properties | None
) -> float:
    connection = await connect_any(split_urls(amqp_url))  # one node or a cluster's list
    channel = await connection.channel(publisher_confirms=True)
    props = properties or spec.Basic.Properties(delivery_mode=2)
    started = time.perf_counter()
    for start in range(0, len(bodies), WINDOW):
        window = bodies[start : start + WINDOW]
        await asyncio.gather(*(channel.basic_publish(b, routing_key=queue, properties=props) for b in window))
    elapsed = time.perf_counter() - started
    await connection.close()
    return elapsed
