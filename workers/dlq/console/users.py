"""Console users: names, scrypt password hashes and roles (`viewer` reads, `operator` also acts).

Hashes are `scrypt$n$r$p$salt$hash` (base64), so the cost can rise later without breaking
existing users. Checking a password for an unknown name still runs scrypt once, so response
times do not tell which names exist. Setting a user's password or role ends every console
session of that user (`console_sessions`), so a leaked password stops working at once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, String, func, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base

ROLES = ("viewer", "operator")
MIN_PASSWORD_LENGTH = 10
_N, _R, _P = 2**14, 8, 1


class ConsoleUserRecord(Base):
    """The `console_users` table (queried with SQL below; the model keeps metadata complete)."""

    __tablename__ = "console_users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator')", name="role_known"),)

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password", salt=b"\0" * 16)


def add_user(session: Session, name: str, password: str, role: str) -> None:
    """Create the user, or change an existing user's password and role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    session.execute(
        text(
            "INSERT INTO console_users (name, password_hash, role) VALUES (:name, :hash, :role) "
            "ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
            "role = EXCLUDED.role, updated_at = now()"
        ),
        {"name": name, "hash": hash_password(password), "role": role},
    )
    session.execute(text("DELETE FROM console_sessions WHERE user_name = :name"), {"name": name})


def remove_user(session: Session, name: str) -> bool:
    result = session.execute(text("DELETE FROM console_users WHERE name = :name RETURNING 1"), {"name": name})
    return result.scalar_one_or_none() is not None


def list_users(session: Session) -> list[ConsoleUser]:
    rows = session.execute(text("SELECT name, role FROM console_users ORDER BY name"))
    return [ConsoleUser(name, role) for name, role in rows]


def find_user(session: Session, name: str) -> ConsoleUser | None:
    """The user's current role (read on every request, so a demotion applies at once)."""
    row = session.execute(
        text("SELECT name, role FROM console_users WHERE name = :name"), {"name": name}
    ).first()
    return ConsoleUser(row[0], row[1]) if row else None


def authenticate(session: Session, name: str, password: str) -> ConsoleUser | None:
    row = session.execute(
        text("SELECT name, role, password_hash FROM console_users WHERE name = :name"), {"name": name}
    ).first()
    if row is None:
        verify_password(password, _dummy_hash())
        return None
    return ConsoleUser(row[0], row[1]) if verify_password(password, row[2]) else None
