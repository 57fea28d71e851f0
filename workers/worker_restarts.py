"""A killed worker process is replaced alone, instead of taking its whole `circulate worker` down.

Dramatiq's main process (`dramatiq.cli.main`) watches its worker processes, and when one exits
while it is running it logs "Worker with PID ... exited unexpectedly", sends SIGTERM to all the
others and exits: one `kill -9` (the OOM killer, an operator, a crash in a C extension) stops
every worker process of the group, and consumption stalls until the group has been restarted and
has booted again (10-15 s on a loaded machine). Dramatiq 2.2 has no option to restart a dead
worker process instead.

So each worker process Dramatiq starts is, with `install()`, a small keeper: it runs Dramatiq's
real worker process (`dramatiq.cli.worker_process`) as its own child and, when that child is
killed by a signal, starts another one, as a container orchestrator restarts a container. The
main process never sees an exit, so the group's other worker processes go on consuming; the
killed one's unacknowledged messages are redelivered by RabbitMQ as soon as its connections
close, and the idempotency keys absorb whatever it had committed but not acknowledged.

What is not restarted: an exit with a status (a failed import, no broker at boot, a normal stop)
is passed on to Dramatiq's main process, which shuts the group down as before, so a worker that
cannot start does not loop. SIGTERM and SIGHUP are forwarded to the child, whose graceful
shutdown Dramatiq drives as it always did. A child killed after it had booted is replaced at
once; one killed before it had booted is replaced after a capped, doubling delay, so a process
that cannot boot is not restarted in a tight loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

#: Before the replacement of a child that died before it had booted; doubled each time.
FIRST_WAIT_S = 0.1
MAX_WAIT_S = 5.0
#: Signals Dramatiq's main process sends its worker processes to stop or reload them.
FORWARDED = (signal.SIGTERM, signal.SIGHUP)
#: What Dramatiq's main process blocks before it starts its worker processes.
INHERITED_BLOCK = (*FORWARDED, signal.SIGINT)

#: The end of the line logged for each replaced worker process (the chaos harness counts them).
REPLACED = "; starting another (the group keeps running)"

OnDeath = Callable[[int], None]
#: linux/prctl.h
PR_SET_PDEATHSIG = 1


def keep(
    target: Callable[..., object],
    args: Sequence[Any],
    *,
    on_death: OnDeath | None = None,
    ready_at: int | None = None,
) -> int:
    """Run `target(*args)` in a child process, again each time a signal kills it; its exit code.

    Returns when the child exits with a status (0 after a requested stop), or when it is killed
    after this process was asked to stop; a child killed by a signal returns minus the signal,
    as `multiprocessing` reports it. `on_death(pid)` runs after each unplanned death (the worker's
    heartbeat file goes with it, so a liveness probe does not count a process that is gone).

    `args[ready_at]`, if given, is the event the child sets once it has booted (Dramatiq's
    worker process sets it when its consumers run): a child killed after it had booted is
    replaced at once, one killed before it booted after a doubling delay, so that a process that
    cannot boot is not restarted in a tight loop. Each child gets a `BootSignal` of its own in
    that place, and this keeper sets Dramatiq's event when the first child has booted.
    """
    stopping = StopRequest()
    child: multiprocessing.Process | None = None

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.request()
        if child is not None and child.pid is not None:
            # Died meanwhile: the loop below sees its exit.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    for forwarded in FORWARDED:
        signal.signal(forwarded, forward)
    # Dramatiq turns SIGINT into SIGTERM in its main process; its worker processes ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wait_s = FIRST_WAIT_S
    child_args = list(args)
    told = args[ready_at] if ready_at is not None else None
    while True:
        boot = BootSignal()
        if ready_at is not None:
            child_args[ready_at] = boot
        # Started while Dramatiq's main process still blocks its handled signals: the child
        # inherits the mask and unblocks it once its own handlers are in place, as before.
        child = multiprocessing.Process(target=_bound_to_parent, args=(target, *child_args), daemon=False)
        child.start()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, INHERITED_BLOCK)
        if stopping.is_set() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)  # asked to stop while this child was starting
        booted = _wait_for_exit(child, boot, told)
        told = None  # Dramatiq's main process waits for its Event at the start only
        code = child.exitcode
        if code is None or code >= 0 or stopping.is_set():
            return 0 if code is None else code
        pid = child.pid
        logger.warning(
            "worker process %s killed by %s" + REPLACED,
            pid,
            signal.Signals(-code).name,
        )
        if on_death is not None and pid is not None:
            on_death(pid)
        if booted or ready_at is None:
            wait_s = FIRST_WAIT_S
        elif stopping.wait(wait_s):
            return code
        else:
            wait_s = min(wait_s * 2, MAX_WAIT_S)


class BootSignal:
    """What the keeper hands its child where Dramatiq's worker process expects its boot Event.

    The child calls `set()` once its consumers run, as it would Dramatiq's Event; here that writes
    a byte to a pipe only this keeper reads. A `multiprocessing.Event` would not do: its `set`
    holds a lock shared by every process while it waits for the waiting process to wake, so a
    child killed in that moment left the lock held for good, and the keeper, asking the Event
    whether its dead child had booted, waited for that lock forever and started no other (found
    under load by `tests/faults/test_worker_restarts.py`; `tests/unit/test_keeper_boot_signal.py`
    kills a child at that moment). A byte is written whole or not at all, and nobody waits on it.
    """

    def __init__(self) -> None:
        self.reader, self._writer = multiprocessing.Pipe(duplex=False)
        self.was_set = False

    def set(self) -> None:
        with contextlib.suppress(OSError):
            self._writer.send_bytes(b"1")

    def take(self) -> bool:
        """Whether the child has signalled (read without waiting); remembered once it has."""
        with contextlib.suppress(OSError, EOFError):
            while self.reader.poll():
                self.reader.recv_bytes()
                self.was_set = True
        return self.was_set

    def close(self) -> None:
        self.reader.close()
        self._writer.close()


def _wait_for_exit(child: multiprocessing.Process, boot: BootSignal, told: Any) -> bool:
    """Wait for `child` to exit; whether it had booted. Dramatiq's main process, which waits for
    the first child's boot on `told` (its Event), is told by this keeper, which is not killed
    while it sets it as a worker process can be."""
    try:
        while not boot.was_set:
            ready = multiprocessing.connection.wait([child.sentinel, boot.reader])
            if boot.take() and told is not None:
                told.set()
            if child.sentinel in ready:
                break
        child.join()
        return boot.take()
    finally:
        boot.close()


class StopRequest:
    """Whether the keeper was asked to stop, set from its signal handler.

    Not a `threading.Event`: its `set` takes a lock, and a second SIGTERM arriving while the
    handler of the first was inside it ran the handler again in the same thread, which waited for
    that lock forever (the keeper hung, and with it the whole `circulate worker`, whenever the
    process group got SIGTERM twice in quick succession: the group's and Dramatiq's forwarded
    one). Assigning an attribute takes no lock, so the handler may interrupt itself.
    """

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if a stop is requested meanwhile; whether one was."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        return self.requested


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (`PR_SET_PDEATHSIG`).

    Without it, a keeper killed with SIGKILL (or Dramatiq's main process, above the keepers)
    leaves its worker process running as an orphan: still consuming, outside any group, never
    stopped. Both the keeper and the worker process call this first thing.
    """
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGKILL)


