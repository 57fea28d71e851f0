"""A worker process killed with SIGKILL is replaced alone; its `circulate worker` keeps consuming.

Dramatiq's main process stops its whole group when one worker process dies; under a kill storm
that stopped consumption altogether (docs/operations/reliability.md). `workers.worker_restarts`
runs each worker process under a keeper that starts another when it is killed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.processes import circulate, count_rows
from tests.fixtures.services import wait_until
from workers.harness.chaos.faults import worker_processes

pytestmark = pytest.mark.timeout(120)


def test_a_killed_worker_process_is_replaced_and_one_whose_keeper_dies_goes_with_it(
    settings, broker, runtime, tmp_path
):
    log = tmp_path / "worker.log"
    # Given a `circulate worker` with two worker processes, both up (one boot for both checks:
    # a worker process boots in 10-15 s on a loaded machine)
    with circulate(
        settings, "worker", "--processes", "2", "--threads", "2", "--queues", "fulfilment", log=log
    ) as group:
        pids = _waited(lambda: _both(group.pid), group.pid, log, timeout=60)
        # When one of them is SIGKILLed
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        # Then another takes its place and the group's main process never exits
        replaced = _waited(lambda: _replaced(group.pid, pids), group.pid, log, timeout=60)
        assert victim not in replaced
        assert group.poll() is None, log.read_text()
        # And the group still consumes
        _send_order(broker)
        wait_until(lambda: count_rows(runtime, Order) == 1, timeout=30)
        assert group.poll() is None
        assert "killed by SIGKILL; starting another" in log.read_text()
        # When a keeper itself is SIGKILLed (the group then stops, as Dramatiq does)
        worker = replaced[1]
        os.kill(_parent(worker), signal.SIGKILL)
        # Then its worker process goes with it, rather than consuming on outside any group
        wait_until(lambda: not _alive(worker), timeout=15)


def _waited(predicate: Callable[[], Any], main_pid: int, log: Path, *, timeout: float) -> Any:
    """`wait_until`, failing with the group's processes and log: what a CI failure needs."""
    try:
        return wait_until(predicate, timeout=timeout)
    except AssertionError as error:
        tail = log.read_text(errors="replace")[-6000:]
        raise AssertionError(f"{error}\n{_tree(main_pid)}\n{tail}") from None


def _tree(pid: int, depth: int = 0) -> str:
    """`pid` and its descendants, one per line: pid, state, wait channel, command line."""
    base = Path(f"/proc/{pid}")
    try:
        state = (base / "stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = (base / "wchan").read_text()
        command = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        children = (base / "task" / str(pid) / "children").read_text().split()
    except OSError:
        return f"{'  ' * depth}{pid} gone"
    lines = [f"{'  ' * depth}{pid} {state} {wchan} {command}"]
    lines.extend(_tree(int(child), depth + 1) for child in children)
    return "\n".join(lines)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _both(main_pid: int) -> list[int] | None:
    pids = worker_processes(main_pid, 2)
    return pids if len(pids) == 2 else None


def _replaced(main_pid: int, before: list[int]) -> list[int] | None:
    now = worker_processes(main_pid, 2)
    return now if len(now) == 2 and now != before else None


def _send_order(broker) -> None:
    payload = place_order()
    broker.get_actor("fulfilment.place_order").send_with_options(
        kwargs=message_kwargs(payload, envelope_for(payload))
    )
