"""Lines below WARNING wait a few milliseconds and leave together (`shared.line_buffer`); a warning
writes them and itself at once, and a process that exits normally writes what waits."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.logs import configure_logging, lines_held
from tests.fixtures.logs import logging_restored

ROOT = Path(__file__).resolve().parents[2]


class Written:
    """What the handler has written to stderr so far (pytest's capture of it)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys, self._text = capsys, ""

    def events(self) -> list[str]:
        self._text += self._capsys.readouterr().err
        return [line.split('"event": "', 1)[1].split('"', 1)[0] for line in self._text.splitlines()]

    def eventually(self, count: int, within_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + within_s
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events()


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Written]:
    """The handler's lines, with the process's logging put back as it was afterwards."""
    with logging_restored():
        yield Written(capsys)


def test_lines_below_warning_wait_and_leave_together(stderr: Written) -> None:
    configure_logging(level="INFO", json=True, buffer_s=0.2)
    log = logging.getLogger("tests.line_buffer")
    log.info("first")
    log.info("second")
    assert stderr.events() == []  # held for up to 0.2 s
    assert stderr.eventually(2) == ["first", "second"]


def test_a_warning_writes_the_waiting_lines_then_itself_at_once(stderr: Written) -> None:
    configure_logging(level="INFO", json=True, buffer_s=60)
    log = logging.getLogger("tests.line_buffer")
    log.info("before")
    log.warning("the warning")
    assert stderr.events() == ["before", "the warning"]


def test_lines_held_by_a_batch_come_after_the_waiting_ones(stderr: Written) -> None:
    configure_logging(level="INFO", json=True, buffer_s=60)
    log = logging.getLogger("tests.line_buffer")
    log.info("waiting")
    with lines_held():
        log.info("held")
    assert stderr.events() == ["waiting", "held"]


def test_without_a_buffer_every_line_leaves_at_once(stderr: Written) -> None:
    configure_logging(level="INFO", json=True)
    logging.getLogger("tests.line_buffer").info("at once")
    assert stderr.events() == ["at once"]


@pytest.mark.parametrize("where", ["the process itself", "a forked multiprocessing child"])
def test_a_process_that_exits_normally_writes_what_waits(where: str) -> None:
    """A Dramatiq or uvicorn child leaves through `os._exit` after multiprocessing's exit hooks:
    the waiting lines must be written by those, not only by `atexit`."""
    script = textwrap.dedent(
        """
        import logging, multiprocessing, sys
        from shared.logs import configure_logging

        def log_and_leave():
            configure_logging(level="INFO", json=True, buffer_s=60)
            logging.getLogger("tests.line_buffer").info("written before the exit")

        if __name__ == "__main__":
            if sys.argv[1] == "child":
                process = multiprocessing.get_context("fork").Process(target=log_and_leave)
                process.start()
                process.join()
                sys.exit(process.exitcode)
            log_and_leave()
        """
    )
    mode = "child" if "child" in where else "self"
    done = subprocess.run(
        [sys.executable, "-c", script, mode], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "written before the exit" in done.stderr


def test_a_forked_child_does_not_write_its_parents_waiting_lines_again() -> None:
    """Dramatiq and uvicorn fork their worker processes from a process that logs too: a line the
    parent holds at the fork is the parent's to write, once."""
    script = textwrap.dedent(
        """
        import logging, multiprocessing
        from shared.logs import configure_logging

        def child():
            logging.getLogger("tests.line_buffer").info("from the child")

        if __name__ == "__main__":
            configure_logging(level="INFO", json=True, buffer_s=60)
            logging.getLogger("tests.line_buffer").info("from the parent, before the fork")
            process = multiprocessing.get_context("fork").Process(target=child)
            process.start()
            process.join()
        """
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("from the parent, before the fork") == 1, done.stderr
    assert done.stderr.count("from the child") == 1, done.stderr
