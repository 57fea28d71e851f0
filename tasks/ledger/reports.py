"""The trial balance: every account's balance per currency, and the journal's invariants checked.

Computed with aggregate queries rather than by loading the journal, because the journal only grows.
Run it in one REPEATABLE READ transaction (as `workers/ledger_cli.py` does) so that the balances and
the checks describe the same snapshot while workers keep posting.

The invariants scanned for, each of which the schema already prevents, so any hit means the schema
was bypassed (a restore, a manual fix, `session_replication_role = replica`):
- a transaction whose entries do not sum to zero in some currency;
- an entry whose transaction does not exist;
- a posting key used by more than one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.money import Money
from tasks.ledger.models import EntryRecord, TransactionRecord
from tasks.ledger.posting import BUYER_FEE_REVENUE, COMMISSION_REVENUE


@dataclass(frozen=True)
class TrialBalance:
    """`balances[currency][account]`: debit positive, credit negative, in minor units."""

    balances: dict[str, dict[str, int]]
    violations: list[str]

    @property
    def totals(self) -> dict[str, int]:
        """Sum of every balance per currency; zero in a sound journal."""
        return {currency: sum(accounts.values()) for currency, accounts in self.balances.items()}

    @property
    def revenue(self) -> dict[str, int]:
        """The marketplace's earnings per currency (commission and buyer fee, net of reversals)."""
        return {
            currency: -(accounts.get(COMMISSION_REVENUE, 0) + accounts.get(BUYER_FEE_REVENUE, 0))
            for currency, accounts in self.balances.items()
        }

    @property
    def ok(self) -> bool:
        return not self.violations and not any(self.totals.values())


def trial_balance_report(session: Session) -> TrialBalance:
    """Balances and violations of the whole journal, as `session`'s transaction sees it."""
    return TrialBalance(
        balances=_balances(session),
        violations=[*_unbalanced(session), *_orphans(session), *_duplicate_keys(session)],
    )


def render_text(report: TrialBalance) -> str:
    """An aligned debit/credit table per currency, then revenue, then the verdict."""
    rows = [("CURRENCY", "ACCOUNT", "DEBIT", "CREDIT")]
    for currency, accounts in report.balances.items():
        for account, balance in accounts.items():
            rows.append((currency, account, *_debit_credit(balance, currency)))
        debits = sum(b for b in accounts.values() if b > 0)
        credits = -sum(b for b in accounts.values() if b < 0)
        rows.append((currency, "total", _major(debits, currency), _major(credits, currency)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}".rstrip()
        for r in rows
    ]
    revenue = ", ".join(Money(minor, currency).format() for currency, minor in report.revenue.items())
    lines += ["", f"revenue: {revenue or 'none'}", *_verdict(report)]
    return "\n".join(lines)


def as_json(report: TrialBalance) -> dict[str, Any]:
    """The report in minor units, for scripts and alerts."""
    return {
        "ok": report.ok,
        "balances": report.balances,
        "totals": report.totals,
        "revenue": report.revenue,
        "violations": report.violations,
    }


def _balances(session: Session) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(EntryRecord.currency, EntryRecord.account, func.sum(EntryRecord.amount_minor))
        .group_by(EntryRecord.currency, EntryRecord.account)
        .order_by(EntryRecord.currency, EntryRecord.account)
    )
    balances: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for currency, account, total in rows:
        balances[currency][account] = int(total)
    return dict(balances)


def _unbalanced(session: Session) -> list[str]:
    total = func.sum(EntryRecord.amount_minor)
    rows = session.execute(
        select(TransactionRecord.posting_key, EntryRecord.currency, total)
        .join(EntryRecord, EntryRecord.transaction_id == TransactionRecord.id)
        .group_by(TransactionRecord.id, TransactionRecord.posting_key, EntryRecord.currency)
        .having(total != 0)
        .order_by(TransactionRecord.id, EntryRecord.currency)
    )
    off: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for key, currency, amount in rows:
        off[key][currency] = int(amount)
    return [f"{key}: unbalanced, entries sum to {amounts}" for key, amounts in off.items()]


def _orphans(session: Session) -> list[str]:
    rows = session.execute(
        select(EntryRecord)
        .outerjoin(TransactionRecord, EntryRecord.transaction_id == TransactionRecord.id)
        .where(TransactionRecord.id.is_(None))
        .order_by(EntryRecord.id)
    ).scalars()
    return [
        f"entry {e.id}: its transaction {e.transaction_id} does not exist "
        f"({e.account} {e.amount_minor} {e.currency})"
        for e in rows
    ]


def _duplicate_keys(session: Session) -> list[str]:
    rows = session.execute(
        select(
            TransactionRecord.posting_key,
            func.count(),
            func.count(TransactionRecord.content_hash.distinct()),
        )
        .group_by(TransactionRecord.posting_key)
        .having(func.count() > 1)
        .order_by(TransactionRecord.posting_key)
    )
    return [
        f"{key}: posted {count} times with {'different' if hashes > 1 else 'the same'} content"
        for key, count, hashes in rows
    ]


def _verdict(report: TrialBalance) -> list[str]:
    unbalanced = [c for c, total in report.totals.items() if total]
    if report.ok:
        return ["OK: every currency sums to zero and no invariant is violated"]
    lines = [f"FAILED: {c} balances sum to {report.totals[c]} minor units" for c in unbalanced]
    return lines + [f"FAILED: {problem}" for problem in report.violations]


def _debit_credit(balance: int, currency: str) -> tuple[str, str]:
    if balance >= 0:
        return _major(balance, currency), ""
    return "", _major(-balance, currency)


def _major(minor: int, currency: str) -> str:
    """`1234` GBP as `12.34`: the column header already names the currency."""
    return Money(minor, currency).format().split(" ", 1)[1]
