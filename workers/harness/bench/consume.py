"""The consume section: the same work (one row per message) under four workers.

Each contender drains a backlog it did not publish itself: the queue is filled first, then the
workers start, and the clock runs from the first row to the last. CPU is the worker process tree's
user + system time over the same window (`procstat`), so boot costs nothing. All contenders run
2 processes x 8 threads with a prefetch of 256 per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pamqp import commands as spec

from shared.config import Settings
from shared.messages import Envelope
from shared.outbox import encode_message
from workers.harness.bench import procstat
from workers.harness.bench.env import CELERY_QUEUE, QUEUE, BenchEnv, publish
from workers.harness.bench.report import Figure
from workers.harness.bench.work import RecordSale, sale_kwargs

PROCESSES, THREADS, PREFETCH = 2, 8, 256
#: A contender that makes no progress for this long is stopped and reported as failed.
STALL_S = 60.0


@dataclass(frozen=True)
class Contender:
    name: str
    target: Callable[[BenchEnv], Settings]
    body: Callable[[int], bytes]
    commands: Callable[[BenchEnv], list[list[str]]]
    environment: Callable[[BenchEnv], dict[str, str]]
    queue: str = QUEUE
    properties: spec.Basic.Properties | None = None


def dramatiq_body(sale_id: int) -> bytes:
    message = {
        "queue_name": QUEUE, "actor_name": "bench.bare_record_sale", "args": [],
        "kwargs": sale_kwargs(sale_id), "options": {}, "message_id": str(uuid.uuid4()),
        "message_timestamp": int(time.time() * 1000),
    }  # fmt: skip
    return json.dumps(message, separators=(",", ":")).encode()


def circulate_body(sale_id: int) -> bytes:
    payload = RecordSale.model_validate(sale_kwargs(sale_id))
    envelope = Envelope(idempotency_key=f"sale:{sale_id}", kind=payload.kind, correlation_id="bench")
    return encode_message(envelope, payload)


def celery_body(sale_id: int) -> bytes:
    """Celery's message protocol 2 body: [args, kwargs, embed]; the task name is in the headers."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([[], sale_kwargs(sale_id), embed]).encode()


def _celery_properties() -> spec.Basic.Properties:
    task_id = str(uuid.uuid4())  # Celery only reads it back for logs and results (ignored here).
    headers: dict[str, Any] = {
        "lang": "py", "task": "bench.record_sale", "id": task_id, "root_id": task_id,
        "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
        "argsrepr": "()", "kwargsrepr": "{}", "origin": "bench", "ignore_result": True,
    }  # fmt: skip
    return spec.Basic.Properties(
        delivery_mode=2, content_type="application/json", content_encoding="utf-8", headers=headers
    )


def _dramatiq(module: str) -> Callable[[BenchEnv], list[list[str]]]:
    return lambda env: [
        [sys.executable, "-m", "dramatiq", module, "--processes", str(PROCESSES),
         "--threads", str(THREADS), "--queues", QUEUE],
    ]  # fmt: skip


