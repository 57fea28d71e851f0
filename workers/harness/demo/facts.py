"""What a run left behind, gathered once from Postgres, the carrier sandbox and the SMTP maildir.

Read with plain SQL (`text()`), not through each domain's models, so the demo audits the tables
as they are rather than as a domain's code believes them to be, and depends on no module layout.
The ledger is audited by its own report (`tasks.ledger.reports`), in the same snapshot.
Everything is collected into plain data before the processes stop (the sandbox keeps its counters
in memory), so the checks in `invariants` are pure functions of a `Facts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from tasks.ledger.reports import as_json, trial_balance_report
from workers.harness.smtp_sink import read_maildir


@dataclass(frozen=True)
class Transition:
    order_id: str
    from_state: str | None
    to_state: str
    at: datetime


@dataclass(frozen=True)
class NotificationRow:
    dedupe_key: str
    order_id: str
    template: str
    channel: str
    status: str
    message_id: str | None

    @property
    def role(self) -> str:
        """The recipient's role, the fourth part of `notification:<order>:<template>:<role>:<channel>`."""
        parts = self.dedupe_key.split(":")
        return parts[3] if len(parts) == 5 else "?"


@dataclass(frozen=True)
class Facts:
    orders_by_state: dict[str, int]
    listings_by_order: dict[str, str]
    states_by_order: dict[str, str]
    transitions: list[Transition]
    labels_by_status: dict[str, int]
    #: `tasks.ledger.reports.as_json`: balances per currency and account, totals, revenue, violations.
    ledger: dict[str, Any]
    captures_per_order: dict[str, int]
    notifications: list[NotificationRow]
    processed_messages: int
    duplicates_suppressed: int
    dead_letters: list[dict[str, Any]]
    sandbox: dict[str, int]
    #: Message-ID of every email the sink received, in arrival order (repeats included).
    emails_received: list[str]


def _rows(connection: Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(text(sql))]


def collect(engine: Engine, *, sandbox: httpx.Client, maildir: Path) -> Facts:
    """Read everything the invariants and the report need; one transaction for a consistent view."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as c, c.begin():
        orders = _rows(c, "SELECT id::text AS id, listing_id::text AS listing_id, state FROM orders")
        transitions = _rows(
            c,
            "SELECT order_id::text AS order_id, from_state, to_state, at FROM order_transitions ORDER BY id",
        )
        labels = _rows(c, "SELECT status, count(*) AS n FROM labels GROUP BY status")
        ledger = as_json(trial_balance_report(Session(bind=c)))
        captures = _rows(
            c,
            "SELECT order_id::text AS order_id, count(*) AS n FROM journal_transactions "
            "WHERE kind = 'payment_captured' GROUP BY order_id",
        )
        notifications = _rows(
            c,
            "SELECT dedupe_key, order_id::text AS order_id, template, channel, status, message_id "
            "FROM notifications",
        )
        processed = _rows(
            c, "SELECT count(*) AS n, coalesce(sum(duplicate_count), 0)::bigint AS d FROM processed_messages"
        )[0]
        dead = _rows(
            c,
            "SELECT actor_name, exception_type, count(*) AS n, min(reason) AS example "
            "FROM dead_letters GROUP BY actor_name, exception_type ORDER BY n DESC",
        )
    stats = sandbox.get("/v1/sandbox/stats")
    stats.raise_for_status()
    return Facts(
        orders_by_state=_count_by(orders, "state"),
        listings_by_order={o["id"]: o["listing_id"] for o in orders},
        states_by_order={o["id"]: o["state"] for o in orders},
        transitions=[Transition(**t) for t in transitions],
        labels_by_status={row["status"]: int(row["n"]) for row in labels},
        ledger=ledger,
        captures_per_order={row["order_id"]: int(row["n"]) for row in captures},
        notifications=[NotificationRow(**n) for n in notifications],
        processed_messages=int(processed["n"]),
        duplicates_suppressed=int(processed["d"]),
        dead_letters=dead,
        sandbox={key: int(value) for key, value in stats.json().items()},
        emails_received=[str(m["Message-ID"]) for m in read_maildir(maildir) if m["Message-ID"]],
    )


def _count_by(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return dict(sorted(counts.items()))
