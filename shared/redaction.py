"""Text scanning whose cost is linear in its input, for anything that masks what a producer sent.

A regular expression with an unbounded run before a literal (`[a-z.]+@`) tries that run from every
starting position: a 5 MB word costs about 10^13 steps and pins a worker inside a log call. Two
rules keep every masking pass linear, whatever the content:

- `truncate` cuts a value to `MAX_VALUE_CHARS` before any pattern sees it (head and tail kept,
  the cut word dropped whole so no half of an address survives), so no regular expression is
  ever handed more than a bounded string;
- `email_spans` finds e-mail addresses without a regular expression: it jumps from one `@` to the
  next and walks outwards over the local part and the domain, so each character is examined at
  most three times. `Cost` counts what it examined; the property tests bound that count.

Pure functions; `shared.logs` and the dead-letter console's masking both use them.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

#: The most characters of one value that are logged or scanned by a pattern.
MAX_VALUE_CHARS = 8192

_LOCAL = frozenset(string.ascii_letters + string.digits + ".!#$%&'*+/=?^_`{|}~-")
_DOMAIN = frozenset(string.ascii_letters + string.digits + "-.")


@dataclass
class Cost:
    """Operations spent by a scan: characters examined one by one, or searched over by `str.find`."""

    scanned: int = 0


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """`text` cut to about `limit` characters: its first and last halves and how much went between.

    Tracebacks end with the line that matters, so the tail is kept as well as the head. A word
    the cut goes through is dropped whole: half an e-mail address no longer looks like one.
    """
    if len(text) <= limit:
        return text
    half = limit // 2
    head, tail = text[:half], text[-half:]
    if not text[half].isspace():
        head = head[: _last_space(head) + 1]
    if not text[-half - 1].isspace():
        tail = tail[_first_space(tail) :]
    cut = len(text) - len(head) - len(tail)
    return f"{head}[{cut} characters cut]{tail}"


def _last_space(text: str) -> int:
    return max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))


def _first_space(text: str) -> int:
    found = [index for index in (text.find(" "), text.find("\n"), text.find("\t")) if index != -1]
    return min(found, default=len(text))


def email_spans(text: str, cost: Cost | None = None) -> list[tuple[int, int]]:
    """(start, end) of every e-mail address in `text`, in order; linear time (see the module doc).

    An address is a non-empty run of local-part characters, `@`, then a domain run holding a dot
    followed by at least two letters. The whole domain run is taken, so `a@x.com.123` is masked
    entirely: over-masking is the safe side.
    """
    cost = cost if cost is not None else Cost()
    spans: list[tuple[int, int]] = []
    at = text.find("@")
    cost.scanned += (at if at != -1 else len(text)) + 1
    while at != -1:
        start = at
        # Neither walk crosses another `@` (it is in neither set), so the walks between two
        # consecutive `@` never overlap: each character is walked at most twice.
        while start > 0 and _in(text[start - 1], _LOCAL):
            start -= 1
        end = at + 1
        while end < len(text) and _in(text[end], _DOMAIN):
            end += 1
        cost.scanned += (at - start) + (end - at)
        domain = text[at + 1 : end].rstrip(".")
        if start < at and _is_domain(domain):
            spans.append((start, at + 1 + len(domain)))
        following = text.find("@", at + 1)
        cost.scanned += (following if following != -1 else len(text)) - at
        at = following
    return spans


def _in(char: str, ascii_set: frozenset[str]) -> bool:
    """In the ASCII set, or a non-ASCII letter or digit (internationalised addresses: jöe@exämple.de)."""
    return char in ascii_set or (char > "\x7f" and char.isalnum())


def _is_domain(domain: str) -> bool:
    """A first label, then a dot and two letters somewhere (`x.com`, `mail.example.co.uk`)."""
    labels = domain.split(".")
    return bool(labels[0]) and any(len(label) >= 2 and label[:2].isalpha() for label in labels[1:])


def replace_spans(text: str, spans: list[tuple[int, int]], replacement: str) -> str:
    """`text` with each (start, end) span, in order and not overlapping, replaced."""
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(replacement)
        last = end
    parts.append(text[last:])
    return "".join(parts)
