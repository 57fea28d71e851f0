"""Console sign-in throttling: failures counted per name and per client address, with backoff.

Each failed sign-in adds one to two counters, `name:<name>` and `client:<address>`. Once a counter
reaches its limit, that key is locked: 30 s at the limit, doubling with each further failure up to
15 minutes. While either key is locked, sign-in answers 429 with `Retry-After` *without checking
the password*, so a locked account is no password oracle. A counter is forgotten 15 minutes after
its last failure; a successful sign-in forgets the name's counter (not the client's, or one valid
account would reset an address that guesses at others). Each lock is written to the audit log.

The per-name limit is the lower one: it protects one account from a distributed guesser; the
per-client limit stops one address from spraying many names. The price of the per-name lock is
that someone can keep a known name locked out; the lock is short and audited, and an operator can
still sign in under another account.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base

NAME_LIMIT = 5
CLIENT_LIMIT = 20
FIRST_LOCK_S = 30
MAX_LOCK_S = 15 * 60
FORGET_AFTER_S = 15 * 60


class LoginFailures(Base):
    __tablename__ = "console_login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def lock_seconds(failures: int, limit: int) -> int:
    """How long a key with `failures` recent failures is locked: none below `limit`, then doubling."""
    if failures < limit:
        return 0
    return int(min(MAX_LOCK_S, FIRST_LOCK_S * 2 ** min(failures - limit, 16)))


def keys(name: str, client: str) -> list[tuple[str, int]]:
    """The counters one attempt touches, each with its limit (the name's first)."""
    return [(f"name:{name.casefold()[:150]}", NAME_LIMIT), (f"client:{client[:100]}", CLIENT_LIMIT)]


def wait_seconds(db: Session, counted: list[tuple[str, int]]) -> int:
    """Seconds until every one of these keys is unlocked; 0 when sign-in may be tried now."""
    remaining = db.execute(
        text(
            "SELECT ceil(extract(epoch FROM max(locked_until) - now())) FROM console_login_failures "
            "WHERE key = ANY(:keys) AND locked_until > now()"
        ),
        {"keys": [key for key, _ in counted]},
    ).scalar_one()
    return int(remaining or 0)


_FAIL = text(
    "INSERT INTO console_login_failures AS f (key, failures, last_failed_at) VALUES (:key, 1, now()) "
    "ON CONFLICT (key) DO UPDATE SET last_failed_at = now(), failures = CASE "
    "WHEN f.last_failed_at < now() - make_interval(secs => :forget) THEN 1 ELSE f.failures + 1 END "
    "RETURNING failures"
)
_LOCK = text(
    "UPDATE console_login_failures SET locked_until = now() + make_interval(secs => :lock) WHERE key = :key"
)
_SWEEP = text(
    "DELETE FROM console_login_failures WHERE last_failed_at < now() - make_interval(secs => :forget) "
    "AND (locked_until IS NULL OR locked_until < now())"
)


def record_failure(db: Session, counted: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """Count one failure on each key; returns (key, failures, lock seconds) for the keys it locked."""
    db.execute(_SWEEP, {"forget": FORGET_AFTER_S})
    locked = []
    for key, limit in counted:
        failures = int(db.execute(_FAIL, {"key": key, "forget": FORGET_AFTER_S}).scalar_one())
        lock = lock_seconds(failures, limit)
        if lock:
            db.execute(_LOCK, {"key": key, "lock": lock})
            locked.append((key, failures, lock))
    return locked


def forget(db: Session, key: str) -> None:
    db.execute(text("DELETE FROM console_login_failures WHERE key = :key"), {"key": key})
