from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.fees import FeeQuote, MarketFees, quote
from tasks.ledger import posting
from tasks.ledger.posting import (
    BUYER_FEE_REVENUE,
    BUYER_PAYMENTS_CLEARING,
    CARRIER_PAYABLE,
    COMMISSION_REVENUE,
    REFUNDS_PAYABLE,
    CaptureTerms,
    Entry,
    JournalTransaction,
    UnbalancedPosting,
    capture_terms,
    content_hash,
    funds_released,
    payment_captured,
    payment_reversed,
    same_content,
    seller_available,
    seller_pending,
)
from tests.ledger_audit import find_violations, trial_balance

ORDER = UUID("00000000-0000-0000-0000-0000000000aa")
SELLER = "seller-bb"
GB = MarketFees(
    market="GB",
    currency="GBP",
    commission_bps=500,
    commission_fixed_minor=0,
    buyer_fee_bps=500,
    buyer_fee_fixed_minor=70,
)
SHIPPING = 389
QUOTE = quote(GB, 2000, SHIPPING)  # commission 100, buyer fee 170, seller net 1900, buyer total 2559


def lines(transaction: JournalTransaction) -> dict[str, int]:
    return {entry.account: entry.amount_minor for entry in transaction.entries}


def all_entries(transactions: Iterable[JournalTransaction]) -> list[Entry]:
    return [entry for transaction in transactions for entry in transaction.entries]


def test_a_capture_debits_clearing_and_credits_seller_marketplace_and_carrier() -> None:
    transaction = payment_captured(ORDER, SELLER, QUOTE, SHIPPING)

    assert transaction.posting_key == f"payment_captured:{ORDER}"
    assert transaction.kind == "payment_captured"
    assert lines(transaction) == {
        BUYER_PAYMENTS_CLEARING: 2559,
        f"seller:{SELLER}:pending": -1900,
        COMMISSION_REVENUE: -100,
        BUYER_FEE_REVENUE: -170,
        CARRIER_PAYABLE: -389,
    }
    assert {entry.currency for entry in transaction.entries} == {"GBP"}


def test_a_release_moves_the_seller_net_from_pending_to_available() -> None:
    transaction = funds_released(ORDER, SELLER, QUOTE)

    assert transaction.posting_key == f"funds_released:{ORDER}"
    assert lines(transaction) == {f"seller:{SELLER}:pending": 1900, f"seller:{SELLER}:available": -1900}


def test_a_reversal_debits_back_every_capture_credit_and_owes_the_buyer_total() -> None:
    transaction = payment_reversed(ORDER, SELLER, QUOTE, SHIPPING)

    assert transaction.posting_key == f"payment_reversed:{ORDER}"
    assert lines(transaction) == {
        f"seller:{SELLER}:pending": 1900,
        COMMISSION_REVENUE: 100,
        BUYER_FEE_REVENUE: 170,
        CARRIER_PAYABLE: 389,
        REFUNDS_PAYABLE: -2559,
    }


def test_a_zero_commission_writes_no_commission_line() -> None:
    free_market = quote(MarketFees("GB", "GBP", 0, 0, 500, 70), 2000, SHIPPING)

    transaction = payment_captured(ORDER, SELLER, free_market, SHIPPING)

    assert COMMISSION_REVENUE not in lines(transaction)


def test_a_capture_with_a_shipping_price_the_quote_did_not_include_is_refused() -> None:
    with pytest.raises(
        UnbalancedPosting, match=r"payment_captured:.* does not balance: off by \{'GBP': -1\}"
    ):
        payment_captured(ORDER, SELLER, QUOTE, SHIPPING + 1)


def test_an_unbalanced_transaction_cannot_be_built_through_the_factory() -> None:
    with pytest.raises(UnbalancedPosting):
        JournalTransaction.balanced(
            posting_key="k",
            kind="test",
            order_id=ORDER,
            entries=[Entry("a", 5, "GBP"), Entry("b", -4, "GBP")],
        )


def test_a_transaction_must_balance_in_each_currency_separately() -> None:
    transaction = JournalTransaction(
        posting_key="k", kind="test", order_id=ORDER, entries=(Entry("a", 5, "GBP"), Entry("b", -5, "EUR"))
    )

    assert transaction.imbalance() == {"GBP": 5, "EUR": -5}


