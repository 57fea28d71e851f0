"""The outbox relay process (`circulate relay`): publishes outbox rows until told to stop.

Latency: when a pass fills its batch the next starts at once; otherwise the relay waits for a
notification on `shared.outbox.WAKE_CHANNEL` (a producer's transaction committed a due row) or the
poll interval (50 ms by default), whichever comes first. The poll stays as the fallback: for rows
that become due later (the schedule), for producers that do not notify, and where LISTEN cannot
work: behind PgBouncer in transaction pooling a LISTEN is accepted but nothing is ever delivered,
so set `database_direct_url` to a URL that bypasses the pooler; without it the relay only polls.
If the listening connection cannot be opened or fails, the relay says so and polls.

A lost database or broker connection is reopened with a capped, jittered backoff, so a restart of
either costs a pause, not the process; the broker connection goes to the first live node of
`CIRCULATE_AMQP_URL` (a cluster's nodes are tried in turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

import psycopg

from shared.broker_nodes import ReconnectBackoff
from shared.config import Settings
from shared.db import connect_options, libpq_url
from shared.metrics_runtime import record_relay_pass, start_relay_metrics_server
from shared.outbox import WAKE_CHANNEL
from shared.pruning import prune_expired
from shared.relay import open_channel, relay_once

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 30.0
MAX_RECONNECT_WAIT_S = 5.0


async def run_relay(settings: Settings, stop: asyncio.Event) -> int:
    """Relay until `stop` is set; returns how many messages were published."""
    published = 0
    backoff = ReconnectBackoff(cap_s=MAX_RECONNECT_WAIT_S)
    while not stop.is_set():
        try:
            published += await _relay_connected(settings, stop, backoff)
        except (OSError, psycopg.Error, ConnectionError, Exception) as error:
            if stop.is_set():
                break
            wait = backoff.next_delay()
            logger.warning("relay lost a connection (%s); reconnecting in %.1fs", error, wait)
            await _sleep_or_stop(stop, wait)
        else:
            backoff.reset()
    return published


async def _relay_connected(settings: Settings, stop: asyncio.Event, backoff: ReconnectBackoff) -> int:
    published = 0
    poll_s = settings.relay_poll_interval_ms / 1000
    conn = await psycopg.AsyncConnection.connect(libpq_url(settings), **connect_options(settings))
    try:
        connection, channel = await open_channel(settings.amqp_urls)
    except BaseException:
        await conn.close()
        raise
    backoff.reset()  # both connections are up: the next loss starts from the short wait again
    listener = await _listen(settings)
    last_prune = 0.0
    try:
        while not stop.is_set():
            result = await relay_once(conn, channel, limit=settings.relay_batch_size)
            record_relay_pass(result.published)
            published += result.published
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                await prune_expired(conn, settings)
                last_prune = time.monotonic()
            if result.claimed < settings.relay_batch_size:
                listener = await _wait_for_work(listener, stop, poll_s)
    finally:
        await connection.close()
        await conn.close()
        if listener is not None:
            await listener.close()
    return published


async def _listen(settings: Settings) -> psycopg.AsyncConnection[tuple[object, ...]] | None:
    """A connection of its own LISTENing on the wake channel, or None (the relay then only polls)."""
    url = settings.database_direct_url or settings.database_url
    try:
        listener = await psycopg.AsyncConnection.connect(
            libpq_url(settings.model_copy(update={"database_url": url})), autocommit=True
        )
        await listener.execute(f"LISTEN {WAKE_CHANNEL}")
    except (OSError, psycopg.Error) as error:
        logger.warning("relay cannot LISTEN for new outbox rows (%s); polling only", error)
        return None
    return listener


async def _wait_for_work(
    listener: psycopg.AsyncConnection[tuple[object, ...]] | None, stop: asyncio.Event, seconds: float
) -> psycopg.AsyncConnection[tuple[object, ...]] | None:
    """Until a notification, `seconds`, or `stop`; returns the listener, or None once it failed."""
    if listener is None:
        await _sleep_or_stop(stop, seconds)
        return None
    notified = asyncio.ensure_future(_notification(listener, seconds))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({notified, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        notified.cancel()
        stopped.cancel()
    try:
        if notified.done() and not notified.cancelled():
            notified.result()
    except (OSError, psycopg.Error) as error:
        logger.warning("relay's LISTEN connection failed (%s); polling only until it reconnects", error)
        with contextlib.suppress(Exception):
            await listener.close()
        return None
    return listener


async def _notification(listener: psycopg.AsyncConnection[tuple[object, ...]], seconds: float) -> None:
    async for _ in listener.notifies(timeout=seconds, stop_after=1):
        pass


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def main(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; the batch in flight finishes (or rolls back) first."""
    start_relay_metrics_server(settings)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        total = await run_relay(settings, stop)
        logger.info("relay stopped after publishing %d messages", total)

    asyncio.run(runner())
