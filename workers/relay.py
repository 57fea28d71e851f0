"""The outbox relay process (`circulate relay`): publishes outbox rows until told to stop.

Latency: when a pass fills its batch the next starts at once; otherwise the relay waits the short
poll interval (50 ms by default). A lost database or broker connection is reopened with a capped,
jittered backoff, so a restart of either costs a pause, not the process; the broker connection
goes to the first live node of `CIRCULATE_AMQP_URL` (a cluster's nodes are tried in turn).
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
                await _sleep_or_stop(stop, poll_s)
    finally:
        await connection.close()
        await conn.close()
    return published


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
