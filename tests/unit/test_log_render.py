"""`render` writes a line's fields as `redact` and the JSON encoder wrote them: the same text.

The rendering is field by field, with a cache of the fields whose values recur; these tests hold it
to the two steps it replaces, byte for byte, whatever the fields hold, on a first line and on the
lines after it (when the fields come from the cache).
"""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import logs
from shared.logs import _ENCODER, redact, render


def _before(event: dict[Any, Any]) -> str:
    return _ENCODER.encode(redact(None, "", dict(event)))


class Colour(enum.IntEnum):
    RED = 1


class Opaque:
    def __str__(self) -> str:
        return "Ada Lovelace, 12 High Street, ada@example.com"


_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "succeeded", "fulfilment", "bench.record_sale", "/v1/orders", "POST", "MainThread",
            "0f8e3c7a-8a4c-4c1c-9a7e-2c0b2d0d4f11", "ada@example.com", "12 High Street", "SW1A 1AA",
            "Bearer abcdefghijkl", "circ_abcdefghijklmnop", "é ü \u2028 \x00 \"quoted\" \\",
            "x" * 64, "y" * 65,
        ]
    ),
)  # fmt: skip
_KEYS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["email", "address", "line1", "postcode", "token", "event", "order_id", "apiKey"]),
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), _TEXT,
    st.just(Colour.RED), st.just(Opaque()),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=400)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_a_line_renders_as_redact_then_the_encoder_did_on_first_sight_and_from_the_cache(
    event: dict[str, Any],
) -> None:
    expected = _before(event)
    assert render(event) == expected
    assert render(event) == expected  # recurring fields now come from the cache


@pytest.mark.parametrize(
    "event",
    [
        {1: "one", "two": 2},
        {None: "x"},
        {"ratio": math.nan, "limit": math.inf, "floor": -math.inf, "half": 0.5},
        {"colour": Colour.RED, "flag": True, "nothing": None, "big": 10**30},
    ],
    ids=["int-key", "none-key", "non-finite-floats", "int-subclass-bool-none-big"],
)
def test_keys_and_numbers_the_encoder_treats_apart_render_as_before(event: dict[Any, Any]) -> None:
    assert render(event) == _before(event)


def test_the_cache_of_recurring_fields_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_RENDERED", {})
    for n in range(logs._RENDERED_KEPT * 3):
        render({"message_id": f"id-{n}"})
    assert len(logs._RENDERED) <= logs._RENDERED_KEPT
