"""Trace and span ids: well formed, never all zeros, and different in every forked worker process."""

from __future__ import annotations

import os

from shared.tracing import _TRACEPARENT, child_of, new_traceparent


def test_a_new_trace_and_its_children_are_well_formed_and_share_the_trace_id() -> None:
    for _ in range(2000):
        parent = new_traceparent()
        child = child_of(parent)
        assert _TRACEPARENT.match(parent) and _TRACEPARENT.match(child)
        assert child.split("-")[1] == parent.split("-")[1]
        assert child.split("-")[2] != parent.split("-")[2]
        assert set(parent.split("-")[1]) != {"0"} and set(child.split("-")[2]) != {"0"}


def test_forked_processes_draw_different_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a worker process forked by Dramatiq would draw first
        os.write(write, new_traceparent().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    in_child = os.read(read, 200).decode()
    os.close(read)
    assert in_child != new_traceparent()
