"""What keeps the code fit for PgBouncer in transaction pooling (docs/operations/postgres-at-scale.md).

A transaction's next statement may run on another server connection, so nothing may rely on
session state: a session-level advisory lock would stay with a server connection that another
client gets next, and a LISTEN registered through the pooler never delivers. These read the
source, so a new use fails here with the reason instead of only under `make pgbouncer`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path for package in ("shared", "tasks", "workers") for path in (ROOT / package).rglob("*.py")
)

SESSION_ADVISORY_LOCK = re.compile(r"pg_(try_)?advisory_(lock|lock_shared)\s*\(", re.IGNORECASE)
LISTEN = re.compile(r"[\"']LISTEN\s")  # SQL in a string literal, as the code writes it
# The one LISTEN: the relay's wake-up, on database_direct_url (polling when that cannot work).
LISTENERS = {"workers/relay.py"}


def test_there_are_sources_to_read():
    assert len(SOURCES) > 50


def test_advisory_locks_are_transaction_level_only():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SESSION_ADVISORY_LOCK.search(line)
    ]
    assert offenders == [], "use pg_advisory_xact_lock (released at commit):\n" + "\n".join(offenders)


def test_only_the_relay_listens_and_it_uses_the_direct_url():
    listening = {
        str(path.relative_to(ROOT))
        for path in SOURCES
        if any(LISTEN.search(line) for line in path.read_text().splitlines())
    }
    assert listening <= LISTENERS, f"LISTEN outside the relay: {sorted(listening - LISTENERS)}"
    assert "database_direct_url" in (ROOT / "workers" / "relay.py").read_text()
