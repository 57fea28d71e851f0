"""The console masks every field the message schemas mark personal, in payloads and in free text."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel

from tests.factories import envelope_for, message_kwargs, order_body, party, place_order
from workers.dlq.console import masking

NAME, LINE1, CITY, POSTCODE = "Jane Doe", "12 Acacia Avenue", "Little Whinging", "KT22 7JZ"


def _buyer() -> dict[str, Any]:
    buyer = party("buyer-1")
    buyer |= {"name": NAME, "email": "jane.doe@example.com"}
    buyer["address"] |= {"line1": LINE1, "city": CITY, "postcode": POSTCODE}
    return buyer


def _dead_message(payload: dict[str, Any], actor: str = "fulfilment.place_order") -> dict[str, Any]:
    order = place_order()
    kwargs = message_kwargs(order, envelope_for(order))
    return {"actor_name": actor, "queue_name": "fulfilment", "kwargs": kwargs | {"payload": payload}}


def test_names_and_addresses_in_a_payload_are_masked_and_ids_kept():
    payload = order_body(buyer=_buyer())

    shown = json.dumps(masking.mask(_dead_message(payload)))

    for personal in (NAME, LINE1, CITY, POSTCODE, "jane.doe", payload["seller"]["name"]):
        assert personal not in shown
    assert payload["order_id"] in shown and "buyer-1" in shown
    assert "fulfilment.place_order" in shown and '"queue_name": "fulfilment"' in shown


def test_a_shipping_contact_and_a_notification_recipient_are_masked():
    label = {"order_id": str(uuid.uuid4()), "ship_to": {"name": NAME, "address": _buyer()["address"]}}
    recipient = {"recipient": {"user_id": "u-1", "email": "jane@example.com", "name": NAME}}

    shown = json.dumps([masking.mask(label), masking.mask(recipient)])

    assert NAME not in shown and LINE1 not in shown and "jane@" not in shown
    assert "u-1" in shown


def test_personal_values_quoted_in_a_traceback_or_reason_are_masked_there_too():
    message = _dead_message(order_body(buyer=_buyer()))
    traceback = (
        "Traceback (most recent call last):\n"
        f"  ValidationError: buyer.name input_value='{NAME}'\n"
        f"  psycopg.errors.DataError: value too long: '{LINE1}', '{CITY}', {POSTCODE!r}\n"
        "InvalidMessage: item_price_minor: Input should be a valid integer"
    )

    scrubbed = masking.scrub(traceback, masking.personal_values(message))

    for personal in (NAME, LINE1, CITY, POSTCODE):
        assert personal not in scrubbed
    assert "item_price_minor" in scrubbed and "Traceback" in scrubbed


def test_a_value_quoted_with_python_escapes_is_masked_as_well():
    buyer = _buyer()
    buyer["address"]["line1"] = "Flat 2\n12 Acacia Avenue"
    message = _dead_message(order_body(buyer=buyer))

    scrubbed = masking.scrub(f"bad line1: {buyer['address']['line1']!r}", masking.personal_values(message))

    assert "Acacia" not in scrubbed


def test_the_personal_fields_are_read_from_the_schemas_not_from_a_second_list():
    from shared.personal import Personal, personal_paths
    from tasks.fulfilment.messages import PlaceOrder
    from tasks.shipping.messages import BuyLabel

    class Contact(BaseModel):
        phone: Personal[str]
        note: str

    assert {("buyer", "name"), ("buyer", "email"), ("buyer", "address")} <= personal_paths(PlaceOrder)
    assert ("buyer", "id") not in personal_paths(PlaceOrder)
    assert {("ship_to", "name"), ("ship_to", "address")} <= personal_paths(BuyLabel)
    assert personal_paths(Contact) == {("phone",)}


def test_a_group_reason_with_numbers_normalised_is_masked_with_the_values_normalised_alike():
    message = _dead_message(order_body(buyer=_buyer()))
    normalised = "value too long for 'Jane Doe' at '<n> Acacia Avenue', KT<n> <n>JZ"

    scrubbed = masking.scrub(normalised, masking.group_values([message]))

    assert "Jane" not in scrubbed and "Acacia" not in scrubbed and "JZ" not in scrubbed


def test_a_message_with_more_personal_values_than_can_be_searched_hides_the_text_whole():
    crowd = [{"name": f"Person number {index}"} for index in range(5_000)]
    quoted = masking.personal_values({"kwargs": {"payload": {"people": crowd}}})

    scrubbed = masking.scrub("failed for Person number 17 " * 1_000, quoted)

    assert "Person" not in scrubbed
    assert scrubbed == masking.TOO_MANY_VALUES
