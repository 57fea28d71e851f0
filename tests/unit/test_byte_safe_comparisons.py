"""Signatures and tokens from outside are compared as bytes: odd characters mismatch, never crash."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.shipping.webhooks import InvalidSignature, sign, verify
from workers.dlq.console import cookie as session_cookie

SECRET = b"s" * 32
WEBHOOK_SECRET = "whsec_test"
NOW = 1_764_000_000


@pytest.mark.parametrize("candidate", ["\u00e9" * 64, "\x00", "\U0001f600", "\ud800"])
def test_a_non_ascii_webhook_signature_is_an_invalid_signature(candidate: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, b"{}", f"t={NOW},v1={candidate}", now=NOW)


@pytest.mark.parametrize("mac", ["\u00e9" * 64, "\x00", "\ud800"])
def test_a_non_ascii_cookie_signature_is_no_session(mac: str) -> None:
    cookie = session_cookie.sign(session_cookie.new_session("olivia", now=NOW), SECRET)
    body = cookie.rpartition(".")[0]

    assert session_cookie.unsign(f"{body}.{mac}", SECRET, now=NOW) is None


@pytest.mark.parametrize("token", ["\u00e9\u00e9", "\x00", "\ud800"])
def test_a_non_ascii_csrf_value_does_not_match(token: str) -> None:
    assert not session_cookie.csrf_ok(session_cookie.new_session(None, now=NOW), token)


@given(header=st.text(max_size=300), body=st.binary(max_size=200))
def test_any_webhook_signature_header_verifies_or_raises_invalid_signature(header: str, body: bytes) -> None:
    with contextlib.suppress(InvalidSignature):
        verify(WEBHOOK_SECRET, body, header, now=NOW)


@given(v1=st.text(alphabet=st.characters(blacklist_characters=","), max_size=80))
def test_any_v1_value_next_to_a_good_timestamp_verifies_only_when_it_is_the_signature(v1: str) -> None:
    good = sign(WEBHOOK_SECRET, b"{}", NOW).partition("v1=")[2]
    try:
        verify(WEBHOOK_SECRET, b"{}", f"t={NOW},v1={v1}", now=NOW)
    except InvalidSignature:
        assert v1.strip() != good
    else:
        assert v1.strip() == good


@given(cookie=st.text(max_size=300), csrf=st.one_of(st.none(), st.text(max_size=80)))
def test_any_cookie_and_csrf_value_is_a_session_or_none_and_never_a_crash(
    cookie: str, csrf: str | None
) -> None:
    session = session_cookie.unsign(cookie, SECRET, now=NOW)
    assert session is None or isinstance(session, session_cookie.ConsoleSession)
    assert session_cookie.csrf_ok(session, csrf) in (True, False)
