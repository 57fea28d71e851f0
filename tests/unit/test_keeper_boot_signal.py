"""A worker process killed while it signals that it has booted does not stall its keeper.

Dramatiq hands each worker process a `multiprocessing.Event` to set once its consumers run. An
Event's `set` holds the Event's lock, shared by every process, while it waits for the waiting
main process to wake; a worker killed in that moment left the lock held for good. The keeper,
which asked the same Event whether its dead child had booted, then waited for that lock forever
and never started another worker process (found by `test_worker_restarts` under load). Now the
child signals its keeper through a pipe of its own, and the keeper sets Dramatiq's Event itself.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workers.worker_restarts import keep

pytestmark = pytest.mark.timeout(60)
READY_AT = 1


def _dies_while_signalling_its_boot(starts: Path, booted: Any) -> None:
    with starts.open("a") as log:
        log.write(f"{os.getpid()}\n")
    # In this child only: an Event's `set` calls `notify_all` holding the Event's shared lock;
    # dying there is the worst moment a kill can land.
    multiprocessing.synchronize.Condition.notify_all = lambda self: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[method-assign]
    booted.set()
    os.kill(os.getpid(), signal.SIGKILL)  # killed just after it booted, then


def _keeper(starts: Path, dramatiq_event: Any) -> None:
    sys.exit(keep(_dies_while_signalling_its_boot, [starts, dramatiq_event], ready_at=READY_AT))


def test_a_worker_killed_while_it_signals_its_boot_is_replaced_at_once(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    starts.touch()
    context = multiprocessing.get_context("fork")
    dramatiq_event = context.Event()
    keeper = context.Process(target=_keeper, args=(starts, dramatiq_event))
    keeper.start()
    try:
        deadline = time.monotonic() + 20
        while len(starts.read_text().split()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = len(starts.read_text().split())
    finally:
        keeper.kill()
        keeper.join()
    assert started >= 5, f"the keeper started {started} worker process(es), then stalled"
    # Dramatiq's main process, which waits for the Event, was told the worker had booted.
    assert dramatiq_event.wait(timeout=5)
