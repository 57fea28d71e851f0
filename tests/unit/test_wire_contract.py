"""The message contract: envelope and payload validation, the strict encoder, outbox encoding."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.broker import ALLOWED_OPTIONS, UNDECODABLE_ACTOR, StrictJSONEncoder
from shared.errors import InvalidMessage
from shared.messages import Envelope, decode_message
from shared.outbox import encode_message, follow_up_key
from tasks.fulfilment.messages import CancelOrder, PlaceOrder
from tests.factories import envelope_for, message_kwargs, place_order

encoder = StrictJSONEncoder()


def _message(**fields: object) -> dict[str, object]:
    message: dict[str, object] = {
        "queue_name": "fulfilment",
        "actor_name": "fulfilment.place_order",
        "args": [],
        "kwargs": {},
        "options": {},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": 1,
    }
    message.update(fields)
    return message


def test_a_well_formed_message_decodes_unchanged():
    message = _message(options={"retries": 2, "eta": 5})
    assert encoder.decode(encoder.encode(message)) == message


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"actor_name": "x"}).encode(), "no 'queue_name'"),
        (json.dumps(_message(args="nope")).encode(), "'args' has the wrong type"),
        (json.dumps(_message(message_timestamp=True)).encode(), "'message_timestamp' has the wrong type"),
    ],
)
def test_a_body_that_is_not_a_dramatiq_message_becomes_the_undecodable_stand_in(body, reason):
    decoded = encoder.decode(body)
    assert decoded["actor_name"] == UNDECODABLE_ACTOR
    assert reason in decoded["kwargs"]["reason"]


def test_the_stand_in_id_is_stable_for_the_same_body_so_re_recording_is_idempotent():
    assert encoder.decode(b"garbage")["message_id"] == encoder.decode(b"garbage")["message_id"]
    assert encoder.decode(b"garbage")["message_id"] != encoder.decode(b"other")["message_id"]


def test_options_outside_the_allowlist_are_dropped():
    body = encoder.encode(_message(options={"max_retries": 10_000, "pipe_target": {}, "retries": 1}))
    assert encoder.decode(body)["options"] == {"retries": 1}
    assert "max_retries" not in ALLOWED_OPTIONS


def test_a_valid_message_decodes_into_its_envelope_and_payload():
    payload = place_order()
    envelope, decoded = decode_message(PlaceOrder, message_kwargs(payload, envelope_for(payload)))
    assert decoded == payload
    assert envelope.kind == "fulfilment.place_order"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda kw: kw.pop("envelope"), "exactly envelope and payload"),
        (lambda kw: kw["envelope"].pop("idempotency_key"), "invalid envelope: idempotency_key"),
        (lambda kw: kw["envelope"].update(kind="ledger.capture_payment"), "does not match"),
        (lambda kw: kw["envelope"].update(version=99), "newer than this worker"),
        (lambda kw: kw["payload"].update(item_price_minor="12"), "invalid payload: item_price_minor"),
        (lambda kw: kw["payload"].update(currency="pounds"), "invalid payload: currency"),
        (lambda kw: kw["payload"].update(extra_field=1), "invalid payload: extra_field"),
    ],
)
def test_a_message_that_fails_validation_raises_invalid_message_naming_the_problem(mutate, reason):
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    mutate(kwargs)
    with pytest.raises(InvalidMessage, match=reason):
        decode_message(PlaceOrder, kwargs)


def test_money_fields_refuse_floats_and_negative_amounts():
    with pytest.raises(ValueError, match="item_price_minor"):
        place_order(item_price_minor=12.5)
    with pytest.raises(ValueError, match="shipping_price_minor"):
        place_order(shipping_price_minor=-1)


def test_a_buyer_cannot_buy_from_themselves():
    from tests.factories import party

    with pytest.raises(ValueError, match="different people"):
        place_order(buyer=party("same"), seller=party("same"))


def test_the_outbox_encodes_a_dramatiq_message_with_the_kind_as_actor_name():
    payload = CancelOrder(order_id=uuid.uuid4())
    envelope = Envelope(idempotency_key="k", kind=payload.kind, correlation_id="c")
    message = json.loads(encode_message(envelope, payload))
    assert message["actor_name"] == "fulfilment.cancel_order"
    assert message["queue_name"] == "fulfilment"
    assert message["kwargs"]["envelope"]["idempotency_key"] == "k"
    assert message["options"] == {}


def test_follow_up_keys_derive_from_the_parent_key_so_a_rerun_writes_the_same_keys():
    assert follow_up_key("order-placed:1", "fulfilment.cancel_order", "buyer") == (
        "order-placed:1>fulfilment.cancel_order:buyer"
    )
    assert (
        follow_up_key("order-placed:1", "ledger.capture_payment") == "order-placed:1>ledger.capture_payment"
    )


def test_a_message_enqueued_outside_a_handler_needs_an_explicit_key():
    with pytest.raises(ValueError, match="explicit idempotency_key"):
        follow_up_key(None, "fulfilment.cancel_order")
