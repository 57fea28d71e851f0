"""The console's session cookie: signed with HMAC-SHA256, carrying a CSRF token and a session id.

The cookie is `base64(json).hex(hmac)`; a cookie whose signature, shape or expiry is wrong is
treated as no session at all. Every session, even before login, carries a random CSRF token that
each form echoes back, so every POST (login included) can be checked. A signed-in cookie also
carries the id of a server-side session (`console_sessions`): the cookie alone signs nobody in, so
signing out (which deletes the row) ends the session even for a copy of the cookie. Sessions
before sign-in stay cookie-only, so anonymous visitors write nothing to the database. The signing
secret is the `console_secret` setting; without one (or with one too short to be a secret) the console refuses
to run rather than sign with something guessable. Pure functions: no web framework here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigurationError

MIN_SECRET_LENGTH = 32
SESSION_TTL_S = 8 * 3600
#: A signed-in session unused for this long has ended (checked server-side).
IDLE_TIMEOUT_S = 30 * 60


@dataclass(frozen=True)
class ConsoleSession:
    user: str | None
    csrf: str
    expires: int
    sid: str | None = None  # the server-side session's id, once signed in


def console_secret(settings: Any) -> bytes:
    """The signing key from `settings.console_secret` (str or SecretStr); fails closed without it."""
    value = getattr(settings, "console_secret", None)
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            "the dead-letter console is disabled: set CIRCULATE_CONSOLE_SECRET to a random value of at "
            f"least {MIN_SECRET_LENGTH} characters (for example `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)"
        )
    return value.encode()


def new_session(user: str | None, *, now: float, sid: str | None = None) -> ConsoleSession:
    """A fresh session with a new CSRF token (login issues one, so a token never outlives a user)."""
    return ConsoleSession(
        user=user, csrf=secrets.token_urlsafe(32), expires=int(now) + SESSION_TTL_S, sid=sid
    )


def sign(session: ConsoleSession, secret: bytes) -> str:
    fields = {"u": session.user, "c": session.csrf, "e": session.expires, "s": session.sid}
    data = json.dumps(fields, separators=(",", ":"))
    body = base64.urlsafe_b64encode(data.encode()).decode()
    return f"{body}.{_mac(body, secret)}"


def unsign(cookie: str | None, secret: bytes, *, now: float) -> ConsoleSession | None:
    """The session in a cookie, or None if it is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    body, _, mac = cookie.rpartition(".")
    if not _same(mac, _mac(body, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(_bytes(body)))
        session = ConsoleSession(
            user=data["u"], csrf=str(data["c"]), expires=int(data["e"]), sid=data.get("s")
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if session.expires < now or not all(
        value is None or isinstance(value, str) for value in (session.user, session.sid)
    ):
        return None
    return session


def csrf_ok(session: ConsoleSession | None, token: str | None) -> bool:
    """True only when a session exists and the form echoed its token."""
    return session is not None and bool(token) and _same(session.csrf, str(token))


def _mac(body: str, secret: bytes) -> str:
    return hmac.new(secret, _bytes(body), hashlib.sha256).hexdigest()


def _same(presented: str, expected: str) -> bool:
    """Constant-time equality on bytes: `compare_digest` raises TypeError on non-ASCII str,
    and cookies and form fields come from the client, so they may hold any character."""
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")
