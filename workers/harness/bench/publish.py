"""The publish section: the outbox relay against a raw windowed-confirm publish of the same bodies.

Raw publishing has no database at all: it is the ceiling for the relay, which also claims rows
(`FOR UPDATE SKIP LOCKED`), publishes with the same window, and marks them. Both run in this
process, so their CPU is this process's (`time.process_time`), polling included for the relay.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg

from shared.config import Settings
from shared.db import connect_options
from workers.harness.bench.consume import circulate_body
from workers.harness.bench.env import QUEUE, BenchEnv, publish
from workers.harness.bench.report import Figure
from workers.relay import run_relay


def raw(env: BenchEnv, settings: Settings, label: str, messages: int) -> Figure:
    env.purge(settings)
    bodies = [circulate_body(i) for i in range(messages)]
    cpu = time.process_time()
    elapsed = publish(settings.amqp_url, bodies)
    cpu = time.process_time() - cpu
    return _figure(f"raw-{label}", f"raw windowed-confirm publish ({label})", messages, elapsed, cpu)


def relay(env: BenchEnv, settings: Settings, label: str, messages: int) -> Figure:
    """Fill the outbox, start the relay, time until no row is left unpublished."""
    env.purge(settings)
    env.reset_tables()
    with psycopg.connect(env.dsn, **connect_options(settings)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox (message_id, queue_name, actor_name, body) VALUES (%s, %s, 'bench', %s)",
            [(uuid.uuid4(), QUEUE, circulate_body(i)) for i in range(messages)],
        )
    cpu = time.process_time()
    elapsed = asyncio.run(_relay_until_drained(env, settings))
    return _figure(f"relay-{label}", f"outbox relay ({label})", messages, elapsed, time.process_time() - cpu)


async def _relay_until_drained(env: BenchEnv, settings: Settings) -> float:
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(run_relay(settings, stop))
    options = connect_options(settings)
    async with await psycopg.AsyncConnection.connect(env.dsn, autocommit=True, **options) as conn:
        while True:
            cursor = await conn.execute("SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT 1")
            if await cursor.fetchone() is None:
                break
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed


def _figure(key: str, name: str, messages: int, elapsed: float, cpu: float) -> Figure:
    return Figure("publish", key, name, messages / elapsed, cpu_s_per_1k=1000 * cpu / messages)