def test_an_entry_amount_must_be_an_integer_in_an_iso_currency() -> None:
    with pytest.raises(TypeError):
        Entry("a", 1.5, "GBP")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Entry("a", 1, "gbp")


def test_seller_accounts_are_named_by_seller() -> None:
    assert seller_pending(SELLER) == "seller:seller-bb:pending"
    assert seller_available(SELLER) == "seller:seller-bb:available"


def test_the_trial_balance_lists_each_account_per_currency() -> None:
    journal = [payment_captured(ORDER, SELLER, QUOTE, SHIPPING), funds_released(ORDER, SELLER, QUOTE)]

    balance = trial_balance(all_entries(journal))

    assert balance["GBP"][seller_pending(SELLER)] == 0
    assert balance["GBP"][seller_available(SELLER)] == -1900
    assert sum(balance["GBP"].values()) == 0


def test_a_sound_journal_has_no_violations() -> None:
    journal = [payment_captured(ORDER, SELLER, QUOTE, SHIPPING), funds_released(ORDER, SELLER, QUOTE)]

    assert find_violations(journal) == []


def test_violations_name_unbalanced_transactions_and_reused_keys() -> None:
    capture = payment_captured(ORDER, SELLER, QUOTE, SHIPPING)
    broken = JournalTransaction("broken:1", "test", ORDER, (Entry("a", 3, "GBP"),))
    conflicting = payment_captured(ORDER, SELLER, quote(GB, 2001, SHIPPING), SHIPPING)

    violations = find_violations([capture, broken, capture, conflicting])

    assert violations == [
        "broken:1: unbalanced, entries sum to {'GBP': 3}",
        f"{capture.posting_key}: posted 3 times with different content",
    ]


def test_an_honest_replay_is_the_same_content_whatever_the_entry_order() -> None:
    capture = payment_captured(ORDER, SELLER, QUOTE, SHIPPING)
    replay = JournalTransaction(capture.posting_key, capture.kind, ORDER, tuple(reversed(capture.entries)))

    assert same_content(capture, replay)


def test_the_same_key_with_different_amounts_is_not_the_same_content() -> None:
    capture = payment_captured(ORDER, SELLER, QUOTE, SHIPPING)
    other = payment_captured(ORDER, SELLER, quote(GB, 2001, SHIPPING), SHIPPING)

    assert capture.posting_key == other.posting_key
    assert not same_content(capture, other)


def test_the_content_hash_ignores_entry_order_but_not_amounts() -> None:
    capture = payment_captured(ORDER, SELLER, QUOTE, SHIPPING)
    replay = JournalTransaction(capture.posting_key, capture.kind, ORDER, tuple(reversed(capture.entries)))
    other = payment_captured(ORDER, SELLER, quote(GB, 2001, SHIPPING), SHIPPING)

    assert content_hash(capture) == content_hash(replay)
    assert content_hash(capture) != content_hash(other)
    assert len(content_hash(capture)) == 64


def test_a_capture_gives_back_the_terms_it_was_booked_with() -> None:
    terms = capture_terms(payment_captured(ORDER, SELLER, QUOTE, SHIPPING))

    assert terms == CaptureTerms(quote=QUOTE, shipping_price_minor=SHIPPING, seller_id=SELLER)
    assert terms.item_price_minor == 2000


def test_terms_that_differ_from_the_capture_are_named() -> None:
    terms = capture_terms(payment_captured(ORDER, SELLER, QUOTE, SHIPPING))

    same = terms.disagreements(
        seller_id=SELLER, currency="GBP", item_price_minor=2000, shipping_price_minor=389
    )
    other = terms.disagreements(
        seller_id="x", currency="GBP", item_price_minor=2001, shipping_price_minor=389
    )

    assert same == []
    assert other == ["seller_id 'x' != captured 'seller-bb'", "item_price_minor 2001 != captured 2000"]


def test_only_a_capture_has_capture_terms() -> None:
    with pytest.raises(ValueError, match="not a capture"):
        capture_terms(funds_released(ORDER, SELLER, QUOTE))


# Property tests: any prices, any fees, any currency, both lifecycles.

