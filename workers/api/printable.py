"""Refuse control characters in a request's path and query string, before any route sees them.

A NUL reaching PostgreSQL fails the statement (text cannot hold it) and turned lookups by user
id or console filter into 500s; other control characters have no business in an identifier or a
filter either. Checking the decoded path and every query name and value here, once, covers every
route and every later one with a 400 in the error shape. Form and JSON bodies are checked where
they are parsed (`control_character` is the one predicate for all of them).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl

from starlette.types import Scope

#: Unicode categories refused: control characters (C0, DEL, C1) and lone surrogates.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})


def control_character(value: str) -> str | None:
    """The first refused character of `value` as a readable escape (`'\\x00'`), or None."""
    if value.isprintable():  # the common case, in C: no printable character is Cc or Cs
        return None
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return ascii(char)
    return None


def refusal(where: str, found: str) -> str:
    return f"{where} contains the control character {found}; only printable text is accepted"


def problem(scope: Scope) -> str | None:
    """Why the path or query string is refused (a 400 before routing, `workers.api.edge`), or None."""
    found = control_character(str(scope.get("path", "")))
    if found is not None:
        return refusal("the path", found)
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        found = control_character(name) or control_character(value)
        if found is not None:
            return refusal(f"the query parameter {name!r}", found)
    return None
