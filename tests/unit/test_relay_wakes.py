"""The relay's wake-ups: one lane per notification, in turn, and none lost while a lane is busy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from workers.relay import wake_one_lane_each


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
