"""The report as text for a terminal: the same numbers as the JSON, one topic per line.

Kept apart from `report` so that the JSON contract and its presentation change independently.
"""

from __future__ import annotations

from typing import Any

from shared.money import Money

_WIDTH = 15


def render_text(report: dict[str, Any]) -> str:
    verdict = "PASSED" if report["ok"] else "FAILED"
    s = report["scenario"]
    lines = [f"Circulate demo: {s['orders']} orders, seed {s['seed']}: {verdict}", ""]

    def add(title: str, text: str) -> None:
        lines.append(f"{title:<{_WIDTH}}{text}")

    add(
        "Scenario",
        f"{s['double_buys']} double-buys, {s['cancellations_early']}+{s['cancellations_after_label']} "
        f"cancellations (early+after label), {s['invalid_addresses']} invalid addresses, "
        f"{s['http_replays']} HTTP replays, {s['resends_other_key']} resends under another key, "
        f"{s['opt_outs']} opt-outs, {s.get('refusals', 0)} requests the API must refuse",
    )
    add("Orders", " · ".join(f"{state} {n}" for state, n in report["orders_by_state"].items()) or "none")
    labels, carrier = report["labels"], report["labels"]["carrier"]
    add(
        "Labels",
        f"bought {labels['bought']}, voided {labels['voided']} "
        f"(carrier: bought {carrier['labels_purchased']}, voided {carrier['labels_voided']}, "
        f"{carrier['purchase_requests']} requests incl. faults and retries)",
    )
    for currency, accounts in report["ledger"]["trial_balance"].items():
        total = sum(accounts.values())
        shown = ", ".join(
            f"{account} {_money(amount, currency).split(' ', 1)[-1]}" for account, amount in accounts.items()
        )
        add(f"Ledger {currency}", f"sum {total} | {shown}")
    revenue = report["ledger"]["revenue_minor"]
    add("Revenue", " · ".join(_money(amount, cur) for cur, amount in revenue.items()) or "none")
    lines += _notifications(report["notifications"])
    dup = report["duplicates_suppressed"]
    add(
        "Duplicates",
        f"{dup['total']} suppressed ({dup['by_workers']} by workers, {dup['api_replays']} API replays)",
    )
    dead = report["dead_letters"]
    add("Dead letters", "none" if not dead else "")
    lines += [
        f"{'':<{_WIDTH}}{d['n']:>4} {d['actor_name']} {d['exception_type']}: {d['example'][:70]}"
        for d in dead
    ]
    t, lat = report["throughput"], report["latency_s"]
    add(
        "Throughput",
        f"{t['elapsed_s']} s (orders posted in {t['posting_s']} s), {t['orders_per_s']} orders/s, "
        f"{t['messages_processed']} messages ({t['messages_per_s']}/s)",
    )
    add("Latency", f"p50 {lat['p50']} s, p95 {lat['p95']} s, max {lat['max']} s over {lat['orders']} orders")
    lines.append(f"{'':<{_WIDTH}}({lat['definition']})")
    lines += _problems(report)
    lines += ["", "Invariants"]
    for name, ok in report["invariants"].items():
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {name:<28} {report['invariant_details'][name]}")
    return "\n".join(lines)


def _notifications(section: dict[str, Any]) -> list[str]:
    lines = [f"{'Notifications':<{_WIDTH}}{'template':<18}{'email':<28}push"]
    for template, channels in section["by_template"].items():
        cells = [
            ", ".join(f"{n} {status}" for status, n in channels.get(ch, {}).items())
            for ch in ("email", "push")
        ]
        lines.append(f"{'':<{_WIDTH}}{template:<18}{cells[0]:<28}{cells[1]}")
    lines.append(
        f"{'Mailbox':<{_WIDTH}}{section['emails_received']} emails received, {section['unique_message_ids']} "
        f"unique Message-IDs, {section['duplicate_deliveries']} duplicate deliveries; "
        f"{section['pushes_at_gateway']} pushes at the gateway"
    )
    return lines


def _problems(report: dict[str, Any]) -> list[str]:
    lines = []
    if report["timed_out"]:
        stuck = report["stuck"]
        lines.append(
            f"{'Timed out':<{_WIDTH}}the driver gave up; {len(stuck)} orders still not final after settling"
        )
        lines += [f"{'':<{_WIDTH}}{o['order_id']} {o['state']:<16} planned: {o['plan']}" for o in stuck[:20]]
    errors = report["driver"]["errors"]
    if errors:
        lines.append(f"{'Driver errors':<{_WIDTH}}{len(errors)}")
        lines += [f"{'':<{_WIDTH}}{error[:150]}" for error in errors[:10]]
    return lines


def _money(amount_minor: int, currency: str) -> str:
    try:
        return Money(amount_minor, currency).format()
    except ValueError:
        return f"{currency} {amount_minor} (minor units)"
