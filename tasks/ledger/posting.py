"""Double-entry posting rules: which accounts move, by how much, for each money event of an order.

Amounts are signed integers in minor units: a debit is positive and a credit negative, so a
transaction balances exactly when its entries sum to zero in each currency. The rules build
transactions through `JournalTransaction.balanced`, which refuses an unbalanced one with
`UnbalancedPosting` instead of letting it reach the journal.

    payment_captured   buyer_payments_clearing   Dr buyer_total
                       seller:<id>:pending       Cr seller_net
                       commission_revenue        Cr commission
                       buyer_fee_revenue         Cr buyer_fee
                       carrier_payable           Cr shipping
    funds_released     seller:<id>:pending       Dr seller_net
                       seller:<id>:available     Cr seller_net
    payment_reversed   every capture credit above, debited back
                       refunds_payable           Cr buyer_total

A reversal undoes the capture only while the seller's net is still pending: once funds are released
they may already be paid out, and clawing them back is a different process. The order state machine
(`tasks.fulfilment.states`) guarantees the ordering: an order can be cancelled (and so reversed) only
before it ships, and funds are released only after delivery. The money the buyer paid stays in
clearing and is now owed back through refunds_payable until the payment provider confirms the refund.

Each posting key is derived from the kind and the order, so replaying the same event produces the same
key; `same_content` (and `content_hash`, its stored form) tells an honest replay from a conflicting one.

The capture fixes the order's terms. Release and reversal are built from `capture_terms` of the stored
capture, not from a fresh quote, so an order captured before the fee schedule changed is released and
reversed at the fees it was charged, and the seller's pending account always nets to zero.

Lines of zero are left out: a zero-commission market would otherwise write a commission_revenue line
that carries no information on every order.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from shared.errors import PermanentError
from shared.fees import FeeQuote
from shared.money import Money

BUYER_PAYMENTS_CLEARING = "buyer_payments_clearing"
COMMISSION_REVENUE = "commission_revenue"
BUYER_FEE_REVENUE = "buyer_fee_revenue"
CARRIER_PAYABLE = "carrier_payable"
REFUNDS_PAYABLE = "refunds_payable"

PAYMENT_CAPTURED = "payment_captured"
FUNDS_RELEASED = "funds_released"
PAYMENT_REVERSED = "payment_reversed"

#: Seller accounts are `seller:<id>:pending` and `seller:<id>:available`; ids are checkout's strings.
_SELLER, _PENDING = "seller:", ":pending"


def seller_pending(seller_id: str) -> str:
    """Owed to the seller but held until the buyer has the item."""
    return f"{_SELLER}{seller_id}{_PENDING}"


def seller_available(seller_id: str) -> str:
    """Owed to the seller and free to pay out."""
    return f"seller:{seller_id}:available"


def posting_key(kind: str, order_id: UUID) -> str:
    """One posting per kind and order: the key the journal's unique index deduplicates on."""
    return f"{kind}:{order_id}"


class UnbalancedPosting(PermanentError):
    """A transaction whose entries do not sum to zero in some currency: a bug in a rule, never retried."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transaction; debit positive, credit negative."""

    account: str
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        Money(self.amount_minor, self.currency)  # the same integer and ISO 4217 rules as any amount


@dataclass(frozen=True, slots=True)
class JournalTransaction:
    """A set of entries posted together under one key.

    The plain constructor does not check the balance, so that a transaction read back from storage is
    taken as stored (and can be audited); rules build through `balanced`, which does.
    """

    posting_key: str
    kind: str
    order_id: UUID
    entries: tuple[Entry, ...]

    @classmethod
    def balanced(
        cls, *, posting_key: str, kind: str, order_id: UUID, entries: Iterable[Entry]
    ) -> JournalTransaction:
        """Build a transaction, refusing one that does not balance in every currency."""
        transaction = cls(posting_key=posting_key, kind=kind, order_id=order_id, entries=tuple(entries))
        if imbalance := transaction.imbalance():
            raise UnbalancedPosting(f"{posting_key} does not balance: off by {imbalance}")
        return transaction

    def imbalance(self) -> dict[str, int]:
        """Sum of entries per currency, for the currencies that do not sum to zero."""
        totals: defaultdict[str, int] = defaultdict(int)
        for entry in self.entries:
            totals[entry.currency] += entry.amount_minor
        return {currency: total for currency, total in totals.items() if total}


def payment_captured(
    order_id: UUID, seller_id: str, quote: FeeQuote, shipping_price_minor: int
) -> JournalTransaction:
    """The buyer has paid: split the payment between the seller (held), the marketplace and the carrier."""
    lines = _capture_lines(seller_id, quote, shipping_price_minor)
    return _rule(PAYMENT_CAPTURED, order_id, quote.currency, lines)