currencies = st.sampled_from(["GBP", "EUR", "USD", "JPY"])
market_fees = st.builds(
    MarketFees,
    market=st.just("GB"),
    currency=currencies,
    commission_bps=st.integers(0, 10_000),
    commission_fixed_minor=st.integers(0, 5_000),
    buyer_fee_bps=st.integers(0, 10_000),
    buyer_fee_fixed_minor=st.integers(0, 5_000),
)
items = st.integers(0, 10**9)
shippings = st.integers(0, 10**6)


# Checkout's ids are opaque strings; ":" is included because it is the account name separator.
seller_ids = st.text(alphabet="abcdef0123456789:-_", min_size=1, max_size=40)
Order = tuple[UUID, str, FeeQuote, int]


@st.composite
def orders(draw: st.DrawFn, item_prices: st.SearchStrategy[int] = items) -> Order:
    shipping = draw(shippings)
    return draw(st.uuids()), draw(seller_ids), quote(draw(market_fees), draw(item_prices), shipping), shipping


def lifecycle(order: Order, *, reversed_: bool) -> list[JournalTransaction]:
    order_id, seller_id, fee_quote, shipping = order
    capture = payment_captured(order_id, seller_id, fee_quote, shipping)
    if reversed_:
        return [capture, payment_reversed(order_id, seller_id, fee_quote, shipping)]
    return [capture, funds_released(order_id, seller_id, fee_quote)]


@given(st.lists(st.tuples(orders(), st.booleans()), max_size=8))
def test_any_sequence_of_postings_balances_in_every_currency(
    batch: list[tuple[Order, bool]],
) -> None:
    journal = [t for order, reverse in batch for t in lifecycle(order, reversed_=reverse)]

    assert all(transaction.imbalance() == {} for transaction in journal)
    assert find_violations(journal) == []
    for currency, accounts in trial_balance(all_entries(journal)).items():
        assert sum(accounts.values()) == 0, currency


@given(orders())
def test_a_reversal_nets_every_account_but_the_buyers_money_to_zero(
    order: Order,
) -> None:
    _, _, fee_quote, _ = order

    balance = trial_balance(all_entries(lifecycle(order, reversed_=True))).get(fee_quote.currency, {})

    # The buyer's payment is still in clearing and is now owed back to the buyer; nothing else remains.
    remaining = {account: amount for account, amount in balance.items() if amount}
    expected = {
        BUYER_PAYMENTS_CLEARING: fee_quote.buyer_total_minor,
        REFUNDS_PAYABLE: -fee_quote.buyer_total_minor,
    }
    assert remaining == {k: v for k, v in expected.items() if v}


@given(orders())
def test_after_release_the_seller_is_owed_exactly_the_seller_net(
    order: Order,
) -> None:
    _, seller_id, fee_quote, _ = order

    balance = trial_balance(all_entries(lifecycle(order, reversed_=False))).get(fee_quote.currency, {})

    pending = balance.get(seller_pending(seller_id), 0)
    available = balance.get(seller_available(seller_id), 0)
    assert pending == 0
    assert -(available + pending) == fee_quote.seller_net_minor  # credit balance: owed to the seller


@given(orders(item_prices=st.integers(1, 10**9)))
def test_the_terms_read_back_from_any_capture_are_those_it_was_built_from(order: Order) -> None:
    order_id, seller_id, fee_quote, shipping = order

    terms = capture_terms(payment_captured(order_id, seller_id, fee_quote, shipping))

    # A zero net writes no seller line, so the seller cannot be read back; nothing else is lost.
    assert terms == CaptureTerms(fee_quote, shipping, seller_id if fee_quote.seller_net_minor else None)


def test_the_account_names_are_the_documented_wire_names() -> None:
    # These strings are stored in the journal; renaming one orphans every existing balance.
    assert (
        posting.BUYER_PAYMENTS_CLEARING,
        posting.COMMISSION_REVENUE,
        posting.BUYER_FEE_REVENUE,
        posting.CARRIER_PAYABLE,
        posting.REFUNDS_PAYABLE,
    ) == (
        "buyer_payments_clearing",
        "commission_revenue",
        "buyer_fee_revenue",
        "carrier_payable",
        "refunds_payable",
    )
