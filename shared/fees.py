"""What the marketplace charges on one order, per market, in integer minor units.

Two charges, both computed on the item price only (shipping is passed through to the carrier untouched):

- the seller commission, taken out of the item price, so the seller receives ``item - commission``;
- the buyer protection fee, added on top, so the buyer pays ``item + shipping + buyer_fee``.

Rounding rule. Each charge is ``percentage part + fixed part``. The percentage part is
``item_price_minor * bps / 10000`` rounded HALF UP to the minor unit, computed with integer arithmetic
only as ``(item_price_minor * bps + 5000) // 10000`` (prices are never negative, so floor division of the
shifted value is exactly half-up). 5% of 1010 is 50.5 and becomes 51; 5% of 1009 is 50.45 and becomes 50.
Floats would put the half-way cases at the mercy of binary representation, and the same order must give
the same fee on every worker and every replay. The commission is then capped at the item price, so a
fixed commission on a very cheap item can never make the seller's net negative. The buyer fee is not
capped: it is what the buyer agreed to pay on top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from shared.errors import PermanentError
from shared.money import Money
from shared.values import MAX_AMOUNT_MINOR

if TYPE_CHECKING:
    from shared.config import Settings

#: Basis points in one whole: 10000 bps = 100%.
BPS_SCALE = 10_000

DEFAULT_FEE_SCHEDULE_JSON = """\
{
  "GB": {"currency": "GBP", "commission_bps": 0, "commission_fixed_minor": 0,
         "buyer_fee_bps": 500, "buyer_fee_fixed_minor": 70},
  "US": {"currency": "USD", "commission_bps": 1000, "commission_fixed_minor": 0,
         "buyer_fee_bps": 500, "buyer_fee_fixed_minor": 70},
  "FR": {"currency": "EUR", "commission_bps": 500, "commission_fixed_minor": 0,
         "buyer_fee_bps": 500, "buyer_fee_fixed_minor": 70},
  "DE": {"currency": "EUR", "commission_bps": 500, "commission_fixed_minor": 0,
         "buyer_fee_bps": 500, "buyer_fee_fixed_minor": 70},
  "IT": {"currency": "EUR", "commission_bps": 500, "commission_fixed_minor": 0,
         "buyer_fee_bps": 500, "buyer_fee_fixed_minor": 70}
}
"""


class UnknownMarket(PermanentError, KeyError):
    """No fees are configured for the order's market; retrying cannot make them appear.

    It is also a KeyError so that `FeeSchedule` honours the Mapping protocol (`in`, `.get()`).
    """

    #: The order field at fault, for the API's 422.
    field = "market"

    def __str__(self) -> str:
        # KeyError would quote the message as a repr; keep it readable in the dead-letter reason.
        return str(self.args[0]) if self.args else ""


class MarketCurrencyMismatch(PermanentError):
    """The order's currency is not the one its market is priced in; booking it would mix currencies."""

    #: The order field at fault, for the API's 422.
    field = "currency"


@dataclass(frozen=True, slots=True)
class MarketFees:
    """The charges of one market; validated on construction so a bad schedule fails at load, not per order."""

    market: str
    currency: str
    commission_bps: int
    commission_fixed_minor: int
    buyer_fee_bps: int
    buyer_fee_fixed_minor: int

    def __post_init__(self) -> None:
        _require_market_code(self.market)
        Money(0, self.currency)  # same ISO 4217 rule as every amount in the system
        for name in ("commission_bps", "buyer_fee_bps"):
            _require_int(name, getattr(self, name), upper=BPS_SCALE)
        for name in ("commission_fixed_minor", "buyer_fee_fixed_minor"):
            # Capped like every order amount, so a quote's sums stay inside a Postgres bigint.
            _require_int(name, getattr(self, name), upper=MAX_AMOUNT_MINOR)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """The charges on one order; `buyer_total - seller_net - commission - buyer_fee` is the shipping."""

    commission_minor: int
    buyer_fee_minor: int
    seller_net_minor: int
    buyer_total_minor: int
    currency: str