def _bound_to_parent(target: Callable[..., object], *args: Any) -> None:
    die_with_parent()
    target(*args)


def install(*, on_death: OnDeath | None = None) -> None:
    """Make every worker process Dramatiq's CLI starts from now on a keeper (see `keep`)."""
    import dramatiq.cli

    original = dramatiq.cli.worker_process
    if getattr(original, "__wrapped__", None) is not None:
        return  # installed already

    def worker_process(*args: Any) -> None:
        die_with_parent()
        # Dramatiq's worker_process(args, worker_id, logging_pipe, canteen, event)
        sys.exit(keep(original, args, on_death=on_death, ready_at=4))

    worker_process.__wrapped__ = original  # type: ignore[attr-defined]
    dramatiq.cli.worker_process = worker_process


def forget_beat(heartbeat_dir: str | None) -> OnDeath | None:
    """The `on_death` that removes a dead worker process's heartbeat file, if beats are written."""
    if not heartbeat_dir:
        return None
    from shared.heartbeat import beat_path

    directory = Path(heartbeat_dir)

    def forget(pid: int) -> None:
        beat_path(directory, pid).unlink(missing_ok=True)

    return forget


def main(argv: Sequence[str]) -> int:
    """`circulate worker`'s entry: Dramatiq's CLI whose killed worker processes come back."""
    from shared.config import Settings
    from workers.worker import run_dramatiq

    install(on_death=forget_beat(Settings().heartbeat_dir))
    return run_dramatiq(argv)
