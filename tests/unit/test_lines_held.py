"""Held log lines: a batch's outcome lines leave in one write, whole, in order, each one JSON line."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shared.logs import _StderrHandler, configure_logging, lines_held


class _CountingStream:
    """Stands in for Dramatiq's log pipe: counts the writes, keeps what was written."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in "".join(self.writes).splitlines()]


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[_CountingStream]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = _CountingStream()
    configure_logging(level="INFO", json=True)
    # The handler writes to whatever sys.stderr is (Dramatiq's pipe in a worker process); pytest
    # swaps sys.stderr for each phase of a test, so the handler is pointed at the stand-in instead.
    monkeypatch.setattr(_StderrHandler, "stream", property(lambda self: stream, lambda self, value: None))
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_lines_logged_inside_the_block_leave_in_one_write_in_order(pipe: _CountingStream) -> None:
    log = logging.getLogger("circulate.messages")
    with lines_held():
        for number in range(16):
            log.info("message succeeded", extra={"attempt": number})
        assert pipe.writes == []  # nothing leaves before the block ends
    assert len(pipe.writes) == 1
    assert [line["attempt"] for line in pipe.lines()] == list(range(16))
    assert all(line["event"] == "message succeeded" for line in pipe.lines())


def test_outside_the_block_each_line_is_written_at_once(pipe: _CountingStream) -> None:
    log = logging.getLogger("circulate.messages")
    log.info("one")
    log.info("two")
    assert len(pipe.writes) == 2


def test_another_threads_lines_are_not_held(pipe: _CountingStream) -> None:
    log = logging.getLogger("circulate.messages")
    with lines_held():
        log.info("held")
        other = threading.Thread(target=lambda: log.info("not held"))
        other.start()
        other.join()
        assert [line["event"] for line in pipe.lines()] == ["not held"]
    assert [line["event"] for line in pipe.lines()] == ["not held", "held"]


def test_nested_blocks_write_when_the_outermost_ends_and_an_error_still_writes(pipe: _CountingStream) -> None:
    log = logging.getLogger("circulate.messages")
    with pytest.raises(RuntimeError), lines_held():
        log.info("first")
        with lines_held():
            log.info("second")
        assert pipe.writes == []
        raise RuntimeError("the batch's ack loop failed")
    assert [line["event"] for line in pipe.lines()] == ["first", "second"]
    assert len(pipe.writes) == 1


def test_records_below_the_level_are_not_held(pipe: _CountingStream) -> None:
    log = logging.getLogger("circulate.messages")
    with lines_held():
        log.debug("quiet")
        log.warning("loud")
    assert [line["event"] for line in pipe.lines()] == ["loud"]