class FeeSchedule(Mapping[str, MarketFees]):
    """Market code -> fees. Read-only: a schedule is loaded once at boot and shared by every worker thread."""

    __slots__ = ("_markets",)

    def __init__(self, markets: Mapping[str, MarketFees]) -> None:
        for market, fees in markets.items():
            if fees.market != market:
                raise ValueError(f"fee schedule key {market!r} holds the fees of market {fees.market!r}")
        self._markets = MappingProxyType(dict(markets))

    def __getitem__(self, market: str) -> MarketFees:
        try:
            return self._markets[market]
        except KeyError:
            known = ", ".join(sorted(self._markets)) or "none"
            raise UnknownMarket(f"no fees configured for market {market!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._markets)

    def __len__(self) -> int:
        return len(self._markets)

    def __repr__(self) -> str:
        return f"FeeSchedule({dict(self._markets)!r})"

    def for_order(self, market: str, currency: str) -> MarketFees:
        """The fees an order in `market` and `currency` is booked with, or why it cannot be booked.

        The one rule the API (a 422 naming the field), fulfilment (the order needs attention
        instead of shipping) and the ledger's capture agree on: the market is known and the order
        is priced in the market's currency.
        """
        fees = self[market]
        if fees.currency != currency:
            raise MarketCurrencyMismatch(f"market {market} is priced in {fees.currency}, not {currency}")
        return fees

    @classmethod
    def from_json(cls, text: str) -> FeeSchedule:
        """Parse the operator-supplied schedule; every message names the market and field at fault."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"fee schedule is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ValueError(f"fee schedule must be a JSON object of markets, got {type(document).__name__}")
        return cls({market: _market_from_json(market, body) for market, body in document.items()})


def fee_schedule_from_settings(settings: Settings) -> FeeSchedule:
    """The Runtime adapter factory ("fees"): the operator's schedule, else the launch defaults.

    Parsed once per process at boot, so a malformed schedule stops the worker before it takes a
    message instead of dead-lettering every order.
    """
    return FeeSchedule.from_json(settings.fee_schedule_json or DEFAULT_FEE_SCHEDULE_JSON)


def quote(fees: MarketFees, item_price_minor: int, shipping_price_minor: int) -> FeeQuote:
    """Charges for one order under `fees`, rounded as the module docstring describes."""
    _require_int("item_price_minor", item_price_minor)
    _require_int("shipping_price_minor", shipping_price_minor)
    commission = min(
        _percentage(item_price_minor, fees.commission_bps) + fees.commission_fixed_minor, item_price_minor
    )
    buyer_fee = _percentage(item_price_minor, fees.buyer_fee_bps) + fees.buyer_fee_fixed_minor
    return FeeQuote(
        commission_minor=commission,
        buyer_fee_minor=buyer_fee,
        seller_net_minor=item_price_minor - commission,
        buyer_total_minor=item_price_minor + shipping_price_minor + buyer_fee,
        currency=fees.currency,
    )


def _percentage(amount_minor: int, bps: int) -> int:
    # Half-up in integers; exact because amount_minor and bps are never negative.
    return (amount_minor * bps + BPS_SCALE // 2) // BPS_SCALE


_FIELDS = tuple(f.name for f in fields(MarketFees) if f.name != "market")


def _market_from_json(market: str, body: Any) -> MarketFees:
    if not isinstance(body, dict):
        raise ValueError(f"fee schedule market {market!r} must be an object, got {type(body).__name__}")
    # Unknown keys are rejected rather than ignored: a typo such as "comission_bps" would otherwise
    # leave the real field missing in one market only, which is easy to miss in review.
    missing = sorted(set(_FIELDS) - body.keys())
    unknown = sorted(body.keys() - set(_FIELDS))
    if missing or unknown:
        raise ValueError(
            f"fee schedule market {market!r}: missing fields {missing}, unknown fields {unknown}"
        )
    try:
        return MarketFees(market=market, **{name: body[name] for name in _FIELDS})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fee schedule market {market!r}: {exc}") from exc


def _require_market_code(market: object) -> None:
    if not (isinstance(market, str) and re.fullmatch(r"[A-Z]{2}", market)):
        raise ValueError(f"market must be an ISO 3166 alpha-2 code such as 'GB', got {market!r}")


def _require_int(name: str, value: object, *, upper: int | None = None) -> None:
    # bool is an int subclass; `true` in a JSON schedule is a mistake, not 1 basis point.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper}, got {value}")
