"""What the dead-letter recorder stores is always valid JSON that Postgres accepts."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from shared.dead_letters.record import storable, storable_json

_TRICKY = st.sampled_from(["\\", "u0000", "\\u0000", "\x00", "\ud800", "\udfff", '"', "\\\\", "é"])
_TEXT = st.lists(st.one_of(_TRICKY, st.text(max_size=5)), max_size=8).map("".join)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_the_stored_message_is_valid_json_without_nul_or_lone_surrogates(value) -> None:
    encoded = storable_json(value)

    assert json.loads(encoded) == storable(value)
    assert "\\u0000" not in encoded.replace("\\\\", "")
    assert all(
        not 0xD800 <= ord(char) <= 0xDFFF for char in json.dumps(json.loads(encoded), ensure_ascii=False)
    )


def test_text_that_only_looks_like_an_escaped_nul_is_kept_as_it_is() -> None:
    assert json.loads(storable_json({"name": "Jane \\u0000 Doe"})) == {"name": "Jane \\u0000 Doe"}
    assert json.loads(storable_json({"name": "Jane \\\\u0000 Doe"})) == {"name": "Jane \\\\u0000 Doe"}


def test_a_real_nul_is_dropped_and_a_lone_surrogate_replaced() -> None:
    assert json.loads(storable_json({"a\x00": "x\x00y\ud800"})) == {"a": "xy\ufffd"}
