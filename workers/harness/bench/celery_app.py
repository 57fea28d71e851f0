"""Celery 5 doing the same work: amqp, acks_late, a thread pool, one autocommit psycopg insert.

Started as `celery -A workers.harness.bench.celery_app worker --pool threads ...`; reads its URLs
from the environment the benchmark gives it. Celery is a development dependency only.
"""

from __future__ import annotations

import os
import threading

import psycopg
from celery import Celery  # type: ignore[import-untyped]

from workers.harness.bench.env import CELERY_QUEUE

app = Celery("bench", broker=os.environ.get("BENCH_AMQP_URL", "amqp://"))
app.conf.update(
    task_acks_late=True,
    task_default_queue=CELERY_QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_local = threading.local()
_INSERT = "INSERT INTO bench_sales (sale_id, amount_minor) VALUES (%s, %s)"


@app.task(name="bench.record_sale")  # type: ignore[untyped-decorator]
def record_sale(sale_id: int, amount_minor: int) -> None:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["BENCH_DSN"], autocommit=True)
    conn.execute(_INSERT, (sale_id, amount_minor))
