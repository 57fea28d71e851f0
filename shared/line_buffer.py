"""Log lines that wait a few milliseconds and leave together: one write for many lines.

A worker writes one outcome line per message (`shared.middleware.message_log`), and the API one
line per request. Written one at a time, each line is a system call, and in a Dramatiq worker
process a message on the pipe to Dramatiq's main process, which reads it and writes it out again:
the core's one-message path spent about 100 us of CPU per message on that, a tenth of its whole
cost (`docs/development/benchmarks.md`). `PendingLines` keeps the lines of a process for up to
`interval_s` after the first one and hands them to `write` in one call, from a thread of its own.

What it costs: a line reaches the log up to `interval_s` later (20 ms by default,
`CIRCULATE_LOG_BUFFER_MS`), and a process killed outright (SIGKILL, the OOM killer) loses the lines
of its last `interval_s`. The handler (`shared.logs`) only holds lines below WARNING here: a
warning or an error first writes what is pending, then itself, at once, so the lines that explain
a failure are never the ones held. A process that exits normally writes what is pending first
(`atexit`, and multiprocessing's exit finalizers for Dramatiq's and uvicorn's child processes,
which leave through `os._exit`).

Every method is called with the caller's lock held (the logging handler's), so `add`, `take` and
the writes of other lines never interleave; the thread takes the same lock through `write`.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing import util as multiprocessing_util


class PendingLines:
    def __init__(self, flush: Callable[[], None], interval_s: float) -> None:
        """`flush` takes the caller's lock, calls `take` and writes what it returns."""
        self._flush = flush
        self.interval_s = interval_s
        self._lines: list[str] = []
        self._due = threading.Event()
        self._writer_pid: int | None = None
        # A forked child starts with a copy of the lines its parent holds, which the parent
        # writes: the child forgets them (Dramatiq and uvicorn fork from a process that logs).
        forget = weakref.WeakMethod(self._forget_inherited_lines)
        os.register_at_fork(after_in_child=lambda: (method := forget()) and method())

    def add(self, line: str) -> None:
        """Hold `line`; it is written at most `interval_s` after the oldest line held."""
        self._lines.append(line)
        if self._writer_pid != os.getpid():
            self._start_writer()  # first line in this process (a forked child inherits no thread)
        if len(self._lines) == 1:
            self._due.set()

    def take(self) -> list[str]:
        """The lines held, in the order they were added; none are held afterwards."""
        lines, self._lines = self._lines, []
        return lines

    def _forget_inherited_lines(self) -> None:
        self._lines = []

    def _start_writer(self) -> None:
        self._writer_pid = os.getpid()
        self._due = threading.Event()
        # A daemon: it never keeps a process alive; the exit hooks write its last lines instead.
        threading.Thread(target=self._write_when_due, name="circulate-log-writer", daemon=True).start()
        atexit.register(self._flush)
        multiprocessing_util.Finalize(None, self._flush, exitpriority=0)

    def _write_when_due(self) -> None:
        due = self._due
        while True:
            due.wait()
            time.sleep(self.interval_s)  # lines added meanwhile leave with the first
            due.clear()
            self._flush()
