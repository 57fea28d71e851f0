"""Value types every message schema and the API share: what any domain may safely store and print.

Defined once so that the API refuses, with a 422 naming the field, exactly what a worker would
refuse, and so that nothing which passes validation can fail later in Postgres, in an e-mail body
or when read back (see docs/orders-at-the-edge.md):

- `PrintableLine`: text on one line with no control or format characters. NUL breaks Postgres'
  text columns; CR/LF in a name become extra lines in e-mail bodies; bidi overrides (U+202E) spoof
  what staff read. Zero-width (non-)joiners stay allowed: several scripts need them in names.
- `MinorAmount` / `PositiveMinorAmount`: integers in minor units up to `MAX_AMOUNT_MINOR`, low
  enough that any sum the ledger books from a few of them stays far inside a Postgres bigint.
- `Instant`: an aware datetime in [`EARLIEST_INSTANT`, `LATEST_INSTANT`). The window is absolute,
  not relative to now, so a message valid when produced stays valid when re-driven months later;
  freshness checks belong to the edge (workers.api.orders).
- `CountryCode`, `CurrencyCode`, `Email`, `Address`: the shapes shared by fulfilment, shipping and
  notifications, here so that no domain imports another for them.

Length limits come before the character scan (pydantic checks `max_length` first), so the scan's
cost is bounded by the field's limit.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

#: The largest amount, in minor units, any message may carry: 100 million in a two-decimal
#: currency. Four of them summed stay below 2**63 by a factor of about 200 000.
MAX_AMOUNT_MINOR = 10_000_000_000

#: Every instant a message carries lies in this window (UTC), well inside what both Python's
#: datetime (years 1..9999 in any offset) and Postgres' timestamptz can store and read back.
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)

#: Unicode categories refused in text: controls (NUL, CR, LF, TAB, ESC, C1 such as NEL), format
#: characters (bidi overrides, zero-width space), lone surrogates, line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Format characters that are part of ordinary names (Persian, Indic scripts, emoji sequences).
ALLOWED_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"})


def refused_character(text: str) -> tuple[int, str] | None:
    """The first character `PrintableLine` refuses, as (position, character), or None.

    Almost every text is printable as `str.isprintable` means it (no character in the Unicode
    categories "Other" or "Separator" but the ASCII space), and those include every refused
    category: such a text is answered by one call in C instead of a category lookup per
    character, which was about a tenth of the API's CPU per order (a dozen fields per order).
    Anything else (a non-breaking space, a zero-width joiner, a control) is scanned.
    """
    if text.isprintable():
        return None
    return _scan(text)


def _scan(text: str) -> tuple[int, str] | None:
    for position, character in enumerate(text):
        if (
            unicodedata.category(character) in REFUSED_CATEGORIES
            and character not in ALLOWED_FORMAT_CHARACTERS
        ):
            return position, character
    return None


def _printable_line(text: str) -> str:
    # The message names the code point, never the text: names and addresses are personal data.
    if found := refused_character(text):
        position, character = found
        raise ValueError(
            f"must be printable text on one line; U+{ord(character):04X} at position {position} is not"
        )
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def _within_window(value: datetime) -> datetime:
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise ValueError(
            f"must be on or after {EARLIEST_INSTANT.date()} and before {LATEST_INSTANT.date()} (UTC)"
        )
    return value


PrintableLine = Annotated[str, AfterValidator(_printable_line)]
MinorAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_MINOR)]
PositiveMinorAmount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)]
Instant = Annotated[AwareDatetime, AfterValidator(_within_window)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
Email = Annotated[
    str,
    Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254),
    AfterValidator(_printable_line),
]


class Address(BaseModel):
    """A postal address as a label prints it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line1: PrintableLine = Field(min_length=1, max_length=200)
    city: PrintableLine = Field(min_length=1, max_length=100)
    postcode: PrintableLine = Field(min_length=1, max_length=20)
    country: CountryCode
