"""The outbox relay process (`circulate relay`): publishes outbox rows until told to stop.

Throughput: `relay_lanes` passes run at once on connections of their own (2 by default), taking
disjoint rows, so one lane's claim and mark overlap another's publishing and the broker is not
left idle while the database works.

Latency: when a pass fills its batch the next starts at once; otherwise the lane waits for a
notification on `shared.outbox.WAKE_CHANNEL` (a producer's transaction committed a due row) or the
poll interval (50 ms by default), whichever comes first. Each notification wakes one lane, the
next idle one in turn (`wake_one_lane_each`); while the relay listens only the first lane polls at
the interval, the others every second (`lane_poll_s`). The poll stays as the fallback: for rows
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
from collections.abc import AsyncIterator, Callable

import psycopg
from aiormq.abc import AbstractChannel

from shared.broker_nodes import ReconnectBackoff
from shared.config import Settings
from shared.db import connect_options, libpq_url
from shared.heartbeat import LoopHeartbeat
from shared.metrics_runtime import record_relay_pass, start_relay_metrics_server
from shared.outbox import WAKE_CHANNEL
from shared.pruning import prune_expired
from shared.relay import open_channel, relay_once

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 30.0
MAX_RECONNECT_WAIT_S = 5.0


async def run_relay(settings: Settings, stop: asyncio.Event, heartbeat: LoopHeartbeat | None = None) -> int:
    """Relay until `stop` is set; returns how many messages were published.

    Each lane beats `heartbeat` (one loop per lane) after every pass and prune batch.
    """
    heartbeat = heartbeat or LoopHeartbeat(None, loops=settings.relay_lanes)
    published = 0
    backoff = ReconnectBackoff(cap_s=MAX_RECONNECT_WAIT_S)
    while not stop.is_set():
        try:
            published += await _relay_connected(settings, stop, backoff, heartbeat)
        except (OSError, psycopg.Error, ConnectionError, Exception) as error:
            if stop.is_set():
                break
            wait = backoff.next_delay()
            logger.warning("relay lost a connection (%s); reconnecting in %.1fs", error, wait)
            await _sleep_or_stop(stop, wait)
        else:
            backoff.reset()
    return published


async def _relay_connected(
    settings: Settings, stop: asyncio.Event, backoff: ReconnectBackoff, heartbeat: LoopHeartbeat
) -> int:
    url = libpq_url(settings)
    conns: list[psycopg.AsyncConnection[tuple[object, ...]]] = []
    try:
        for _ in range(settings.relay_lanes):
            # Autocommit: a pass sends its own BEGIN and COMMIT (`shared.relay.relay_once`).
            conns.append(
                await psycopg.AsyncConnection.connect(url, autocommit=True, **connect_options(settings))
            )
        connection, channel = await open_channel(settings.amqp_urls)
    except BaseException:
        for conn in conns:
            await conn.close()
        raise
    backoff.reset()  # both connections are up: the next loss starts from the short wait again
    wakes = [asyncio.Event() for _ in conns]
    listener = await _listen(settings)
    try:
        # A lane that fails cancels the others; run_relay reconnects them all.
        async with asyncio.TaskGroup() as lanes:
            waker = lanes.create_task(_wake_on_notify(listener, wakes)) if listener else None
            tasks = [
                lanes.create_task(
                    _lane(
                        conn,
                        channel,
                        settings,
                        stop,
                        wake,
                        poll_s=lane_poll_s(settings, index, listening=listener is not None),
                        prunes=index == 0,
                        beat=heartbeat.loop(index),
                    )
                )
                for index, (conn, wake) in enumerate(zip(conns, wakes, strict=True))
            ]
            await asyncio.gather(*tasks)
            if waker is not None:
                waker.cancel()
    finally:
        await connection.close()
        for conn in conns:
            await conn.close()
        if listener is not None:
            await listener.close()
    return sum(task.result() for task in tasks)


async def _lane(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    channel: AbstractChannel,
    settings: Settings,
    stop: asyncio.Event,
    wake: asyncio.Event,
    *,
    poll_s: float,
    prunes: bool,
    beat: Callable[[], None],
) -> int:
    """One pass after another on `conn`; when the outbox is drained, wait for `wake` or `poll_s`.

    Lanes take disjoint rows (SKIP LOCKED), so one claims and marks while another publishes.
    """
    published = 0
    last_prune = 0.0
    refused = ReconnectBackoff(first_s=REFUSED_FIRST_WAIT_S, cap_s=MAX_RECONNECT_WAIT_S)
    while not stop.is_set():
        result = await relay_once(conn, channel, limit=settings.relay_batch_size)
        record_relay_pass(result.published)
        published += result.published
        beat()
        if prunes and time.monotonic() - last_prune > PRUNE_EVERY_S:
            await prune_expired(conn, settings, progressed=beat)
            last_prune = time.monotonic()
        if result.claimed and not result.published:
            await _after_refused_pass(refused, stop, result.claimed)
            continue
        refused.reset()
        if result.claimed < settings.relay_batch_size:
            await _wait_for_wake(wake, stop, poll_s)
    return published


#: The first wait after a pass whose every publish the broker refused; doubled each time.
REFUSED_FIRST_WAIT_S = 0.2
#: Refused passes in a row after which the lane gives up its channel, and the relay reconnects.
REFUSED_PASSES_BEFORE_RECONNECT = 5


async def _after_refused_pass(refused: ReconnectBackoff, stop: asyncio.Event, rows: int) -> None:
    """Wait before trying rows the broker refused (`Basic.Nack` for every one) again; after
    REFUSED_PASSES_BEFORE_RECONNECT such passes, raise so the relay reconnects.

    The rows stay unpublished, so nothing is lost; but trying them again at once kept a lane
    republishing them about a thousand times a second for as long as the refusal lasted (in a
    cluster test, 63,000 nacks of 183 rows in 60 s after the queue's leading node was killed).
    A refusal that outlasts a few passes may belong to the channel or its node rather than to
    the queue, so the lane then gives up its connection: the relay reconnects, from a node
    picked afresh, with a new channel.
    """
    if refused.failures >= REFUSED_PASSES_BEFORE_RECONNECT:
        raise ConnectionError(f"the broker refused every publish of {refused.failures + 1} passes in a row")
    wait = refused.next_delay()
    logger.warning("the broker refused all %d publishes of a pass; trying again in %.1fs", rows, wait)
    await _sleep_or_stop(stop, wait)


#: How often the lanes after the first poll while notifications wake them.
LISTENING_EXTRA_LANE_POLL_S = 1.0


def lane_poll_s(settings: Settings, index: int, *, listening: bool) -> float:
    """How long lane `index` waits for a wake before it polls anyway.

    The first lane polls at `relay_poll_interval_ms`: it finds the rows nobody notifies about
    (a scheduled row falling due) as soon as before. While the relay listens, the other lanes are
    woken by the notifications, and nothing else needs them: polling every 50 ms too, an idle
    relay ran 40 empty passes a second (5 % of a core), which at a few orders a second was a
    third of its CPU. Without a listener every lane polls as configured.
    """
    poll_s = settings.relay_poll_interval_ms / 1000
    if listening and index > 0:
        return max(poll_s, LISTENING_EXTRA_LANE_POLL_S)
    return poll_s


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


async def _wake_on_notify(
    listener: psycopg.AsyncConnection[tuple[object, ...]], wakes: list[asyncio.Event]
) -> None:
    """Wake one lane per notification; a listener that fails leaves the lanes polling."""
    try:
        await wake_one_lane_each(listener.notifies(), wakes)
    except (OSError, psycopg.Error) as error:
        logger.warning("relay's LISTEN connection failed (%s); polling only until it reconnects", error)


async def wake_one_lane_each(notifications: AsyncIterator[object], wakes: list[asyncio.Event]) -> None:
    """Each notification wakes the next lane not already woken, in turn.

    A notification is one committed transaction's rows: one pass publishes them, and waking every
    lane for it made the others' passes find nothing (SKIP LOCKED), two round trips each, which at
    a few orders a second was most of the relay's CPU. A lane that is busy keeps its wake and
    passes again as soon as it is done, so no notification is lost; a backlog still gets every
    lane, since a pass that fills its batch starts the next at once.
    """
    turn = 0
    async for _ in notifications:
        for step in range(len(wakes)):
            wake = wakes[(turn + step) % len(wakes)]
            if not wake.is_set():
                wake.set()
                turn = (turn + step + 1) % len(wakes)
                break


async def _wait_for_wake(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Until `wake` (then cleared), `stop`, or `seconds`, whichever comes first."""
    woken = asyncio.ensure_future(wake.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({woken, stopped}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        stopped.cancel()
    wake.clear()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def main(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; the batch in flight finishes (or rolls back) first."""
    start_relay_metrics_server(settings)
    heartbeat = LoopHeartbeat.for_role(settings.heartbeat_dir, "relay", loops=settings.relay_lanes)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        total = await run_relay(settings, stop, heartbeat)
        logger.info("relay stopped after publishing %d messages", total)

    asyncio.run(runner())
