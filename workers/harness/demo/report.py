"""The run's report: one dict (written as JSON with --json) and its plain-text rendering.

The dict is the contract (tests and CI read `invariants`); the text is for a person at a
terminal and shows the same numbers. Seller accounts are summed into `seller:*:pending` and
`seller:*:available` in the trial balance, which would otherwise list two lines per seller.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from workers.harness.demo.driver import DriveResult
from workers.harness.demo.facts import Facts
from workers.harness.demo.invariants import Check
from workers.harness.demo.scenario import FINAL_STATES, Scenario

#: The automated part of an order's life: the demo's own pace (shipping events, the hold) excluded.
SETTLED_STATES = frozenset({"label_purchased", "needs_attention", "cancelled", "completed"})
LATENCY_DEFINITION = (
    "per order, from its first order_transitions row (the worker recorded it as placed) to its first "
    "transition into label_purchased, needs_attention, cancelled or completed: what the platform "
    "does on its own, before carrier events and the completion hold"
)


def build_report(scenario: Scenario, drive: DriveResult, facts: Facts, checks: list[Check]) -> dict[str, Any]:
    elapsed = max(drive.elapsed_s, 1e-9)
    replays = drive.counts["http_replays"]
    emails = facts.emails_received
    return {
        "ok": all(c.ok for c in checks),
        "invariants": {c.name: c.ok for c in checks},
        "invariant_details": {c.name: c.detail for c in checks},
        "scenario": {"seed": scenario.seed, **scenario.planned()},
        "orders_by_state": facts.orders_by_state,
        "labels": {
            "bought": sum(facts.labels_by_status.values()),
            "voided": facts.labels_by_status.get("voided", 0),
            "carrier": {
                k: facts.sandbox.get(k, 0) for k in ("labels_purchased", "labels_voided", "purchase_requests")
            },
        },
        "ledger": {"trial_balance": trial_balance(facts), "revenue_minor": facts.ledger["revenue"]},
        "notifications": {
            "by_template": notifications_by_template(facts),
            "emails_received": len(emails),
            "unique_message_ids": len(set(emails)),
            "duplicate_deliveries": len(emails) - len(set(emails)),
            "pushes_at_gateway": facts.sandbox.get("pushes", 0),
        },
        "duplicates_suppressed": {
            "by_workers": facts.duplicates_suppressed,
            "api_replays": replays,
            "total": facts.duplicates_suppressed + replays,
        },
        "dead_letters": facts.dead_letters,
        "throughput": {
            "elapsed_s": round(drive.elapsed_s, 2),
            "posting_s": round(drive.posting_s, 2),
            "orders_per_s": round(len(scenario.orders) / elapsed, 2),
            "messages_processed": facts.processed_messages,
            "messages_per_s": round(facts.processed_messages / elapsed, 1),
        },
        "latency_s": {"definition": LATENCY_DEFINITION, **latency(facts)},
        "driver": {"requests": dict(sorted(drive.counts.items())), "errors": drive.errors[:50]},
        "timed_out": drive.timed_out,
        "stuck": still_stuck(drive, facts)[:50],
    }


def still_stuck(drive: DriveResult, facts: Facts) -> list[dict[str, str]]:
    """The orders the driver left unfinished that are still not final after settling, as audited."""
    states = facts.states_by_order
    return [
        {**order, "state": states.get(order["order_id"], "missing")}
        for order in drive.stuck
        if states.get(order["order_id"], "missing") not in FINAL_STATES
    ]


def trial_balance(facts: Facts) -> dict[str, dict[str, int]]:
    balances: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for currency, accounts in facts.ledger["balances"].items():
        for account, balance in accounts.items():
            shown = "seller:*:" + account.rsplit(":", 1)[-1] if account.startswith("seller:") else account
            balances[currency][shown] += int(balance)
    return {cur: dict(sorted(accounts.items())) for cur, accounts in sorted(balances.items())}


def notifications_by_template(facts: Facts) -> dict[str, dict[str, dict[str, int]]]:
    table: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for n in facts.notifications:
        table[n.template][n.channel][n.status] += 1
    return {
        t: {ch: dict(statuses) for ch, statuses in sorted(chs.items())} for t, chs in sorted(table.items())
    }


def latency(facts: Facts) -> dict[str, float | int]:
    started: dict[str, float] = {}
    settled: dict[str, float] = {}
    for t in facts.transitions:
        started.setdefault(t.order_id, t.at.timestamp())
        if t.to_state in SETTLED_STATES:
            settled.setdefault(t.order_id, t.at.timestamp())
    samples = sorted(settled[o] - started[o] for o in settled)
    return {
        "orders": len(samples),
        "p50": round(percentile(samples, 50), 3),
        "p95": round(percentile(samples, 95), 3),
        "max": round(samples[-1], 3) if samples else 0.0,
    }


def percentile(sorted_samples: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that really occurred, no interpolation."""
    if not sorted_samples:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]
