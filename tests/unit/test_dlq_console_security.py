"""The console's pure safety pieces: masking, the signed session cookie, password hashes."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.errors import ConfigurationError
from workers.dlq.console import cookie as session_cookie
from workers.dlq.console import masking, users

SECRET = b"s" * 32


def test_personal_and_secret_fields_are_masked_whole_and_ids_are_kept():
    payload = {
        "order_id": "o-1",
        "buyer": {"id": "b-1", "email": "b@example.com", "address": {"line1": "1 High St", "postcode": "N1"}},
        "company_name": "Acme",
        "api_token": "t0k3n",
        "items": [{"card_number": "4111111111111111"}],
    }

    masked = masking.mask(payload)

    assert masked == {
        "order_id": "o-1",
        "buyer": {"id": "b-1", "email": masking.MASK, "address": masking.MASK},
        "company_name": "Acme",
        "api_token": masking.MASK,
        "items": [{"card_number": masking.MASK}],
    }


def test_emails_and_card_numbers_in_free_text_are_scrubbed():
    text = (
        "input_value='jo@example.co.uk' card 4111 1111 1111 1111, order 8f14e45f-ceea-467f-a0e6-7c8b0d3e0a11"
    )

    scrubbed = masking.scrub(text)

    assert "example.co.uk" not in scrubbed and "4111" not in scrubbed
    assert "8f14e45f-ceea-467f-a0e6-7c8b0d3e0a11" in scrubbed


def test_a_signed_session_round_trips_and_any_change_to_it_is_rejected():
    session = session_cookie.new_session("olivia", now=1000)
    cookie = session_cookie.sign(session, SECRET)

    assert session_cookie.unsign(cookie, SECRET, now=1001) == session
    body, _, mac = cookie.rpartition(".")
    forged = session_cookie.sign(
        session_cookie.ConsoleSession("mallory", session.csrf, session.expires), b"x" * 32
    )
    flipped = mac[:-1] + ("1" if mac[-1] == "0" else "0")  # always a different last digit
    for bad in (f"{body}.{flipped}", forged, "garbage", "", None, f"{body}x.{mac}"):
        assert session_cookie.unsign(bad, SECRET, now=1001) is None
    assert session_cookie.unsign(cookie, SECRET, now=session.expires + 1) is None


def test_the_csrf_check_needs_the_sessions_own_token():
    session = session_cookie.new_session(None, now=0)

    assert session_cookie.csrf_ok(session, session.csrf)
    assert not session_cookie.csrf_ok(session, "guess")
    assert not session_cookie.csrf_ok(session, None)
    assert not session_cookie.csrf_ok(None, session.csrf)


class _Settings:
    def __init__(self, secret: object) -> None:
        self.console_secret = secret


@pytest.mark.parametrize(
    "settings", [object(), _Settings(None), _Settings("short"), _Settings(SecretStr(""))]
)
def test_the_console_refuses_to_sign_without_a_real_secret(settings):
    with pytest.raises(ConfigurationError, match="CIRCULATE_CONSOLE_SECRET"):
        session_cookie.console_secret(settings)


def test_a_secret_str_setting_is_accepted():
    assert session_cookie.console_secret(_Settings(SecretStr("k" * 40))) == b"k" * 40


def test_a_password_hash_verifies_only_its_own_password():
    stored = users.hash_password("correct horse battery")

    assert stored.startswith("scrypt$16384$8$1$")
    assert users.verify_password("correct horse battery", stored)
    assert not users.verify_password("correct horse batterY", stored)
    assert not users.verify_password("anything", "not-a-hash")
    assert users.hash_password("same") != users.hash_password("same")  # salted
