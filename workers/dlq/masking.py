"""Masking what the console renders: addresses, contact details, tokens and card numbers.

Operators need the shape of a dead message and the field that broke it, not the buyer's home
address. Values under keys that name personal or secret data are replaced whole (an `address`
object disappears with everything in it); in any other text, e-mail addresses and card-like digit
runs are masked too, because reasons and tracebacks quote input values. The raw body an
undecodable message carries (`raw`) is hidden whole: nobody knows what it holds. The CLI is not masked:
whoever runs it already has the database. Pure functions.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "•••"

_SENSITIVE_KEY = re.compile(
    r"address|line\d|street|postcode|post_code|zip|email|phone|token|secret|password|passwd|api_?key"
    r"|authorization|cookie|card|iban|account_number|sort_code|(?:^|[_\-.])(?:pan|cvc|cvv)(?:$|[_\-.])|^raw$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[^@\s'\"<>(),;:]+@[^@\s'\"<>(),;:]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def is_sensitive(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(key))


def mask(value: Any) -> Any:
    """A copy of a JSON value with sensitive keys replaced and free text scrubbed."""
    if isinstance(value, dict):
        return {key: MASK if is_sensitive(str(key)) else mask(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def scrub(text: str) -> str:
    """Free text (a reason, a traceback) with e-mail addresses and card-like numbers masked."""
    return _CARD.sub(MASK + " card", _EMAIL.sub(MASK + "@" + MASK, text))
