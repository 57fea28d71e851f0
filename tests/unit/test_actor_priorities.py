"""Actor priorities: the order's own flow first-come first-served, notifications after it.

Dramatiq's priority orders the messages a worker process has already taken off its queues (a
lower number runs first). An order is confirmed once the ledger has captured its payment
(place_order -> ledger.capture_payment -> fulfilment.record_payment), and its label follows;
with the ledger at a lower priority than fulfilment and shipping, capture_payment waited behind
every other message of the flow a process held: at 50 orders/s its queue wait was 51 / 189 ms
(p50 / p95) against 26 / 60 ms for the others (docs/development/benchmarks.md, eighth round).
"""

from __future__ import annotations

from tasks.registry import ACTORS

#: Every actor an order's fulfilment waits on, from the API's accept to its label and payout.
ORDER_FLOW = ("fulfilment", "ledger", "shipping")


def _priority(spec) -> int:
    return int(spec.options.get("priority", 0))


def test_the_order_flow_shares_one_priority():
    priorities = {spec.name: _priority(spec) for spec in ACTORS if spec.name.split(".")[0] in ORDER_FLOW}
    assert set(priorities.values()) == {0}, priorities


def test_notifications_go_after_the_order_flow():
    notifications = [spec for spec in ACTORS if spec.name.startswith("notifications.")]
    assert notifications
    assert all(_priority(spec) > 0 for spec in notifications), notifications
