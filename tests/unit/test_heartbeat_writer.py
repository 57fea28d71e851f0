"""The heartbeat middleware's writes: the probe's file never goes back to an older time.

The writer thread and a direct `beat_once` (the tests', or a second writer after a reboot of the
worker) both write the beat. Each reads the clock and then writes; unserialised, a writer that
read the clock first could write last, and the file would hold the older time: a live worker
would look stale to the liveness probe.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shared.heartbeat import read_beats
from shared.middleware.heartbeat import Heartbeat

EARLIER, LATER = 1_000_000.0, 1_003_600.0


class WriterPausedAfterReadingTheClock:
    """A clock whose first reading by the writer thread returns EARLIER and then holds that thread.

    The hold ends when the test's own write is done (or after a second, when the writes are
    serialised and the test's write has to wait for the writer's).
    """

    def __init__(self) -> None:
        self.now = EARLIER
        self.writer_has_read = threading.Event()
        self.test_has_written = threading.Event()
        self._held = False

    def __call__(self) -> float:
        reading = self.now
        if threading.current_thread().name == "heartbeat" and not self._held:
            self._held = True
            self.writer_has_read.set()
            self.test_has_written.wait(1.0)
        return reading


def idle_worker() -> Any:
    """A worker with one idle, running thread and no consumers: its progress is `now`."""
    return SimpleNamespace(workers=[threading.current_thread()], consumers={})


def test_a_write_that_read_the_clock_earlier_never_lands_over_a_later_one(tmp_path: Path) -> None:
    clock = WriterPausedAfterReadingTheClock()
    heartbeat = Heartbeat(tmp_path, interval_s=60.0, clock=clock)
    heartbeat.after_worker_boot(broker=None, worker=idle_worker())  # type: ignore[arg-type]
    try:
        assert clock.writer_has_read.wait(5.0)
        clock.now = LATER
        assert heartbeat.beat_once() == LATER
        clock.test_has_written.set()
    finally:
        heartbeat.after_worker_shutdown(broker=None, worker=None)  # type: ignore[arg-type]

    assert read_beats(tmp_path) == {f"{os.getpid()}.beat": LATER}
