"""The worker heartbeat: one file per worker process, read by Kubernetes' liveness probe.

"The process exists" says nothing about a worker whose threads are all stuck inside handlers (a
call that never returns, a deadlock, a C extension holding the GIL): the pod looks healthy while
its prefetched messages wait forever. So each worker process writes, about once a second, the time
its message loop last made progress (`last_progress`), and `python -m shared.heartbeat DIR
--max-age S` fails when any process's beat is older than S seconds. Progress means: at least one
worker thread is idle (waiting on the work queue) or the newest message a thread started is
recent, and every worker and consumer thread is still running. When every thread is stuck, the
written time stops at the moment the last one got stuck and the beat goes stale although the
writer still runs; when the whole interpreter is frozen, the writer stops and the beat goes stale
all the same.

A single stuck thread while others keep working is not a dead worker: the time limit
(`time_limit_ms`) is what interrupts it, and the handling-time metrics show it.

The file holds epoch seconds as text and is replaced atomically, so a reader never sees half a
number. Dramatiq's main process (`workers.worker.run_dramatiq`, under `circulate worker`) clears
the directory before it starts the worker processes, so beats of a previous start (a restarted
container keeps its volumes) never count.

The relay, the dead-letter sweeper and the exporter have no Dramatiq threads; their work is a loop
of their own (a lane's pass, a sweep's batch, a scrape). `LoopHeartbeat` gives each the same kind
of beat, written by that loop when it moves, in a directory per role below the worker's
(`<heartbeat_dir>/relay`, ...), so each process clears only its own beats and one check reads
them all: the check reads every beat below the directory it is given, so the image's one
HEALTHCHECK fits every role.

The check is a module of its own rather than a `circulate` command because the probe runs it every
few seconds in every worker pod: it takes a twentieth of a second, the command line over one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".beat"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadState:
    """One worker thread as the heartbeat sees it: alive or not, and since when it is busy."""

    alive: bool
    #: Epoch seconds when the thread started its current message; None while it waits for one.
    busy_since: float | None


def last_progress(now: float, workers: Iterable[ThreadState], consumers_alive: bool) -> float | None:
    """When the process's message loop last moved; None when it has no running loop at all.

    `now` while any running worker thread is idle; else the start of the newest message a thread
    is still on. None when no worker thread runs or a consumer thread died: nothing gets done.
    """
    running = [state for state in workers if state.alive]
    if not running or not consumers_alive:
        return None
    if any(state.busy_since is None for state in running):
        return now
    return max(state.busy_since for state in running if state.busy_since is not None)


def beat_path(directory: Path, pid: int) -> Path:
    """The beat file of the worker process `pid`."""
    return directory / f"{pid}{SUFFIX}"


def write_beat(directory: Path, pid: int, at: float) -> None:
    """Record `at` as the process's last progress (atomically: write aside, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = beat_path(directory, pid)
    # One scratch file per writing thread: two writers never rename each other's file away.
    scratch = directory / f"{pid}.{threading.get_ident()}.tmp"
    scratch.write_text(f"{at:.3f}\n")
    os.replace(scratch, target)


def clear_beats(directory: Path) -> None:
    """Remove the beats of earlier processes, before a new `circulate worker` starts its own."""
    for path in directory.glob(f"*{SUFFIX}"):
        path.unlink(missing_ok=True)


def read_beats(directory: Path) -> dict[str, float | None]:
    """Each beat file below `directory` (its relative path) and its time (None if not a number)."""
    beats: dict[str, float | None] = {}
    for path in sorted(directory.rglob(f"*{SUFFIX}")):
        name = str(path.relative_to(directory))
        try:
            beats[name] = float(path.read_text().strip())
        except (OSError, ValueError):
            beats[name] = None
    return beats


def liveness_problems(directory: Path, *, max_age_s: float, now: float) -> list[str]:
    """Why the worker in this container is not alive; an empty list when it is."""
    beats = read_beats(directory) if directory.is_dir() else {}
    if not beats:
        return [f"no heartbeat in {directory} (the worker has not booted, or writes none)"]
    problems = []
    for name, at in beats.items():
        if at is None:
            problems.append(f"{name}: unreadable")
        elif now - at > max_age_s:
            problems.append(f"{name}: no progress for {now - at:.0f} s (limit {max_age_s:.0f} s)")
    return problems


def role_directory(heartbeat_dir: str | None, role: str) -> Path | None:
    """Where the process of `role` (relay, exporter, dlq-sweeper) beats; None when beats are off."""
    return Path(heartbeat_dir) / role if heartbeat_dir else None


class LoopHeartbeat:
    """The beat of a process whose work is one or more loops of its own (relay lanes, the sweeper).

    Each loop calls `progressed(loop)` whenever it completes a step (a pass, a batch, a second of
    waiting); the beat written is the oldest of the loops' last steps, so one wedged loop is
    enough to let it go stale, however busy the others are. Writes are at most one per
    `every_s` of the clock, from the loop that progressed: no thread of its own, so a frozen
    process or event loop writes nothing. Without a directory it only keeps the times.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        loops: int = 1,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        started = clock()
        self._last = [started] * loops
        self._written_at: float | None = None

    @classmethod
    def for_role(cls, heartbeat_dir: str | None, role: str, *, loops: int = 1) -> LoopHeartbeat:
        """The role's beat in its own directory, cleared of an earlier start's, and a first beat."""
        directory = role_directory(heartbeat_dir, role)
        if directory is not None:
            clear_beats(directory)
        beat = cls(directory, loops=loops)
        beat.progressed()
        return beat

    def progressed(self, loop: int = 0, *, at: float | None = None) -> None:
        """Loop `loop` moved at `at` (now by default): record it, and write the beat when due."""
        with self._lock:
            now = self._clock()
            self._last[loop] = now if at is None else at
            if self.directory is None or (
                self._written_at is not None and now - self._written_at < self._every_s
            ):
                return
            self._written_at = now
            try:
                write_beat(self.directory, os.getpid(), min(self._last))
            except OSError:
                # A full or read-only disk: the beat goes stale and the probe says so.
                logger.exception("could not write the heartbeat in %s", self.directory)

    def loop(self, loop: int) -> Callable[[], None]:
        """`progressed` for one loop, for code that should not know about the others."""
        return lambda: self.progressed(loop)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m shared.heartbeat DIRECTORY --max-age S`: 0 when alive, 1 with the reasons."""
    parser = argparse.ArgumentParser(prog="python -m shared.heartbeat", description=main.__doc__)
    parser.add_argument("directory", type=Path, help="read every beat below it")
    parser.add_argument("--max-age", type=float, default=180.0, help="seconds without progress")
    args = parser.parse_args(argv)
    problems = liveness_problems(args.directory, max_age_s=args.max_age, now=time.time())
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
