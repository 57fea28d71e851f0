"""When the chaos stream's segments open: early enough that the last one still has traffic.

A 5,000-order run with the segments at 10-70 % and node loss fourth opened its crash-point
segment at 4,840 orders final: the worker's crash point never fired before the last order was
final, and the run failed without any fault in the platform.
"""

from __future__ import annotations

from workers.harness.chaos.stream import ORDER, segment_trigger


def test_every_segment_opens_by_half_the_stream() -> None:
    for orders in (300, 1000, 5000):
        triggers = [segment_trigger(orders, index) for index in range(len(ORDER))]
        assert triggers == sorted(triggers)
        assert triggers[-1] <= orders // 2


def test_the_longest_segment_comes_last_so_it_cannot_crowd_out_another() -> None:
    assert ORDER[-1] == "broker_node_loss"
    assert ORDER.index("crash_points") < ORDER.index("broker_node_loss")


def test_a_tiny_stream_still_waits_for_one_final_order() -> None:
    assert segment_trigger(3, 0) == 1
