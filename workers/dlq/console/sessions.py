"""Signed-in console sessions, kept in the database so that signing out really ends them.

The browser's cookie carries a random session id (256 bits); the table keeps only its SHA-256,
the user, the client address and three times. A session is valid while its row exists, it is
younger than `SESSION_TTL_S` and it was used within `IDLE_TIMEOUT_S`. Signing out deletes the row
(a copy of the cookie is then worthless), removing a user cascades, and setting a user's password
(`users.add_user`) deletes that user's rows. Each use moves `last_seen_at` in the same statement
that reads the user's current role, so a page costs one round trip for both.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base
from workers.dlq.console.cookie import IDLE_TIMEOUT_S, SESSION_TTL_S
from workers.dlq.console.users import ConsoleUser


class ConsoleSessionRecord(Base):
    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        String(100), ForeignKey("console_users.name", ondelete="CASCADE"), index=True
    )
    client: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


_SWEEP = text(
    "DELETE FROM console_sessions WHERE expires_at < now() "
    "OR last_seen_at < now() - make_interval(secs => :idle)"
)


def start(db: Session, user_name: str, *, client: str | None) -> str:
    """A new session for `user_name`; returns the id for the cookie (only its hash is stored)."""
    db.execute(_SWEEP, {"idle": IDLE_TIMEOUT_S})
    session_id = secrets.token_urlsafe(32)
    db.execute(
        text(
            "INSERT INTO console_sessions (id_hash, user_name, client, expires_at) "
            "VALUES (:hash, :user, :client, now() + make_interval(secs => :ttl))"
        ),
        {"hash": _hash(session_id), "user": user_name, "client": (client or "")[:100], "ttl": SESSION_TTL_S},
    )
    return session_id


def resume(db: Session, session_id: str) -> ConsoleUser | None:
    """The session's user with their current role, marking the session used; None if it ended."""
    row = db.execute(
        text(
            "UPDATE console_sessions s SET last_seen_at = now() FROM console_users u "
            "WHERE s.id_hash = :hash AND u.name = s.user_name AND s.expires_at > now() "
            "AND s.last_seen_at > now() - make_interval(secs => :idle) RETURNING u.name, u.role"
        ),
        {"hash": _hash(session_id), "idle": IDLE_TIMEOUT_S},
    ).first()
    return ConsoleUser(row[0], row[1]) if row else None


def end(db: Session, session_id: str) -> None:
    db.execute(text("DELETE FROM console_sessions WHERE id_hash = :hash"), {"hash": _hash(session_id)})


def end_all(db: Session, user_name: str) -> int:
    """End every session of a user (a new password, or a role change, signs them out everywhere)."""
    result = db.execute(
        text("DELETE FROM console_sessions WHERE user_name = :name RETURNING 1"), {"name": user_name}
    )
    return len(result.all())
