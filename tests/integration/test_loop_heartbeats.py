"""The relay, the dead-letter sweeper and the exporter on real services: a wedged loop goes stale.

Each loop is wedged for real: the relay and the sweeper on a table another transaction holds
locked, the exporter on a management API that accepts the connection and never answers. The
heartbeat's clock is moved by hand, so "five minutes later" takes no time; it writes on every
step (`every_s=0`), so what is on disk is what the loop last reported.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from shared.config import Settings
from shared.db import build_engine, connect_options, libpq_url
from shared.heartbeat import LoopHeartbeat, liveness_problems, read_beats
from shared.runtime import Runtime
from tests.fixtures.services import publish_raw, queue_depth, wait_until
from workers.dlq.sweeper import sweep_until
from workers.exporter import Exporter, beat_until
from workers.relay import run_relay

MAX_AGE_S = 180.0


class HandClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def problems(directory: Path, clock: HandClock) -> list[str]:
    return liveness_problems(directory, max_age_s=MAX_AGE_S, now=clock.now)


def stale_for_300_s(directory: Path, clock: HandClock) -> bool:
    found = problems(directory, clock)
    return len(found) == 1 and "no progress for 300 s" in found[0]


@contextmanager
def table_locked(settings: Settings, table: str) -> Iterator[psycopg.Connection]:
    """`table` locked against every reader and writer until the block ends (then rolled back)."""
    with psycopg.connect(libpq_url(settings), **connect_options(settings)) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            conn.rollback()


def lock_waiters(settings: Settings) -> int:
    with psycopg.connect(libpq_url(settings), autocommit=True, **connect_options(settings)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_relay_whose_lanes_are_stuck_goes_stale_and_recovers(settings, clean_db, tmp_path):
    clock = HandClock()
    heartbeat = LoopHeartbeat(tmp_path, loops=settings.relay_lanes, every_s=0, clock=clock)
    stop, loop = asyncio.Event(), asyncio.new_event_loop()
    relay = threading.Thread(target=lambda: loop.run_until_complete(run_relay(settings, stop, heartbeat)))
    relay.start()
    try:
        # Given a relay whose lanes pass
        wait_until(lambda: read_beats(tmp_path))
        assert problems(tmp_path, clock) == []

        with table_locked(settings, "outbox"):
            # When every lane is stuck on the outbox and five minutes pass
            wait_until(lambda: lock_waiters(settings) >= settings.relay_lanes)
            clock.now += 300
            # Then the beat says so
            assert stale_for_300_s(tmp_path, clock)

        # And once the lanes move again, the relay is alive
        wait_until(lambda: problems(tmp_path, clock) == [])
    finally:
        loop.call_soon_threadsafe(stop.set)
        relay.join(timeout=20)


def test_a_sweeper_stuck_on_the_archive_goes_stale_and_recovers(settings, clean_db: Runtime, tmp_path):
    clock = HandClock()
    heartbeat = LoopHeartbeat(tmp_path, every_s=0, clock=clock)
    heartbeat.progressed()  # as LoopHeartbeat.for_role does at start
    stop = threading.Event()
    sweep = dict(interval_s=0.05, heartbeat=heartbeat)
    sweeper = threading.Thread(target=sweep_until, args=(stop, settings, clean_db.sessions), kwargs=sweep)

    with table_locked(settings, "dead_letters"):
        # Given a dead copy to archive while the archive is locked
        publish_raw(settings, "fulfilment.XQ", b"\xff not a message")
        sweeper.start()
        try:
            # When the sweeper is stuck archiving it and five minutes pass
            wait_until(lambda: lock_waiters(settings) >= 1)
            clock.now += 300
            # Then the beat says so
            assert stale_for_300_s(tmp_path, clock)
        except BaseException:
            stop.set()
            raise

    try:
        # And once the archive is free, the sweeper moves the copy and is alive again
        wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 0)
        wait_until(lambda: problems(tmp_path, clock) == [])
    finally:
        stop.set()
        sweeper.join(timeout=20)


def test_an_exporter_stuck_on_a_source_that_never_answers_goes_stale_and_recovers(settings, tmp_path):
    clock = HandClock()
    heartbeat = LoopHeartbeat(tmp_path, every_s=0, clock=clock)
    silent = socket.create_server(("127.0.0.1", 0))
    silent.settimeout(15)
    management = httpx.Client(base_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=None)
    exporter = Exporter(
        vhost=settings.amqp_vhost,
        management=management,
        engine=build_engine(settings, pool_size=1),
        clock=clock,
    )
    stop = threading.Event()
    beater = threading.Thread(target=beat_until, args=(stop, exporter, heartbeat), kwargs={"every_s": 0.01})
    scrape = threading.Thread(target=exporter.collect)
    beater.start()
    try:
        # Given an exporter that nobody scrapes: it is alive
        wait_until(lambda: read_beats(tmp_path))
        clock.now += 600
        wait_until(lambda: problems(tmp_path, clock) == [])

        # When a scrape waits on a management API that never answers, and five minutes pass
        scrape.start()
        connection, _ = silent.accept()
        clock.now += 300
        # Then the beat says so
        wait_until(lambda: stale_for_300_s(tmp_path, clock))

        # And once the source gives up (the connection closes), the scrape ends: alive again
        connection.close()
        scrape.join(timeout=30)
        wait_until(lambda: problems(tmp_path, clock) == [])
    finally:
        stop.set()
        beater.join(timeout=5)
        exporter.close()
        silent.close()
