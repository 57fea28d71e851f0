"""Waiting for quiet before an audit: a platform that keeps making progress is waited for.

A long chaos stream ends with thousands of notifications still queued; the wait must last as
long as they drain and give up only when nothing moves (`stall_s`).
"""

from __future__ import annotations

import time
from itertools import count
from types import SimpleNamespace
from typing import Any

import pytest

from workers.harness.demo import settle


class FakeEngine:
    """Answers the activity query: one unpublished row forever, and a handled count from `handled`."""

    def __init__(self, handled: Any) -> None:
        self.handled = handled

    def connect(self) -> Any:
        engine = self

        class Connection:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute(self, _query: Any) -> Any:
                return SimpleNamespace(one=lambda: (1, engine.handled(), 0, 0))

        return Connection()


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settle, "queued_messages", lambda _settings: 0)


def test_a_busy_platform_that_makes_no_progress_is_given_up_on_after_the_stall() -> None:
    started = time.monotonic()
    quiet = settle.wait_until_quiet(FakeEngine(lambda: 7), None, timeout_s=30, stall_s=0.6)  # type: ignore[arg-type]
    assert quiet is False
    assert time.monotonic() - started < 10


def test_a_busy_platform_that_keeps_moving_is_waited_for_past_the_stall() -> None:
    handled = count()
    started = time.monotonic()
    quiet = settle.wait_until_quiet(FakeEngine(lambda: next(handled)), None, timeout_s=2.0, stall_s=0.6)  # type: ignore[arg-type]
    assert quiet is False  # still busy at the deadline, never given up on for a stall
    assert time.monotonic() - started >= 2.0
