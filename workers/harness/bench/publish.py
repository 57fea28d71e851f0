"""The publish section: the outbox relay against raw windowed-confirm publishes of the same bodies.

Raw publishing has no database at all. It comes in two kinds: `raw`, the client library's own
per-message `basic_publish` awaited in windows (what a producer writes first), and `raw-framed`,
the relay's own publisher (`shared.amqp_batch`: a window marshalled as one payload, with the
relay's properties) without the database: the ceiling for the relay, which also claims rows
(`FOR UPDATE SKIP LOCKED`), publishes with the same window, and marks them. Both run in this
process, so their CPU is this process's (`time.process_time`), polling included for the relay.
Both are timed from open connections: raw from its open channel, the relay from the commit of a
backlog it is already listening for.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import cast

import aiormq
import psycopg
from pamqp import commands as spec

from shared.amqp_batch import Publish, publish_batch
from shared.config import Settings
from shared.db import connect_options
from shared.heartbeat import LoopHeartbeat
from shared.outbox import WAKE_CHANNEL
from shared.relay import open_channel
from shared.relay import properties as _relay_properties
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


def raw_framed(env: BenchEnv, settings: Settings, label: str, messages: int) -> Figure:
    env.purge(settings)
    bodies = [circulate_body(i) for i in range(messages)]
    cpu = time.process_time()
    elapsed = asyncio.run(_publish_framed(settings, bodies, settings.relay_batch_size))
    cpu = time.process_time() - cpu
    name = f"raw framed-batch publish ({label})"
    return _figure(f"raw-framed-{label}", name, messages, elapsed, cpu)


async def _publish_framed(settings: Settings, bodies: list[bytes], window: int) -> float:
    """The relay's publishes (its properties, its windows) from an open channel, no database."""
    connection, channel = await open_channel(settings.amqp_urls)
    try:
        started = time.perf_counter()
        for start in range(0, len(bodies), window):
            now = datetime.now(UTC)
            publishes = [
                Publish(QUEUE, body, _relay_properties(str(uuid.uuid4()), now))
                for body in bodies[start : start + window]
            ]
            outcomes = await publish_batch(cast(aiormq.Channel, channel), publishes)
            if not all(isinstance(outcome, spec.Basic.Ack) for outcome in outcomes):
                raise RuntimeError("the broker refused part of a raw framed batch")
        return time.perf_counter() - started
    finally:
        await connection.close()


def relay(env: BenchEnv, settings: Settings, label: str, messages: int) -> Figure:
    """Start the relay on an empty outbox; once it is connected and idle, commit the rows (with
    the relay's wake-up, as a producer does) and time from that commit until none is unpublished.

    Raw publishing is timed from an open channel, so the relay is too: its connections (two lanes,
    the listener, the channel) are set up before the clock starts. Only the relay's CPU from the
    commit on is counted, not the insert's.
    """
    env.purge(settings)
    env.reset_tables()
    rows = [(uuid.uuid4(), QUEUE, circulate_body(i)) for i in range(messages)]
    elapsed, cpu = asyncio.run(_relay_backlog(env, settings, rows))
    return _figure(f"relay-{label}", f"outbox relay ({label})", messages, elapsed, cpu)


class _LanesReady(LoopHeartbeat):
    """Set once every lane has finished a pass: the relay is connected, listening and idle."""

    def __init__(self, lanes: int) -> None:
        super().__init__(None, loops=lanes)
        self._lanes, self._seen = lanes, set[int]()
        self.ready = asyncio.Event()

    def progressed(self, loop: int = 0, *, at: float | None = None) -> None:
        super().progressed(loop, at=at)
        self._seen.add(loop)
        if len(self._seen) == self._lanes:
            self.ready.set()


async def _relay_backlog(
    env: BenchEnv, settings: Settings, rows: list[tuple[uuid.UUID, str, bytes]]
) -> tuple[float, float]:
    """The seconds and the CPU seconds from the rows' commit until the relay has published them."""
    stop = asyncio.Event()
    lanes = _LanesReady(settings.relay_lanes)
    task = asyncio.create_task(run_relay(settings, stop, lanes))
    try:
        await asyncio.wait_for(lanes.ready.wait(), timeout=STARTUP_S)
        options = connect_options(settings)
        async with await psycopg.AsyncConnection.connect(env.dsn, **options) as conn:
            async with conn.cursor() as cursor:
                await cursor.executemany(_INSERT, rows)
            await conn.execute(f"NOTIFY {WAKE_CHANNEL}")
            await conn.commit()
            cpu, started = time.process_time(), time.perf_counter()
            await conn.set_autocommit(True)
            while await (await conn.execute(_UNPUBLISHED)).fetchone() is not None:
                await asyncio.sleep(0.01)
            return time.perf_counter() - started, time.process_time() - cpu
    finally:
        stop.set()
        await task


#: How long the relay may take to connect (seconds) before the measurement is given up.
STARTUP_S = 60.0
_INSERT = "INSERT INTO outbox (message_id, queue_name, actor_name, body) VALUES (%s, %s, 'bench', %s)"
_UNPUBLISHED = "SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT 1"


def _figure(key: str, name: str, messages: int, elapsed: float, cpu: float) -> Figure:
    return Figure("publish", key, name, messages / elapsed, cpu_s_per_1k=1000 * cpu / messages)
