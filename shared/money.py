"""Money as integer minor units with an ISO 4217 currency; floats never hold an amount."""

from __future__ import annotations

from dataclasses import dataclass

#: Minor units per major unit for the currencies the marketplace trades in; others default to 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "HUF": 2, "BHD": 3, "KWD": 3}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point for `currency` (ISO 4217)."""
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (pence, cents) of one currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError(f"amounts are integers in minor units, got {self.minor!r}")
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError(f"currency must be an ISO 4217 code, got {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def format(self) -> str:
        """Human form for templates and reports, e.g. `GBP 12.50`."""
        exponent = currency_exponent(self.currency)
        if exponent == 0:
            return f"{self.currency} {self.minor}"
        sign = "-" if self.minor < 0 else ""
        major, minor = divmod(abs(self.minor), 10**exponent)
        return f"{self.currency} {sign}{major}.{minor:0{exponent}d}"
