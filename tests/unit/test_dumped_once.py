"""The API dumps a payload once and encodes its answer once: the same bytes as before, fewer passes."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse

from shared.idempotency import content_hash, content_hash_of
from shared.messages import Envelope
from shared.outbox import encode_message
from tests.factories import party, place_order
from workers.api.intake import Submission, _accepted_body


def test_a_content_hash_of_dumped_data_is_the_payload_s_content_hash() -> None:
    order = place_order(buyer=party("Zoë"))
    assert content_hash_of(order.kind, order.model_dump(mode="json")) == content_hash(order.kind, order)


def test_a_message_encoded_from_dumped_data_is_the_same_bytes() -> None:
    order = place_order(buyer=party("Zoë"))
    envelope = Envelope(idempotency_key="k", kind=order.kind, correlation_id="c")
    dumped = encode_message(envelope, order, payload_data=order.model_dump(mode="json"))
    assert dumped == encode_message(envelope, order)


def test_the_accepted_answer_is_encoded_as_the_framework_s_json_response_renders_it() -> None:
    order = place_order()
    submission = Submission(
        service="checkout",
        http_key="key",
        digest="d",
        payload=order,
        payload_data=order.model_dump(mode="json"),
        message_key=f"order-placed:{order.order_id}",
        order_id=order.order_id,
        correlation_id="corrélation-" + str(uuid.uuid4()),
        traceparent=None,
    )
    rendered = JSONResponse(content=_accepted_body(submission, submission.envelope)).body
    assert submission.accepted_json.encode() == rendered
