"""Bearer tokens for calling services: shown once at creation, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password-style stretching);
the hash lets the API look a token up by equality without keeping anything replayable.

Each token carries scopes, checked per route (`workers.api.deps`):
- `enqueue`: change state: place and cancel orders, set notification preferences;
- `read`: read orders and preferences.
A service that only polls gets `read`; checkout gets both. Tokens from before scopes existed
were given both by their migration (they could do everything), see 0011_token_scopes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, String, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base

TOKEN_PREFIX = "circ_"
SCOPES = ("enqueue", "read")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(
            "scopes <@ ARRAY['enqueue', 'read']::varchar[] AND cardinality(scopes) > 0",
            name="scopes_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    service: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Caller:
    """The service behind a valid token and what that token may do."""

    service: str
    scopes: frozenset[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def checked_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, deduplicated in a stable order; ValueError for an unknown or empty set."""
    wanted = set(scopes)
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {sorted(wanted)}")
    return [scope for scope in SCOPES if scope in wanted]


def create_token(session: Session, service: str, *, scopes: Iterable[str] = SCOPES) -> str:
    """Store a new token's hash for `service` and return the token itself (printed once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(service=service, token_hash=hash_token(token), scopes=checked_scopes(scopes)))
    return token


def revoke_tokens(session: Session, service: str) -> int:
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.service == service, ApiToken.revoked_at.is_(None))
    )
    count = 0
    for token in tokens:
        token.revoked_at = func.now()
        count += 1
    return count
