"""The relay's wake-ups: one lane per notification, in turn, none lost while a lane is busy; and its polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shared.config import Settings
from workers.relay import LISTENING_EXTRA_LANE_POLL_S, lane_poll_s, wake_one_lane_each


async def _notifications(count: int) -> AsyncIterator[object]:
    for index in range(count):
        yield index


def _woken_after(notifications: int, lanes: int, *, already: frozenset[int] = frozenset()) -> list[bool]:
    async def run() -> list[bool]:
        wakes = [asyncio.Event() for _ in range(lanes)]
        for index in already:
            wakes[index].set()
        await wake_one_lane_each(_notifications(notifications), wakes)
        return [wake.is_set() for wake in wakes]

    return asyncio.run(run())


def test_one_notification_wakes_one_lane_not_all() -> None:
    assert _woken_after(1, lanes=3) == [True, False, False]


def test_notifications_wake_the_lanes_in_turn() -> None:
    assert _woken_after(2, lanes=3) == [True, True, False]
    assert _woken_after(3, lanes=3) == [True, True, True]


def test_a_busy_lane_keeps_its_wake_and_the_next_goes_to_an_idle_one() -> None:
    # Lane 0 has not taken its wake yet (busy publishing): the notification goes to lane 1.
    assert _woken_after(1, lanes=2, already=frozenset({0})) == [True, True]


def test_more_notifications_than_lanes_leave_every_lane_woken() -> None:
    assert _woken_after(10, lanes=2) == [True, True]


def test_while_listening_only_the_first_lane_polls_at_the_interval() -> None:
    settings = Settings(relay_poll_interval_ms=50)
    assert lane_poll_s(settings, 0, listening=True) == 0.05
    assert lane_poll_s(settings, 1, listening=True) == LISTENING_EXTRA_LANE_POLL_S
    # Without notifications every lane polls as configured.
    assert lane_poll_s(settings, 1, listening=False) == 0.05
    # A configured poll slower than the extra lanes' is kept.
    assert lane_poll_s(Settings(relay_poll_interval_ms=5000), 1, listening=True) == 5.0