def funds_released(order_id: UUID, seller_id: str, quote: FeeQuote) -> JournalTransaction:
    """The hold has elapsed: the seller's net becomes available for payout."""
    net = quote.seller_net_minor
    lines = [(seller_pending(seller_id), net), (seller_available(seller_id), -net)]
    return _rule(FUNDS_RELEASED, order_id, quote.currency, lines)


def payment_reversed(
    order_id: UUID, seller_id: str, quote: FeeQuote, shipping_price_minor: int
) -> JournalTransaction:
    """Undo a capture before release: debit back every capture credit and owe the buyer what they paid.

    Built from the capture's own lines rather than restated, so the two rules cannot drift apart.
    """
    capture = _capture_lines(seller_id, quote, shipping_price_minor)
    debits = [(account, -amount) for account, amount in capture if account != BUYER_PAYMENTS_CLEARING]
    lines = [*debits, (REFUNDS_PAYABLE, -quote.buyer_total_minor)]
    return _rule(PAYMENT_REVERSED, order_id, quote.currency, lines)


def same_content(a: JournalTransaction, b: JournalTransaction) -> bool:
    """Whether two transactions book the same thing: an honest replay rather than a conflict.

    Entries are compared as a multiset because their order carries no meaning and storage may return
    them in any order. The posting key is not compared: callers match on it first.
    """
    return (a.kind, a.order_id) == (b.kind, b.order_id) and Counter(a.entries) == Counter(b.entries)


def content_hash(transaction: JournalTransaction) -> str:
    """SHA-256 of what a transaction books, stored beside it so that a replay is told from a conflict
    with one comparison. Canonical in the same sense as `same_content`: entry order and key ignored."""
    entries = sorted([e.account, e.amount_minor, e.currency] for e in transaction.entries)
    document = {"kind": transaction.kind, "order_id": str(transaction.order_id), "entries": entries}
    return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CaptureTerms:
    """What a stored capture fixed for its order: the quote of the day, the shipping and the seller.

    `seller_id` is None when the seller's net was zero, since a zero line is not written.
    """

    quote: FeeQuote
    shipping_price_minor: int
    seller_id: str | None

    @property
    def item_price_minor(self) -> int:
        return self.quote.seller_net_minor + self.quote.commission_minor

    def disagreements(
        self, *, seller_id: str, currency: str, item_price_minor: int, shipping_price_minor: int
    ) -> list[str]:
        """The terms of a later message that differ from the capture's; empty when it is the same order."""
        pairs = {
            "seller_id": (seller_id, self.seller_id if self.seller_id is not None else seller_id),
            "currency": (currency, self.quote.currency),
            "item_price_minor": (item_price_minor, self.item_price_minor),
            "shipping_price_minor": (shipping_price_minor, self.shipping_price_minor),
        }
        return [f"{name} {got!r} != captured {had!r}" for name, (got, had) in pairs.items() if got != had]


def capture_terms(capture: JournalTransaction) -> CaptureTerms:
    """Read an order's terms back from its capture: the inverse of `payment_captured`."""
    currencies = {entry.currency for entry in capture.entries}
    if capture.kind != PAYMENT_CAPTURED or len(currencies) != 1:
        raise ValueError(f"{capture.posting_key} is not a capture in one currency")
    amounts = {entry.account: entry.amount_minor for entry in capture.entries}
    sellers = [a for a in amounts if a.startswith(_SELLER) and a.endswith(_PENDING)]
    seller_id = sellers[0].removeprefix(_SELLER).removesuffix(_PENDING) if sellers else None
    fee_quote = FeeQuote(
        commission_minor=-amounts.get(COMMISSION_REVENUE, 0),
        buyer_fee_minor=-amounts.get(BUYER_FEE_REVENUE, 0),
        seller_net_minor=-sum(amounts[a] for a in sellers),
        buyer_total_minor=amounts.get(BUYER_PAYMENTS_CLEARING, 0),
        currency=currencies.pop(),
    )
    return CaptureTerms(fee_quote, -amounts.get(CARRIER_PAYABLE, 0), seller_id)


def _capture_lines(seller_id: str, quote: FeeQuote, shipping_price_minor: int) -> list[tuple[str, int]]:
    return [
        (BUYER_PAYMENTS_CLEARING, quote.buyer_total_minor),
        (seller_pending(seller_id), -quote.seller_net_minor),
        (COMMISSION_REVENUE, -quote.commission_minor),
        (BUYER_FEE_REVENUE, -quote.buyer_fee_minor),
        (CARRIER_PAYABLE, -shipping_price_minor),
    ]


def _rule(kind: str, order_id: UUID, currency: str, lines: Iterable[tuple[str, int]]) -> JournalTransaction:
    entries = (Entry(account, amount, currency) for account, amount in lines if amount)
    return JournalTransaction.balanced(
        posting_key=posting_key(kind, order_id), kind=kind, order_id=order_id, entries=entries
    )
