"""The order's validation at the edge, shared by the API and the message schemas (shared.values)."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.fees import DEFAULT_FEE_SCHEDULE_JSON, FeeSchedule, UnknownMarket
from tasks.fulfilment.messages import CancelOrder, PlaceOrder
from tasks.ledger.messages import CapturePayment
from tasks.notifications.messages import Recipient
from tasks.shipping.messages import Contact, VoidLabel
from tests.factories import order_body

INT64_MAX = 2**63 - 1
SCHEDULE = FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)


def _refused_fields(model: Any, data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}


@pytest.mark.parametrize("amount", [INT64_MAX + 1, 2**64, 10**30])
def test_an_amount_beyond_int64_is_refused_naming_the_field(amount: int) -> None:
    assert "item_price_minor" in _refused_fields(PlaceOrder, order_body(item_price_minor=amount))
    assert "shipping_price_minor" in _refused_fields(PlaceOrder, order_body(shipping_price_minor=amount))


def test_an_amount_just_over_the_documented_cap_is_refused_and_the_cap_itself_accepted() -> None:
    from shared.values import MAX_AMOUNT_MINOR

    assert PlaceOrder.model_validate(order_body(item_price_minor=MAX_AMOUNT_MINOR))
    over = order_body(item_price_minor=MAX_AMOUNT_MINOR + 1)
    assert "item_price_minor" in _refused_fields(PlaceOrder, over)
    # The sums the ledger books (item + shipping + fees) stay far inside a Postgres bigint.
    assert 4 * MAX_AMOUNT_MINOR < INT64_MAX


def test_a_ledger_message_refuses_an_amount_beyond_the_cap_too() -> None:
    fields = {
        "order_id": order_body()["order_id"], "seller_id": "s-1", "market": "GB", "currency": "GBP",
        "item_price_minor": INT64_MAX + 1, "shipping_price_minor": 0,
    }  # fmt: skip
    assert "item_price_minor" in _refused_fields(CapturePayment, fields)


@pytest.mark.parametrize("bad", ["\x00", "\r\n", "\n", "\r", "\t", "\x1b[31m", "\u2028", "\u202e", "\x85"])
@pytest.mark.parametrize(
    "path",
    [
        ("buyer", "name"),
        ("seller", "name"),
        ("buyer", "id"),
        ("seller", "id"),
        ("buyer", "email"),
        ("buyer", "address", "line1"),
        ("seller", "address", "city"),
        ("seller", "address", "postcode"),
    ],
)
def test_names_ids_and_addresses_with_control_characters_or_line_breaks_are_refused(
    path: tuple[str, ...], bad: str
) -> None:
    body = order_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = f"a{bad}b@example.com" if path[-1] == "email" else f"Ann{bad}Smith"
    assert ".".join(path) in _refused_fields(PlaceOrder, body)


@pytest.mark.parametrize("reason", ["buyer\x00request", "line one\r\nBcc: x@example.com", "   "])
def test_a_cancel_or_void_reason_must_be_printable_text_on_one_line(reason: str) -> None:
    order_id = order_body()["order_id"]
    assert "reason" in _refused_fields(CancelOrder, {"order_id": order_id, "reason": reason})
    assert "reason" in _refused_fields(VoidLabel, {"order_id": order_id, "reason": reason})


def test_shipping_and_notifications_refuse_a_name_with_a_line_break() -> None:
    address = order_body()["buyer"]["address"]
    assert "name" in _refused_fields(Contact, {"name": "Ann\nSmith", "address": address})
    recipient = {"user_id": "u-1", "email": "ann@example.com", "name": "Ann\r\nSmith"}
    assert "name" in _refused_fields(Recipient, recipient)


def test_accented_names_spaces_and_joiners_are_still_accepted() -> None:
    body = order_body()
    body["buyer"]["name"] = "Zoë Ångström-Núñez"
    body["seller"]["name"] = "\u0645\u0631\u06cc\u0645\u200c\u0632\u0627\u062f\u0647"  # with a ZWNJ
    body["seller"]["address"]["line1"] = "12 rue de l'Église, 2ᵉ étage"
    assert PlaceOrder.model_validate(body)


@pytest.mark.parametrize(
    "placed_at",
    [
        "9999-12-31T23:00:00-05:00",  # year 10000 once in UTC: Postgres stores it, Python cannot read it
        "9999-12-31T23:59:59+00:00",
        "1900-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+00:00",
    ],
)
def test_a_placed_at_outside_the_date_window_is_refused(placed_at: str) -> None:
    assert "placed_at" in _refused_fields(PlaceOrder, order_body(placed_at=placed_at))


def test_a_market_priced_in_another_currency_is_refused_naming_the_currency() -> None:
    from shared.fees import MarketCurrencyMismatch

    with pytest.raises(MarketCurrencyMismatch) as caught:
        SCHEDULE.for_order("GB", "USD")
    assert caught.value.field == "currency"
    assert "GBP" in str(caught.value)


def test_an_unknown_market_is_refused_naming_the_market() -> None:
    with pytest.raises(UnknownMarket) as caught:
        SCHEDULE.for_order("ZZ", "GBP")
    assert caught.value.field == "market"
    assert SCHEDULE.for_order("FR", "EUR").currency == "EUR"


# Any text at all, including control characters, surrogates and separators.
_text = st.text(min_size=0, max_size=40)
_amounts = st.one_of(st.integers(), st.integers(min_value=0, max_value=10**11))
_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC])
)


@given(name=_text, line1=_text, person_id=_text, item=_amounts, shipping=_amounts, placed_at=_instants)
def test_whatever_the_validation_accepts_is_storable_printable_and_round_trips(
    name: str, line1: str, person_id: str, item: int, shipping: int, placed_at: datetime
) -> None:
    from shared.values import EARLIEST_INSTANT, LATEST_INSTANT, MAX_AMOUNT_MINOR

    body = order_body(item_price_minor=item, shipping_price_minor=shipping, placed_at=placed_at.isoformat())
    body["buyer"].update(name=name, id=person_id)
    body["buyer"]["address"]["line1"] = line1
    try:
        order = PlaceOrder.model_validate(body)
    except ValidationError:
        return
    for text in (order.buyer.name, order.buyer.id, order.buyer.address.line1):
        assert text.strip() and "\x00" not in text
        refused = {"Cc", "Cs", "Zl", "Zp"}
        assert not any(unicodedata.category(ch) in refused for ch in text)
        assert all(ch in "\u200c\u200d" for ch in text if unicodedata.category(ch) == "Cf")
        assert not any(ch in text for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        text.encode("utf-8")  # no lone surrogates: Postgres and SMTP both need valid UTF-8
    assert 0 < order.item_price_minor <= MAX_AMOUNT_MINOR
    assert 0 <= order.shipping_price_minor <= MAX_AMOUNT_MINOR
    assert EARLIEST_INSTANT <= order.placed_at < LATEST_INSTANT
    assert PlaceOrder.model_validate(json.loads(order.model_dump_json())) == order


@given(
    name=st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=100),
    item=st.integers(min_value=1, max_value=10**10),
)
def test_printable_names_and_amounts_within_the_cap_are_always_accepted(name: str, item: int) -> None:
    body = order_body(item_price_minor=item)
    body["buyer"]["name"] = name
    assert PlaceOrder.model_validate(body).buyer.name == name
