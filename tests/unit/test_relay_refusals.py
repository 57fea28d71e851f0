"""A relay lane whose publishes the broker refuses backs off, then gives its channel up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shared.config import Settings
from shared.relay import PassResult
from workers import relay
from workers.relay import REFUSED_PASSES_BEFORE_RECONNECT


def _run_lane(
    monkeypatch: pytest.MonkeyPatch, passes: Iterator[PassResult]
) -> tuple[list[float], BaseException | None]:
    """Run one lane over `passes`; the waits it slept after refused passes, and what it raised."""
    waits: list[float] = []
    stop = asyncio.Event()

    async def relay_once(conn: object, channel: object, *, limit: int) -> PassResult:
        try:
            return next(passes)
        except StopIteration:
            stop.set()
            return PassResult(0, 0)

    async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
        waits.append(seconds)

    async def wait_for_wake(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
        return None

    monkeypatch.setattr(relay, "relay_once", relay_once)
    monkeypatch.setattr(relay, "_sleep_or_stop", sleep_or_stop)
    monkeypatch.setattr(relay, "_wait_for_wake", wait_for_wake)
    monkeypatch.setattr(relay, "record_relay_pass", lambda published: None)
    lane = relay._lane(
        None, None, Settings(), stop, asyncio.Event(),  # type: ignore[arg-type]
        poll_s=0.05, prunes=False, beat=lambda: None,
    )  # fmt: skip
    try:
        asyncio.run(lane)
    except ConnectionError as error:
        return waits, error
    return waits, None


def test_a_refused_pass_is_tried_again_after_a_wait_not_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    waits, raised = _run_lane(monkeypatch, iter([PassResult(3, 0), PassResult(3, 3)]))
    assert raised is None
    assert len(waits) == 1
    assert 0 <= waits[0] <= relay.REFUSED_FIRST_WAIT_S


def test_refusals_in_a_row_end_in_a_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = iter([PassResult(3, 0)] * (REFUSED_PASSES_BEFORE_RECONNECT + 5))
    waits, raised = _run_lane(monkeypatch, refused)
    assert isinstance(raised, ConnectionError)
    assert len(waits) == REFUSED_PASSES_BEFORE_RECONNECT
    # The waits' bounds double (each wait is drawn below its bound).
    assert all(w <= relay.REFUSED_FIRST_WAIT_S * 2**i for i, w in enumerate(waits))


def test_a_pass_that_publishes_anything_starts_the_count_again(monkeypatch: pytest.MonkeyPatch) -> None:
    almost = [PassResult(3, 0)] * REFUSED_PASSES_BEFORE_RECONNECT
    passes = iter([*almost, PassResult(3, 1), *almost])
    waits, raised = _run_lane(monkeypatch, passes)
    assert raised is None
    assert len(waits) == 2 * REFUSED_PASSES_BEFORE_RECONNECT


def test_an_empty_pass_is_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    waits, raised = _run_lane(monkeypatch, iter([PassResult(0, 0)] * 20))
    assert raised is None
    assert waits == []
