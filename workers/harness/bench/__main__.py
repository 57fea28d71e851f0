"""`make bench`: prints msg/s for each contender on this machine. Figures, never assertions.

1. consume: bare Dramatiq + one psycopg insert per message, against the same work through
   Circulate's idempotent core (`handler_actor`), both at 2 processes x 8 threads, prefetch 256.
2. publish: the outbox relay (Postgres rows -> RabbitMQ, windowed confirms, rows marked) against a
   raw windowed-confirm publish of the same bodies with no database at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import aiormq
import psycopg
from pamqp import commands as spec

from shared.config import Settings
from shared.db import libpq_url
from shared.messages import Envelope
from shared.migrate import create_database_if_missing, migrate
from shared.outbox import encode_message
from shared.topology import declare_queues, delete_vhost, ensure_vhost
from workers.harness.bench.work import RecordSale, sale_kwargs
from workers.relay import run_relay

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "20000"))
WINDOW = 500


def _settings() -> Settings:
    return Settings(
        database_url=os.environ.get(
            "CIRCULATE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/circulate_bench"
        ),
        amqp_url=os.environ.get(
            "CIRCULATE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/circulate_bench"
        ),
    )


def _prepare(settings: Settings) -> None:
    create_database_if_missing(settings)
    migrate(settings)
    delete_vhost(settings)
    ensure_vhost(settings)
    declare_queues(settings)
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_sales (sale_id bigint NOT NULL, amount_minor bigint NOT NULL)"
        )


def _reset(settings: Settings) -> None:
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute("TRUNCATE bench_sales, processed_messages, outbox")


def _dramatiq_body(actor: str, kwargs: dict[str, object]) -> bytes:
    message = {
        "queue_name": "fulfilment", "actor_name": actor, "args": [], "kwargs": kwargs, "options": {},
        "message_id": str(uuid.uuid4()), "message_timestamp": int(time.time() * 1000),
    }  # fmt: skip
    return json.dumps(message, separators=(",", ":")).encode()


def _circulate_body(sale_id: int) -> bytes:
    payload = RecordSale.model_validate(sale_kwargs(sale_id))
    envelope = Envelope(idempotency_key=f"sale:{sale_id}", kind=payload.kind, correlation_id="bench")
    return encode_message(envelope, payload)


async def _publish(settings: Settings, bodies: list[bytes], queue: str = "fulfilment") -> float:
    """Windowed publisher confirms: a window of messages in flight, then await their confirms."""
    connection = await aiormq.connect(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    started = time.perf_counter()
    for start in range(0, len(bodies), WINDOW):
        window = bodies[start : start + WINDOW]
        props = spec.Basic.Properties(delivery_mode=2)
        await asyncio.gather(*(channel.basic_publish(b, routing_key=queue, properties=props) for b in window))
    elapsed = time.perf_counter() - started
    await connection.close()
    return elapsed


def _rows(settings: Settings) -> int:
    with psycopg.connect(libpq_url(settings)) as conn:
        row = conn.execute("SELECT count(*) FROM bench_sales").fetchone()
        return int(row[0]) if row else 0


def _consume(settings: Settings, bodies: list[bytes]) -> float:
    """Start the workers on a full queue; time from the first row to the last."""
    _reset(settings)
    asyncio.run(_publish(settings, bodies))
    env = dict(os.environ, CIRCULATE_DATABASE_URL=settings.database_url, CIRCULATE_AMQP_URL=settings.amqp_url)
    env.update(dramatiq_queue_prefetch="256", PYTHONWARNINGS="ignore::DeprecationWarning")
    command = [sys.executable, "-m", "dramatiq", "workers.harness.bench.worker:boot", "--processes", "2",
               "--threads", "8", "--queues", "fulfilment"]  # fmt: skip
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while _rows(settings) == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        while _rows(settings) < len(bodies):
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def _relay(settings: Settings, bodies: list[bytes]) -> float:
    _reset(settings)
    with psycopg.connect(libpq_url(settings)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox (message_id, queue_name, actor_name, body) "
            "VALUES (%s, 'fulfilment', 'x', %s)",
            [(uuid.uuid4(), body) for body in bodies],
        )

    async def relay_until_drained() -> float:
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(run_relay(settings, stop))
        async with await psycopg.AsyncConnection.connect(libpq_url(settings)) as conn:
            while True:
                cursor = await conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                row = await cursor.fetchone()
                if row and row[0] == 0:
                    break
                await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        return elapsed

    return asyncio.run(relay_until_drained())


def _purge(settings: Settings) -> None:
    delete_vhost(settings)
    ensure_vhost(settings)
    declare_queues(settings)


def main() -> None:
    settings = _settings()
    _prepare(settings)
    n = MESSAGES
    print(f"benchmark: {n} messages, 2 processes x 8 threads, prefetch 256, {os.cpu_count()} cores")
    bare = _consume(settings, [_dramatiq_body("bench.bare_record_sale", sale_kwargs(i)) for i in range(n)])
    _purge(settings)
    core = _consume(settings, [_circulate_body(i) for i in range(n)])
    _purge(settings)
    print(f"  consume  bare Dramatiq + psycopg insert     {n / bare:8.0f} msg/s")
    print(
        f"  consume  Circulate idempotent core          {n / core:8.0f} msg/s  ({bare / core:.2f}x of bare)"
    )
    bodies = [_circulate_body(i) for i in range(n)]
    raw = asyncio.run(_publish(settings, bodies))
    _purge(settings)
    relay = _relay(settings, bodies)
    _purge(settings)
    print(f"  publish  raw windowed confirms (no DB)      {n / raw:8.0f} msg/s")
    print(
        f"  publish  outbox relay (claim, publish, mark){n / relay:8.0f} msg/s  ({raw / relay:.2f}x of raw)"
    )


if __name__ == "__main__":
    main()
