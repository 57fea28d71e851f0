"""The API dumps a payload once and encodes its answer once: the same bytes as before, fewer passes."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.idempotency import canonical_json, content_hash, content_hash_of, content_hash_of_json
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


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300)
@given(kind=st.text(max_size=30), payload=st.dictionaries(st.text(max_size=10), _JSON, max_size=6))
def test_a_content_hash_from_the_canonical_json_hashes_the_bytes_it_always_hashed(
    kind: str, payload: dict[str, Any]
) -> None:
    always = json.dumps({"kind": kind, "payload": payload}, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(always.encode()).hexdigest()
    assert content_hash_of_json(kind, canonical_json(payload)) == expected == content_hash_of(kind, payload)


def test_a_message_encoded_from_the_canonical_json_carries_the_same_message() -> None:
    order = place_order(buyer=party("zoë", line1='12 "Le Petit" Rue'))
    envelope = Envelope(idempotency_key="k", kind=order.kind, correlation_id="c")
    spliced = encode_message(envelope, order, payload_json=canonical_json(order.model_dump(mode="json")))
    assert json.loads(spliced) == json.loads(encode_message(envelope, order))


def test_the_accepted_answer_is_encoded_as_the_framework_s_json_response_renders_it() -> None:
    order = place_order()
    submission = Submission(
        service="checkout",
        http_key="key",
        method="POST",
        path="/v1/orders",
        digest="d",
        payload=order,
        payload_data=order.model_dump(mode="json"),
        payload_json=canonical_json(order.model_dump(mode="json")),
        message_key=f"order-placed:{order.order_id}",
        order_id=order.order_id,
        correlation_id="corrélation-" + str(uuid.uuid4()),
        traceparent=None,
    )
    rendered = JSONResponse(content=_accepted_body(submission, submission.envelope)).body
    assert submission.accepted_json.encode() == rendered
