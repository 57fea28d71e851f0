from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import PermanentError
from shared.fees import (
    DEFAULT_FEE_SCHEDULE_JSON,
    FeeSchedule,
    MarketFees,
    UnknownMarket,
    quote,
)


def fees(
    *,
    commission_bps: int = 0,
    commission_fixed_minor: int = 0,
    buyer_fee_bps: int = 0,
    buyer_fee_fixed_minor: int = 0,
    market: str = "GB",
    currency: str = "GBP",
) -> MarketFees:
    return MarketFees(
        market=market,
        currency=currency,
        commission_bps=commission_bps,
        commission_fixed_minor=commission_fixed_minor,
        buyer_fee_bps=buyer_fee_bps,
        buyer_fee_fixed_minor=buyer_fee_fixed_minor,
    )


def schedule_json(**markets: dict[str, object]) -> str:
    return json.dumps(markets)


GB_BODY: dict[str, object] = {
    "currency": "GBP",
    "commission_bps": 500,
    "commission_fixed_minor": 0,
    "buyer_fee_bps": 500,
    "buyer_fee_fixed_minor": 70,
}


@pytest.mark.parametrize(
    ("item_price_minor", "expected"),
    [(1010, 51), (1009, 50), (1030, 52), (10, 1), (9, 0), (0, 0), (1000, 50)],
)
def test_the_percentage_part_rounds_half_up_to_the_minor_unit(item_price_minor: int, expected: int) -> None:
    result = quote(fees(buyer_fee_bps=500, commission_bps=500), item_price_minor, 0)

    assert result.buyer_fee_minor == expected
    assert result.commission_minor == expected


def test_the_fixed_part_is_added_after_rounding() -> None:
    result = quote(fees(buyer_fee_bps=500, buyer_fee_fixed_minor=70, commission_fixed_minor=25), 1010, 0)

    assert result.buyer_fee_minor == 51 + 70
    assert result.commission_minor == 25


def test_the_buyer_pays_item_shipping_and_buyer_fee() -> None:
    result = quote(fees(buyer_fee_bps=500, buyer_fee_fixed_minor=70), 2000, 389)

    assert result.buyer_total_minor == 2000 + 389 + 100 + 70


def test_the_seller_receives_the_item_price_less_commission() -> None:
    result = quote(fees(commission_bps=1000), 2500, 389)

    assert result.commission_minor == 250
    assert result.seller_net_minor == 2250


def test_the_commission_is_capped_at_the_item_price() -> None:
    result = quote(fees(commission_bps=1000, commission_fixed_minor=100), 50, 0)

    assert result.commission_minor == 50
    assert result.seller_net_minor == 0


def test_the_quote_is_in_the_currency_of_the_market() -> None:
    schedule = FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)

    assert quote(schedule["US"], 1000, 0).currency == "USD"
    assert quote(schedule["FR"], 1000, 0).currency == "EUR"


@pytest.mark.parametrize(("item", "shipping"), [(-1, 0), (0, -1)])
def test_a_negative_price_is_rejected(item: int, shipping: int) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        quote(fees(), item, shipping)


def test_a_float_price_is_rejected() -> None:
    with pytest.raises(TypeError, match="integer"):
        quote(fees(), 10.5, 0)  # type: ignore[arg-type]


@given(
    item=st.integers(min_value=0, max_value=10**9),
    shipping=st.integers(min_value=0, max_value=10**7),
    commission_bps=st.integers(min_value=0, max_value=10_000),
    commission_fixed=st.integers(min_value=0, max_value=10_000),
    buyer_fee_bps=st.integers(min_value=0, max_value=10_000),
    buyer_fee_fixed=st.integers(min_value=0, max_value=10_000),
)
def test_any_quote_splits_the_buyer_total_exactly_and_never_leaves_the_seller_negative(
    item: int,
    shipping: int,
    commission_bps: int,
    commission_fixed: int,
    buyer_fee_bps: int,
    buyer_fee_fixed: int,
) -> None:
    market = fees(
        commission_bps=commission_bps,
        commission_fixed_minor=commission_fixed,
        buyer_fee_bps=buyer_fee_bps,
        buyer_fee_fixed_minor=buyer_fee_fixed,
    )

    result = quote(market, item, shipping)

    assert 0 <= result.seller_net_minor <= item
    parts = result.seller_net_minor + result.commission_minor + result.buyer_fee_minor + shipping
    assert result.buyer_total_minor == parts


def test_the_default_schedule_covers_the_launch_markets() -> None:
    schedule = FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)

    assert {market: fees.currency for market, fees in schedule.items()} == {
        "GB": "GBP",
        "US": "USD",
        "FR": "EUR",
        "DE": "EUR",
        "IT": "EUR",
    }
    assert all(0 <= fees.commission_bps <= 1000 for fees in schedule.values())


def test_a_schedule_is_read_from_json() -> None:
    schedule = FeeSchedule.from_json(schedule_json(GB=GB_BODY))

    assert schedule["GB"] == fees(commission_bps=500, buyer_fee_bps=500, buyer_fee_fixed_minor=70)
    assert len(schedule) == 1
    assert "GB" in schedule


def test_an_unknown_market_is_a_permanent_error_naming_the_market() -> None:
    schedule = FeeSchedule.from_json(schedule_json(GB=GB_BODY))

    with pytest.raises(UnknownMarket, match="'SE'") as raised:
        schedule["SE"]

    assert isinstance(raised.value, PermanentError)
    assert "known: GB" in str(raised.value)


def test_an_unknown_market_still_behaves_as_a_missing_mapping_key() -> None:
    schedule = FeeSchedule.from_json(schedule_json(GB=GB_BODY))

    assert "SE" not in schedule
    assert schedule.get("SE") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object of markets"),
        (schedule_json(GB="GBP"), "market 'GB' must be an object"),  # type: ignore[arg-type]
        (schedule_json(GB={**GB_BODY, "comission_bps": 1}), "unknown fields \\['comission_bps'\\]"),
        (
            schedule_json(GB={k: v for k, v in GB_BODY.items() if k != "currency"}),
            "missing fields \\['currency'\\]",
        ),
        (schedule_json(GB={**GB_BODY, "commission_bps": 5.5}), "'GB': commission_bps must be an integer"),
        (schedule_json(GB={**GB_BODY, "commission_bps": True}), "commission_bps must be an integer"),
        (schedule_json(GB={**GB_BODY, "buyer_fee_bps": 10_001}), "buyer_fee_bps must be at most 10000"),
        (
            schedule_json(GB={**GB_BODY, "buyer_fee_fixed_minor": -70}),
            "buyer_fee_fixed_minor must not be negative",
        ),
        (schedule_json(GB={**GB_BODY, "currency": "pounds"}), "ISO 4217"),
        (schedule_json(gb=GB_BODY), "ISO 3166"),
    ],
)
def test_a_bad_schedule_is_rejected_with_a_message_naming_the_fault(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeeSchedule.from_json(text)


def test_a_schedule_cannot_file_fees_under_another_market() -> None:
    with pytest.raises(ValueError, match="key 'FR' holds the fees of market 'GB'"):
        FeeSchedule({"FR": fees(market="GB")})