def _celery(env: BenchEnv) -> list[list[str]]:
    return [
        [sys.executable, "-m", "celery", "-A", "workers.harness.bench.celery_app", "worker",
         "--pool", "threads", "--concurrency", str(THREADS),
         "--prefetch-multiplier", str(PREFETCH // THREADS), "-Q", CELERY_QUEUE,
         "-n", f"bench{index}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "WARNING"]
        for index in range(PROCESSES)
    ]  # fmt: skip


def _circulate_env(settings: Settings) -> dict[str, str]:
    return {"CIRCULATE_DATABASE_URL": settings.database_url, "CIRCULATE_AMQP_URL": settings.amqp_url}


def _plain_env(settings: Settings, env: BenchEnv) -> dict[str, str]:
    return {"BENCH_AMQP_URL": settings.amqp_url, "BENCH_DSN": env.dsn}


def _core_env(env: BenchEnv, *, batch_size: int | None = None) -> dict[str, str]:
    # As `circulate worker` runs it: prometheus_client in multiprocess mode, JSON logs at INFO.
    metrics_dir = tempfile.mkdtemp(prefix="circulate-bench-metrics-")
    batching = {"CIRCULATE_WORKER_BATCH_SIZE": str(batch_size)} if batch_size else {}
    return {**_circulate_env(env.quorum), "PROMETHEUS_MULTIPROC_DIR": metrics_dir, **batching}


CONTENDERS = {
    "stock": Contender(
        "stock Dramatiq (classic queue) + autocommit insert",
        lambda env: env.classic, dramatiq_body,
        _dramatiq("workers.harness.bench.stock_worker:boot"),
        lambda env: _plain_env(env.classic, env),
    ),
    "bare": Contender(
        "bare Dramatiq on Circulate's broker (quorum) + insert",
        lambda env: env.quorum, dramatiq_body,
        _dramatiq("workers.harness.bench.worker:boot_bare"),
        lambda env: _circulate_env(env.quorum),
    ),
    "core": Contender(
        "Circulate idempotent core (quorum, batches)",
        lambda env: env.quorum, circulate_body,
        _dramatiq("workers.harness.bench.worker:boot"),
        _core_env,
    ),
    "core-single": Contender(
        "Circulate idempotent core (quorum, one per transaction)",
        lambda env: env.quorum, circulate_body,
        _dramatiq("workers.harness.bench.worker:boot"),
        lambda env: _core_env(env, batch_size=1),
    ),
    "celery": Contender(
        "Celery 5 (classic, acks_late, threads) + insert",
        lambda env: env.celery, celery_body, _celery,
        lambda env: _plain_env(env.celery, env),
        queue=CELERY_QUEUE, properties=_celery_properties(),
    ),
}  # fmt: skip


def measure(env: BenchEnv, key: str, messages: int) -> Figure:
    """Fill the contender's queue, start its workers, time the drain from first row to last."""
    contender = CONTENDERS[key]
    target = contender.target(env)
    env.purge(target)
    env.reset_tables()
    if contender.queue == CELERY_QUEUE:
        _declare_celery_queue(target)
    bodies = [contender.body(i) for i in range(messages)]
    publish(target.amqp_url, bodies, queue=contender.queue, properties=contender.properties)
    environment = dict(os.environ, dramatiq_queue_prefetch=str(PREFETCH), PYTHONWARNINGS="ignore")
    environment.update(contender.environment(env))
    launched = time.perf_counter()
    workers = [
        subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in contender.commands(env)
    ]
    try:
        started_rows, started, cpu_before = _first_rows(env, workers)
        if started_rows >= messages:
            # A backlog this small was gone before the first look: count from the launch instead,
            # boot included (only a smoke-sized run gets here).
            started_rows, started, cpu_before = 0, launched, 0.0
        finished = _drained(env, messages)
        cpu = sum(procstat.cpu_seconds(w.pid) for w in workers) - cpu_before
        rss = max(procstat.peak_rss_mb(w.pid) for w in workers)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    counted = messages - started_rows
    extra: dict[str, object] = {"messages": messages, "counted": counted, "peak_rss_mb": round(rss, 1)}
    if counted < messages // 2:
        # The first look came late (a starved benchmark process): the figure covers the tail only.
        extra["note"] = f"over the last {counted:,} messages only: the first row was seen late"
    return Figure(
        "consume", key, contender.name, counted / (finished - started),
        cpu_s_per_1k=1000 * cpu / counted, extra=extra,
    )  # fmt: skip


def _first_rows(env: BenchEnv, workers: list[subprocess.Popen[bytes]]) -> tuple[int, float, float]:
    deadline = time.monotonic() + STALL_S
    while (rows := env.rows()) == 0:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("the workers wrote no row (did they start?)")
        time.sleep(0.005)
    return rows, time.perf_counter(), sum(procstat.cpu_seconds(w.pid) for w in workers)


def _drained(env: BenchEnv, messages: int) -> float:
    last, last_change = 0, time.monotonic()
    while (rows := env.rows()) < messages:
        if rows != last:
            last, last_change = rows, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            raise RuntimeError(f"stalled at {rows} of {messages} rows")
        time.sleep(0.02)
    return time.perf_counter()


def _declare_celery_queue(settings: Settings) -> None:
    """The queue as kombu declares it (durable, no arguments), so messages wait for the workers."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        connection.channel().queue_declare(CELERY_QUEUE, durable=True)
    finally:
        connection.close()
