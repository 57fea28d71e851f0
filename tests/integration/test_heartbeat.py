"""The worker heartbeat on a real Dramatiq worker and broker: a wedged worker's beat goes stale.

The heartbeat's clock is a hand-moved one, so "five minutes later" takes no time and nothing
here depends on how fast the machine is; `beat_once` writes what the writer thread writes.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from shared.heartbeat import beat_path, liveness_problems, read_beats
from shared.middleware.heartbeat import Heartbeat
from tests.fixtures.services import wait_until

QUEUE = "fulfilment"
MAX_AGE_S = 180.0


class HandClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> HandClock:
    return HandClock(1_000_000.0)


@pytest.fixture
def heartbeat(broker, clock, tmp_path: Path) -> Heartbeat:
    middleware = Heartbeat(tmp_path, interval_s=0.02, clock=clock)
    broker.add_middleware(middleware)
    return middleware


@pytest.fixture
def stuck_actor(broker) -> Iterator[tuple[dramatiq.Actor, threading.Semaphore, threading.Event]]:
    """An actor whose calls block until the test releases them, as a handler that never returns."""
    started, release = threading.Semaphore(0), threading.Event()

    def stuck() -> None:
        started.release()
        release.wait(60)

    actor = dramatiq.Actor(
        stuck, broker=broker, actor_name="tests.stuck", queue_name=QUEUE, priority=0, options={}
    )
    yield actor, started, release
    release.set()


@pytest.fixture
def two_thread_worker(broker, heartbeat) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


def alive(directory: Path, clock: HandClock) -> list[str]:
    return liveness_problems(directory, max_age_s=MAX_AGE_S, now=clock.now)


def test_the_writer_thread_beats_on_its_own_once_the_worker_has_booted(
    two_thread_worker, heartbeat, clock, tmp_path
):
    wait_until(lambda: beat_path(tmp_path, os.getpid()).exists())
    assert list(read_beats(tmp_path).values()) == [clock.now]
    assert alive(tmp_path, clock) == []


def test_an_idle_worker_stays_alive_however_long_nothing_arrives(
    two_thread_worker, heartbeat, clock, tmp_path
):
    clock.now += 3600
    assert heartbeat.beat_once() == clock.now
    assert alive(tmp_path, clock) == []


def test_a_worker_whose_threads_are_all_stuck_goes_stale_and_recovers_when_they_return(
    broker, two_thread_worker, heartbeat, clock, stuck_actor, tmp_path
):
    actor, started, release = stuck_actor
    stuck_at = clock.now

    # Given one of the two threads stuck in a handler: the other is idle, so the worker lives
    actor.send()
    assert started.acquire(timeout=15)
    clock.now += 600
    heartbeat.beat_once()
    assert alive(tmp_path, clock) == []

    # When the second thread gets stuck too, five minutes pass, and the writer keeps writing
    clock.now = stuck_at + 60
    actor.send()
    assert started.acquire(timeout=15)
    clock.now = stuck_at + 360
    assert heartbeat.beat_once() == stuck_at + 60

    # Then the beat says no progress since the second message began: the probe fails
    problems = alive(tmp_path, clock)
    assert len(problems) == 1
    assert "no progress for 300 s" in problems[0]

    # And once the handlers return, the worker is alive again
    release.set()
    broker.join(QUEUE, timeout=15_000)
    two_thread_worker.join()
    assert heartbeat.beat_once() == clock.now
    assert alive(tmp_path, clock) == []


def test_a_stopped_worker_writes_no_more_beats(broker, heartbeat, clock, tmp_path):
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    worker.stop()
    clock.now += 600
    assert heartbeat.beat_once() is None
    assert alive(tmp_path, clock) != []


def test_a_real_worker_process_clears_earlier_beats_and_passes_the_probe(settings, tmp_path):
    from shared.heartbeat import main as probe
    from tests.fixtures.processes import fulfilment_worker, kill_group

    beats = tmp_path / "beats"
    beats.mkdir()
    (beats / "99999.beat").write_text("0.0\n")  # left by a process of an earlier start
    assert probe([str(beats), "--max-age", "60"]) == 1

    with fulfilment_worker(
        settings, log=tmp_path / "worker.log", CIRCULATE_HEARTBEAT_DIR=str(beats)
    ) as worker:
        wait_until(lambda: probe([str(beats), "--max-age", "60"]) == 0, timeout=60)
        assert "99999.beat" not in read_beats(beats)
        kill_group(worker, signal.SIGTERM)
