"""The demo's invariant that no order ships unpaid, on hand-made facts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.demo.facts import Facts, Transition
from workers.demo.invariants import check_all, no_shipped_order_without_a_booked_capture

AT = datetime(2026, 11, 28, tzinfo=UTC)


def _facts(transitions: list[tuple[str, str | None, str]], captures: dict[str, int]) -> Facts:
    states = {order: to for order, _, to in transitions}
    sandbox: dict[str, Any] = {"labels_purchased": 0, "labels_voided": 0, "pushes": 0}
    return Facts(
        orders_by_state={}, listings_by_order={}, states_by_order=states,
        transitions=[Transition(order, before, after, AT) for order, before, after in transitions],
        labels_by_status={}, ledger={"ok": True, "totals": {}, "violations": []},
        captures_per_order=captures, notifications=[], processed_messages=0, duplicates_suppressed=0,
        dead_letters=[], sandbox=sandbox, emails_received=[],
    )  # fmt: skip


SHIPPED = [
    ("o-1", "placed", "confirmed"),
    ("o-1", "confirmed", "label_purchased"),
    ("o-1", "label_purchased", "shipped"),
]


def test_a_shipped_order_without_a_booked_capture_breaks_the_promise() -> None:
    check = no_shipped_order_without_a_booked_capture(_facts(SHIPPED, captures={}))
    assert not check.ok
    assert "o-1" in check.detail


def test_a_shipped_order_with_its_capture_booked_keeps_it() -> None:
    assert no_shipped_order_without_a_booked_capture(_facts(SHIPPED, captures={"o-1": 1})).ok


def test_orders_that_never_shipped_need_no_capture_for_this_check() -> None:
    refused = [("o-2", None, "placed"), ("o-2", "placed", "needs_attention")]
    assert no_shipped_order_without_a_booked_capture(_facts(refused, captures={})).ok


def test_every_demo_run_checks_it() -> None:
    names = {check.name for check in check_all(_facts(SHIPPED, captures={}), planned_orders=1)}
    assert "no_shipped_order_without_a_booked_capture" in names
