"""`refused_character` answers printable text without scanning it, and agrees with the scan on
every text: what a field refuses did not change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.values import _scan as scanned  # the rule itself: a category lookup per character
from shared.values import refused_character


@pytest.mark.parametrize(
    "text",
    [
        "Camille Dubois",
        "12 rue Victor Hugo",
        "Zoë Ångström",
        "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627",  # a zero-width non-joiner, allowed
        "a\u00a0b",  # a non-breaking space: not printable to Python, allowed here
        "\ue000",  # private use: allowed
        "tab\there",
        "nul\x00",
        "line\u2028separator",
        "bidi\u202eoverride",
        "zero\u200bwidth space",
        "\ud800",  # a lone surrogate
        "",
    ],
)
def test_known_texts_are_judged_as_the_scan_judges_them(text: str) -> None:
    assert refused_character(text) == scanned(text)


@settings(max_examples=500)
@given(st.text(st.characters(codec=None)))
def test_any_text_is_judged_as_the_scan_judges_it(text: str) -> None:
    assert refused_character(text) == scanned(text)
