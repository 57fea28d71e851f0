"""Signing and verifying the carrier's tracking webhooks, as pure functions.

The carrier signs each webhook so that our endpoint can refuse forged or replayed calls:

    Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}.{raw_body}">

The timestamp is inside the signed text, so an attacker cannot refresh an old capture, and
`verify` refuses a timestamp outside the tolerance window. Several `v1=` entries may appear
while a secret is being rotated; one match is enough. This module does no I/O and takes `now`
as an argument so that the rules are unit-tested without clocks or servers; the carrier
sandbox (`workers.harness.sandbox.app`) signs with the same `sign`.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.errors import PermanentError

SIGNATURE_HEADER = "Carrier-Signature"
DEFAULT_TOLERANCE_S = 300


class InvalidSignature(PermanentError):
    """The webhook cannot be trusted; answering 4xx is right, since the same bytes never become valid."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the `Carrier-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp).decode()}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise `InvalidSignature` unless `header` signs exactly `body` within `tolerance_s` of `now`.

    The signature is checked before the age, so a stale error always means a genuine but old
    (possibly replayed) webhook, never a forgery.
    """
    timestamp, candidates = _parse(header)
    expected = _digest(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, _as_bytes(candidate)) for candidate in candidates):
        raise InvalidSignature("webhook signature does not match the body (wrong secret or altered body)")
    age = now - timestamp
    if abs(age) > tolerance_s:
        raise InvalidSignature(f"webhook timestamp is {age}s from now, outside the {tolerance_s}s tolerance")


def _digest(secret: str, body: bytes, timestamp: int) -> bytes:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()


def _as_bytes(candidate: str) -> bytes:
    """The presented signature as bytes: `compare_digest` refuses non-ASCII str with TypeError,
    and a header may carry any Latin-1 character (or, from a test, any code point at all)."""
    return candidate.encode("utf-8", "surrogatepass")


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header or not header.strip():
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignature(f"garbled {SIGNATURE_HEADER} header: {part.strip()!r} is not key=value")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise InvalidSignature(f"garbled {SIGNATURE_HEADER} header: expected exactly one numeric t=")
    if not candidates:
        raise InvalidSignature(f"garbled {SIGNATURE_HEADER} header: no v1= signature")
    return int(timestamps[0]), candidates
