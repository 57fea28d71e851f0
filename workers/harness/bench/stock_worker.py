"""Stock Dramatiq: a stock `RabbitmqBroker` (classic queues), one autocommit psycopg insert.

Loaded by `dramatiq workers.harness.bench.stock_worker:boot`; reads its URLs from the environment
the benchmark gives it.
"""

from __future__ import annotations

import os
import threading

import dramatiq
import psycopg
from dramatiq.brokers.rabbitmq import RabbitmqBroker

_local = threading.local()
_INSERT = "INSERT INTO bench_sales (sale_id, amount_minor) VALUES (%s, %s)"


def boot() -> None:
    broker = RabbitmqBroker(url=os.environ["BENCH_AMQP_URL"])
    dsn = os.environ["BENCH_DSN"]

    def bare_record_sale(sale_id: int, amount_minor: int) -> None:
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = psycopg.connect(dsn, autocommit=True)
        conn.execute(_INSERT, (sale_id, amount_minor))

    dramatiq.Actor(
        bare_record_sale, broker=broker, actor_name="bench.bare_record_sale", queue_name="fulfilment",
        priority=0, options={},
    )  # fmt: skip
    dramatiq.set_broker(broker)
