"""The promises the platform makes, checked against what a run left behind.

Each check is a pure function of `Facts` returning a `Check`: a name (the key in the JSON report),
whether it holds, and what broke if not, so a red run says where to look. The demo exits 0 only
when every check holds.

Duplicate email deliveries (one Message-ID received twice) are reported but do not fail a check:
a worker that dies between the SMTP server's 250 and its own commit legitimately sends again, with
the same Message-ID, which receivers use to show the message once (tasks.notifications.identity).
What must hold is that the set of Message-IDs received is exactly the set recorded as sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.harness.demo.facts import Facts
from workers.harness.demo.scenario import FINAL_STATES

CHANNELS = ("email", "push")
DONE_STATUSES = frozenset({"sent", "skipped_opt_out"})

#: Reaching a state owes these (template, recipient role) notifications, on every channel.
NOTIFICATIONS_FOR_STATE: dict[str, tuple[tuple[str, str], ...]] = {
    "confirmed": (("order_confirmed", "buyer"),),
    "label_purchased": (("item_sold", "seller"),),
    "needs_attention": (("needs_attention", "seller"),),
    "shipped": (("shipped", "buyer"),),
    "delivered": (("delivered", "buyer"),),
    "completed": (("funds_released", "seller"),),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Refused:
    """The requests the API had to refuse: how each was answered, and the orders that must not exist."""

    planned: int
    #: Each refusal's description -> None if answered as documented, else what the API said.
    answers: Mapping[str, str | None] = field(default_factory=dict)
    never_stored: frozenset[str] = frozenset()


def check_all(facts: Facts, *, planned_orders: int, refused: Refused | None = None) -> list[Check]:
    edge = [requests_refused_at_the_edge(facts, refused)] if refused is not None else []
    return [
        *edge,
        all_orders_final(facts, planned_orders),
        one_label_per_shipped_order(facts),
        no_shipped_order_without_a_booked_capture(facts),
        ledger_balanced(facts),
        no_duplicate_effects(facts),
        notifications_complete(facts),
    ]


def requests_refused_at_the_edge(facts: Facts, refused: Refused) -> Check:
    """What a worker would refuse is refused by the API, as documented, and never stored."""
    wrong = {what: problem for what, problem in refused.answers.items() if problem}
    unanswered = refused.planned - len(refused.answers)
    stored = sorted(refused.never_stored & facts.states_by_order.keys())
    ok = not wrong and not unanswered and not stored
    detail = (
        f"{len(refused.answers) - len(wrong)}/{refused.planned} refused as documented; "
        f"unanswered {unanswered}; refused orders stored anyway {len(stored)}"
    )
    if wrong:
        detail += "; " + "; ".join(f"{what}: {problem}" for what, problem in list(wrong.items())[:3])
    return Check("requests_refused_at_the_edge", ok, detail)


def all_orders_final(facts: Facts, planned_orders: int) -> Check:
    total = sum(facts.orders_by_state.values())
    open_ = {state: n for state, n in facts.orders_by_state.items() if state not in FINAL_STATES}
    ok = total == planned_orders and not open_
    return Check("all_orders_final", ok, f"{total}/{planned_orders} orders recorded; not final: {open_ or 0}")


def one_label_per_shipped_order(facts: Facts) -> Check:
    shipped = len({t.order_id for t in facts.transitions if t.to_state == "shipped"})
    kept, voided = facts.labels_by_status.get("purchased", 0), facts.labels_by_status.get("voided", 0)
    bought = sum(facts.labels_by_status.values())
    at_carrier, voided_at_carrier = facts.sandbox["labels_purchased"], facts.sandbox["labels_voided"]
    ok = kept == shipped and bought == at_carrier and voided == voided_at_carrier
    detail = (
        f"labels kept {kept} vs orders shipped {shipped}; bought {bought} vs carrier {at_carrier}; "
        f"voided {voided} vs carrier {voided_at_carrier}"
    )
    return Check("one_label_per_shipped_order", ok, detail)


def no_shipped_order_without_a_booked_capture(facts: Facts) -> Check:
    """The core promise that no order ships unpaid: every shipped order's payment is in the journal."""
    shipped = {t.order_id for t in facts.transitions if t.to_state == "shipped"}
    unpaid = sorted(order for order in shipped if not facts.captures_per_order.get(order))
    examples = ", ".join(order[:8] for order in unpaid[:5])
    detail = f"{len(shipped) - len(unpaid)}/{len(shipped)} shipped orders have a booked capture"
    return Check(
        "no_shipped_order_without_a_booked_capture",
        not unpaid,
        detail + (f"; unpaid e.g. {examples}" if unpaid else ""),
    )


