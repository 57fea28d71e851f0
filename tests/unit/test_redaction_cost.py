"""Redaction costs work in proportion to its input: no content can pin a worker in a log call.

Work is counted in operations, never in wall time: the characters each regular expression is
handed (every call's input is bounded, so no call can backtrack for long) and the characters the
e-mail scanner examines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared import logs
from shared.redaction import MAX_VALUE_CHARS, Cost, email_spans, truncate

#: Room for the marker that says how much of a value was cut.
_MARKER_ROOM = 80
#: Masks may lengthen a cut value: `zip=x` becomes `zip=[redacted]`, under three times as long.
_BOUND = 3 * MAX_VALUE_CHARS + _MARKER_ROOM


@dataclass
class _Counted:
    """A compiled pattern that records the length of every string it is handed."""

    pattern: re.Pattern[str]
    inputs: list[int] = field(default_factory=list)

    def sub(self, replacement: Any, text: str) -> str:
        self.inputs.append(len(text))
        return self.pattern.sub(replacement, text)


@contextmanager
def _counting_rules() -> Iterator[list[_Counted]]:
    original = logs._VALUE_RULES
    counted = [_Counted(pattern) for pattern, _ in original]
    logs._VALUE_RULES = tuple(  # type: ignore[assignment]
        (proxy, replacement) for proxy, (_, replacement) in zip(counted, original, strict=True)
    )
    try:
        yield counted
    finally:
        logs._VALUE_RULES = original


_PIECES = st.sampled_from(
    [
        "a", "a.", "a-", "1 ", "a@", "@a", ".", "-", " ", "'", '"', "eyJa-", "x://a", "email: '",
        'password="', "12 ", "Via ", "circ_", "bearer ", "a@b.", "a@b.c", "SW1A ", "\n",
    ]
)  # fmt: skip
_RUN = st.builds(lambda piece, times: piece * times, _PIECES, st.integers(min_value=1, max_value=40_000))
_NEAR_MISS_EMAIL = st.builds(
    lambda local, labels, tail: "a" * local + "@" + "b." * labels + tail,
    st.integers(0, 30_000),
    st.integers(0, 20_000),
    st.sampled_from(["", "1", "c", "-", "@", "."]),
)
_NESTED_QUOTES = st.builds(
    lambda depth, inner: "email: " + "\"'" * depth + inner + "'\"" * (depth // 2),
    st.integers(0, 20_000),
    st.text(max_size=50),
)
_PART = st.one_of(_RUN, _NEAR_MISS_EMAIL, _NESTED_QUOTES, st.text())
ADVERSARIAL = st.lists(_PART, min_size=1, max_size=4).map("".join)


@given(ADVERSARIAL)
def test_no_regular_expression_is_handed_more_than_a_bounded_value_whatever_the_input(text: str) -> None:
    with _counting_rules() as counted:
        logs.redact_value(text)

    handed = [length for rule in counted for length in rule.inputs]
    assert max(handed, default=0) <= _BOUND
    assert len(handed) <= len(counted)


@given(ADVERSARIAL)
def test_the_email_scanner_examines_each_character_a_bounded_number_of_times(text: str) -> None:
    cost = Cost()
    email_spans(text, cost)

    assert cost.scanned <= 3 * len(text) + 1


@given(ADVERSARIAL)
def test_a_redacted_value_stays_within_a_bounded_length(text: str) -> None:
    assert len(logs.redact_text(text)) <= _BOUND


def test_a_five_megabyte_word_is_cut_to_the_limit_and_nothing_of_the_cut_word_is_kept() -> None:
    word = "jane.doe" * 650_000 + "@example.com"

    assert truncate(word) == f"[{len(word)} characters cut]"


def test_a_long_value_keeps_its_head_and_its_tail_and_says_how_much_was_cut() -> None:
    text = "Traceback (most recent call last):\n" + "  frame line\n" * 2_000 + "ValueError: the end"

    cut = truncate(text)

    assert cut.startswith("Traceback (most recent call last):")
    assert cut.endswith("ValueError: the end")
    assert "characters cut]" in cut
    assert len(cut) <= MAX_VALUE_CHARS + _MARKER_ROOM


def test_an_address_cut_in_the_middle_is_not_half_kept() -> None:
    text = "x " * (MAX_VALUE_CHARS // 4) + "jane.doe@example.com" + " y" * MAX_VALUE_CHARS

    assert "jane" not in truncate(text) or "jane.doe@example.com" in truncate(text)


def test_emails_are_still_masked_by_the_scanner() -> None:
    masked = logs.redact_text(
        "mail jane.o'neil+tag@mail.example.co.uk, or <bob@x.io>, jöe@exämple.de; not a@b or @c.com"
    )

    assert "jane" not in masked and "bob" not in masked and "jöe" not in masked
    assert masked.count("[email]") == 3
    assert "a@b" in masked and "@c.com" in masked


def test_a_value_that_is_not_text_is_rendered_and_redacted_too() -> None:
    class Shown:
        def __str__(self) -> str:
            return "call jane@example.com " + "z" * 10 * MAX_VALUE_CHARS

    redacted = logs.redact_value({"detail": Shown()})["detail"]

    assert "jane" not in redacted
    assert len(redacted) <= MAX_VALUE_CHARS + _MARKER_ROOM
