"""A keeper that gets SIGTERM again and again, fast, still stops: its signal handler takes no lock.

The process group of a `circulate worker` gets SIGTERM from whoever stops it and once more from
Dramatiq's main process; a keeper whose handler set a `threading.Event` could be interrupted by
the second signal inside that `set`, run the handler again, and wait for the Event's lock forever
(in the `make test` run that found it), or die of an error raised in the handler (here, with the
signals a tenth of a millisecond apart, every time).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import pytest

from workers.worker_restarts import StopRequest, keep

pytestmark = pytest.mark.timeout(60)


def _ignores_sigterm_for(seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def _keeper(seconds: float) -> None:
    sys.exit(keep(_ignores_sigterm_for, [seconds]))


def test_a_keeper_hammered_with_sigterm_still_returns_when_its_child_ends() -> None:
    keeper = multiprocessing.get_context("fork").Process(target=_keeper, args=(3.0,))
    keeper.start()
    time.sleep(0.5)  # its child is running and ignores SIGTERM
    assert keeper.pid is not None
    # Spaced a little, so that most arrive one by one while the handler of the last may be running.
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        os.kill(keeper.pid, signal.SIGTERM)
        time.sleep(0.0001)
    keeper.join(timeout=20)
    hung = keeper.is_alive()
    if hung:
        keeper.kill()
        keeper.join()
    assert not hung, "the keeper hung in its own signal handler"
    assert keeper.exitcode == 0


def test_a_stop_request_cuts_the_wait_short() -> None:
    stop = StopRequest()
    started = time.monotonic()
    assert stop.wait(0.1) is False
    stop.request()
    assert stop.wait(30.0) is True
    assert time.monotonic() - started < 5.0
