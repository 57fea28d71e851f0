"""Masking what the console renders: personal fields, contact details, tokens and card numbers.

Operators need the shape of a dead message and the field that broke it, not the buyer's name or
home address. A value is replaced whole (an `address` object disappears with everything in it)
when its key is

- the key of a field some payload schema marks `Personal` (`shared.personal`: name, email,
  address ...), read from the schemas in `tasks.registry`, never listed here; the key matches
  exactly, so `actor_name` or `company_name` stay;
- or a key that names secret or contact data by itself (token, password, card, phone, iban ...),
  for fields no schema describes.

Reasons and tracebacks quote input values, so free text is scrubbed too: every value masked in
the message (`personal_values`) is masked wherever it appears in the text, as are e-mail
addresses and card-like digit runs. The raw body an undecodable message carries (`raw`) is
hidden whole: nobody knows what it holds. Every pass is linear in the text (`shared.redaction`).
The CLI is not masked: whoever runs it already has the database. Pure functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from shared.personal import personal_names
from shared.redaction import email_spans, replace_spans
from tasks.registry import PAYLOAD_TYPES

MASK = "•••"
#: Shorter values are not searched for in free text: "GB" or "Al" would mask half a traceback.
MIN_QUOTED_CHARS = 3
#: Free text is searched once per value; a message holding more values than this (a payload
#: built to make the console slow) has its free text hidden whole instead.
MAX_QUOTED_VALUES = 300
TOO_MANY_VALUES = f"{MASK} (hidden: the message holds more personal values than the console searches)"

PERSONAL_KEYS = personal_names(PAYLOAD_TYPES.values())
_SENSITIVE_KEY = re.compile(
    r"address|line\d|street|postcode|post_code|zip|email|phone|token|secret|password|passwd|api_?key"
    r"|authorization|cookie|card|iban|account_number|sort_code|(?:^|[_\-.])(?:pan|cvc|cvv)(?:$|[_\-.])|^raw$",
    re.IGNORECASE,
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def is_sensitive(key: str) -> bool:
    return key in PERSONAL_KEYS or bool(_SENSITIVE_KEY.search(key))


def mask(value: Any, quoted: Iterable[str] = ()) -> Any:
    """A copy of a JSON value with personal and sensitive keys replaced and free text scrubbed.

    `quoted` (see `scrub`) are values to mask in the remaining text as well.
    """
    quoted = tuple(quoted)
    if isinstance(value, dict):
        return {key: MASK if is_sensitive(str(key)) else mask(item, quoted) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item, quoted) for item in value]
    if isinstance(value, str):
        return scrub(value, quoted)
    return value


def personal_values(message: Any) -> list[str]:
    """Every text `mask` hides in `message`, as it may be quoted: plain, Python repr and JSON.

    Longest first, so a name is masked before a part of it is.
    """
    found: set[str] = set()
    for text in _masked_texts(message):
        for form in (text, repr(text)[1:-1], json.dumps(text)[1:-1]):
            if len(form.strip()) >= MIN_QUOTED_CHARS:
                found.add(form)
    return sorted(found, key=len, reverse=True)


def group_values(messages: Iterable[Any]) -> list[str]:
    """`personal_values` of `messages` as a group's normalised reason spells them.

    The archive normalises reasons into groups (ids to `<uuid>`, `<hex>`, digits to `<n>`, see
    the `dead_letter_normalise` SQL function); the same steps are applied to the values here.
    """
    found = {_normalise(value) for message in messages for value in personal_values(message)}
    return sorted((value for value in found if len(value.strip()) >= MIN_QUOTED_CHARS), key=len, reverse=True)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEX = re.compile(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\b", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")


def _normalise(value: str) -> str:
    return _DIGITS.sub("<n>", _HEX.sub("<hex>", _UUID.sub("<uuid>", value)))


def _masked_texts(value: Any, *, hidden: bool = False) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _masked_texts(item, hidden=hidden or is_sensitive(str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _masked_texts(item, hidden=hidden)
    elif hidden and isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


def scrub(text: str, quoted: Iterable[str] = ()) -> str:
    """Free text (a reason, a traceback) with `quoted` values, e-mails and card numbers masked.

    `quoted` is what `personal_values` found in the message the text is about.
    """
    quoted = tuple(quoted)
    if len(quoted) > MAX_QUOTED_VALUES:
        return TOO_MANY_VALUES
    for value in quoted:
        text = text.replace(value, MASK)
    text = replace_spans(text, email_spans(text), MASK + "@" + MASK)
    return _CARD.sub(MASK + " card", text)
