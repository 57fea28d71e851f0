"""The demo's invariant that no order ships unpaid, on hand-made facts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.harness.demo.facts import Facts, Transition
from workers.harness.demo.invariants import (
    Refused,
    check_all,
    no_shipped_order_without_a_booked_capture,
    requests_refused_at_the_edge,
)

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


def test_a_refused_request_answered_otherwise_or_stored_anyway_fails_the_edge_check() -> None:
    facts = _facts([("o-3", None, "placed")], captures={})
    answers: dict[str, str | None] = {"an unknown market": None, "an amount beyond int64": "HTTP 202"}
    check = requests_refused_at_the_edge(facts, Refused(planned=2, answers=answers))
    assert not check.ok
    assert "an amount beyond int64: HTTP 202" in check.detail
    stored = Refused(planned=1, answers={"an unknown market": None}, never_stored=frozenset({"o-3"}))
    assert not requests_refused_at_the_edge(facts, stored).ok
    assert requests_refused_at_the_edge(facts, Refused(planned=1, answers={"an unknown market": None})).ok


def test_the_scenario_plans_one_refusal_of_each_documented_kind_the_same_for_the_same_seed() -> None:
    from workers.harness.demo.scenario import build_scenario

    scenario = build_scenario(100, seed=7, now=AT)
    assert {r.status for r in scenario.refusals} == {422, 409, 404}
    assert {r.field for r in scenario.refusals if r.status == 422} == {
        "currency", "market", "buyer.name", "seller.name", "placed_at", "item_price_minor",
    }  # fmt: skip
    assert len({r.order_id for r in scenario.refusals if r.after is None}) == 7
    assert scenario == build_scenario(100, seed=7, now=AT)
