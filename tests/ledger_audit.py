"""In-memory checks of a journal built from `tasks.ledger.posting` rules, for the posting unit tests.

Production audits the stored journal with SQL (`tasks.ledger.reports.trial_balance_report`, behind
`circulate ledger trial-balance`); these do the same over a list of transactions, so the posting
rules can be checked without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from tasks.ledger.posting import Entry, JournalTransaction, same_content


def trial_balance(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    """Balance of every account touched, per currency; each currency's balances sum to zero in a sound
    journal. Sorted, so two runs over the same journal give the same result."""
    balances: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        balances[entry.currency][entry.account] += entry.amount_minor
    return {currency: dict(sorted(balances[currency].items())) for currency in sorted(balances)}


def find_violations(transactions: Iterable[JournalTransaction]) -> list[str]:
    """Human-readable problems in a journal: unbalanced transactions and posting keys used more than once.

    Returns every problem rather than stopping at the first, so one assertion shows them all.
    """
    by_key: defaultdict[str, list[JournalTransaction]] = defaultdict(list)
    problems = []
    for transaction in transactions:
        by_key[transaction.posting_key].append(transaction)
        if imbalance := transaction.imbalance():
            problems.append(f"{transaction.posting_key}: unbalanced, entries sum to {imbalance}")
    for key, posted in by_key.items():
        if len(posted) > 1:
            conflicting = any(not same_content(posted[0], other) for other in posted[1:])
            detail = "with different content" if conflicting else "with the same content"
            problems.append(f"{key}: posted {len(posted)} times {detail}")
    return problems
