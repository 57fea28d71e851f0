"""Heartbeat: writes the worker process's last progress for the liveness probe (`shared.heartbeat`).

The worker threads report here around every message (`before_process_message`, and
`after_process_message` or `after_skip_message`, which Dramatiq calls on the same thread whatever
the handler did). A small writer thread, started once the worker has booted, turns those reports
and the worker's and consumers' thread liveness into one time (`heartbeat.last_progress`) and
writes it. The writer only reports what the message loop did: when every worker thread is stuck,
the time it writes stops moving, so a running writer cannot keep a wedged worker looking alive.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from shared import heartbeat

logger = logging.getLogger(__name__)


class Heartbeat(Middleware):
    """Writes `<directory>/<pid>.beat` every `interval_s` while the worker process runs."""

    def __init__(
        self, directory: Path, *, interval_s: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.interval_s = interval_s
        self.clock = clock
        self._busy_since: dict[int, float] = {}
        self._lock = threading.Lock()
        # Reading the clock and writing the file is one step: a writer that read the clock
        # earlier must never replace the file after one that read it later.
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._worker: dramatiq.Worker | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._worker = worker
        self._stop.clear()
        self._writer = threading.Thread(target=self._write_until_stopped, name="heartbeat", daemon=True)
        self._writer.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        with self._lock:
            self._busy_since[threading.get_ident()] = self.clock()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self._idle()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._idle()

    def beat_once(self) -> float | None:
        """Write the current progress time (when there is any) and return it."""
        with self._write_lock:
            progress = self._progress()
            if progress is not None:
                heartbeat.write_beat(self.directory, os.getpid(), progress)
            return progress

    def _idle(self) -> None:
        with self._lock:
            self._busy_since.pop(threading.get_ident(), None)

    def _progress(self) -> float | None:
        worker = self._worker
        if worker is None:
            return None
        with self._lock:
            busy = dict(self._busy_since)
        states = [
            heartbeat.ThreadState(alive=thread.is_alive(), busy_since=busy.get(thread.ident or 0))
            for thread in worker.workers
        ]
        consumers_alive = all(thread.is_alive() for thread in worker.consumers.values())
        return heartbeat.last_progress(self.clock(), states, consumers_alive)

    def _write_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat_once()
            except OSError:
                # A full or read-only disk: the beat goes stale and the probe says so.
                logger.exception("could not write the heartbeat in %s", self.directory)
            self._stop.wait(self.interval_s)