def ledger_balanced(facts: Facts) -> Check:
    """The ledger's own audit (tasks.ledger.reports): every currency sums to zero, no violation."""
    off = {currency: total for currency, total in facts.ledger["totals"].items() if total}
    violations = facts.ledger["violations"]
    ok = bool(facts.ledger["ok"]) and not off
    return Check("ledger_balanced", ok, f"currencies off: {off or 0}; violations: {violations[:3] or 0}")


def no_duplicate_effects(facts: Facts) -> Check:
    confirmed = {t.order_id for t in facts.transitions if t.to_state == "confirmed"}
    per_listing = Counter(facts.listings_by_order[o] for o in confirmed if o in facts.listings_by_order)
    moves = Counter((t.order_id, t.to_state) for t in facts.transitions if t.from_state != t.to_state)
    problems = {
        "listings_sold_twice": sum(n > 1 for n in per_listing.values()),
        "orders_captured_twice": sum(n > 1 for n in facts.captures_per_order.values()),
        "states_entered_twice": sum(n > 1 for n in moves.values()),
        "notification_keys_repeated": sum(
            n > 1 for n in Counter(n.dedupe_key for n in facts.notifications).values()
        ),
    }
    sent = {n.message_id for n in facts.notifications if n.channel == "email" and n.status == "sent"}
    received = set(facts.emails_received)
    problems["emails_sent_not_received"] = len(sent - received)
    problems["emails_received_not_sent"] = len(received - sent)
    pushes_sent = sum(n.channel == "push" and n.status == "sent" for n in facts.notifications)
    problems["pushes_recorded_vs_gateway"] = abs(pushes_sent - facts.sandbox.get("pushes", 0))
    failing = {name: n for name, n in problems.items() if n}
    return Check("no_duplicate_effects", not failing, f"problems: {failing or 0}")


def expected_notifications(facts: Facts) -> set[tuple[str, str, str, str]]:
    """(order, template, role, channel) owed by the states each order went through."""
    owed: set[tuple[str, str, str, str]] = set()
    for t in facts.transitions:
        pairs = NOTIFICATIONS_FOR_STATE.get(t.to_state, ())
        if t.to_state == "cancelled":
            # Lost the race for the item: only the buyer hears. A buyer's cancellation: both do.
            pairs = (("order_cancelled", "buyer"),)
            if t.from_state != "placed":
                pairs += (("order_cancelled", "seller"),)
        if t.from_state == t.to_state:
            continue
        owed.update((t.order_id, template, role, ch) for template, role in pairs for ch in CHANNELS)
    return owed


def notifications_complete(facts: Facts) -> Check:
    status = {(n.order_id, n.template, n.role, n.channel): n.status for n in facts.notifications}
    owed = expected_notifications(facts)
    missing = [key for key in sorted(owed) if status.get(key) not in DONE_STATUSES]
    detail = f"{len(owed) - len(missing)}/{len(owed)} owed notifications sent or skipped (opt-out)"
    if missing:
        examples = ", ".join(
            f"{o[:8]} {tpl}/{role}/{ch}={status.get((o, tpl, role, ch))}" for o, tpl, role, ch in missing[:5]
        )
        detail += f"; missing e.g. {examples}"
    return Check("notifications_complete", not missing, detail)
