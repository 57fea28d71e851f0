"""Actor priorities: an order's first hop first, then the rest of its flow, then notifications.

Dramatiq's priority orders the messages a worker process has already taken off its queues (a
lower number runs first). An order is confirmed by `fulfilment.place_order`, and its label
follows through the ledger's capture and shipping. With the ledger at a lower priority than
fulfilment and shipping, capture_payment waited behind every other message of the flow a
process held: at 50 orders/s its queue wait was 51 / 189 ms (p50 / p95) against 26 / 60 ms for
the others. With place_order ahead of the rest, `confirmed` p95 at 50 orders/s went from 85 /
104 / 73 ms to 64 / 59 / 58 in three pairs, and the label's p95 fell too (it starts at the same
hop) (docs/development/benchmarks.md, eighth round).
"""

from __future__ import annotations

from tasks.registry import ACTORS

#: Every actor an order's fulfilment waits on, from the API's accept to its label and payout.
ORDER_FLOW = ("fulfilment", "ledger", "shipping")


def _priority(spec) -> int:
    return int(spec.options.get("priority", 0))


FIRST_HOP = "fulfilment.place_order"


def test_an_orders_first_hop_runs_before_the_rest_of_its_flow():
    flow = [spec for spec in ACTORS if spec.name.split(".")[0] in ORDER_FLOW and spec.name != FIRST_HOP]
    (first,) = [spec for spec in ACTORS if spec.name == FIRST_HOP]
    assert all(_priority(first) < _priority(spec) for spec in flow), [(s.name, _priority(s)) for s in flow]


def test_the_rest_of_the_order_flow_shares_one_priority():
    priorities = {
        spec.name: _priority(spec)
        for spec in ACTORS
        if spec.name.split(".")[0] in ORDER_FLOW and spec.name != FIRST_HOP
    }
    assert set(priorities.values()) == {0}, priorities


def test_notifications_go_after_the_order_flow():
    notifications = [spec for spec in ACTORS if spec.name.startswith("notifications.")]
    assert notifications
    assert all(_priority(spec) > 0 for spec in notifications), notifications
