"""The carrier webhook signature rules, checked without servers or clocks."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from shared.errors import PermanentError
from tasks.shipping.webhooks import InvalidSignature, sign, verify

SECRET = "whsec_test"
BODY = b'{"event":"shipped","label_id":"lbl_1"}'
NOW = 1_764_000_000


def test_a_signed_body_verifies() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW)


def test_the_header_carries_the_timestamp_and_the_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_tampered_body_is_rejected() -> None:
    header = sign(SECRET, BODY, NOW)

    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, BODY.replace(b"shipped", b"delivered"), header, now=NOW)


def test_a_body_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, BODY, sign("someone-else", BODY, NOW), now=NOW)


def test_a_timestamp_edited_in_the_header_breaks_the_signature() -> None:
    header = sign(SECRET, BODY, NOW - 3600).replace(f"t={NOW - 3600}", f"t={NOW}")

    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, BODY, header, now=NOW)


@pytest.mark.parametrize("age_s", [301, -301, 86_400])
def test_a_genuine_webhook_outside_the_tolerance_is_rejected_as_stale(age_s: int) -> None:
    header = sign(SECRET, BODY, NOW - age_s)

    with pytest.raises(InvalidSignature, match="outside the 300s tolerance"):
        verify(SECRET, BODY, header, now=NOW)


def test_a_webhook_at_the_edge_of_the_tolerance_is_accepted() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW - 300), now=NOW)
    verify(SECRET, BODY, sign(SECRET, BODY, NOW - 30), now=NOW, tolerance_s=30)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_rejected(header: str | None) -> None:
    with pytest.raises(InvalidSignature, match="missing Carrier-Signature"):
        verify(SECRET, BODY, header, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=abc,v1=00",
        f"v1={'0' * 64}",
        f"t={NOW}",
        f"t={NOW},t={NOW},v1=00",
        f"t=-{NOW},v1=00",
        "t=١٢٣,v1=00",
    ],
)
def test_a_garbled_header_is_rejected(header: str) -> None:
    with pytest.raises(InvalidSignature, match="garbled"):
        verify(SECRET, BODY, header, now=NOW)


def test_any_listed_signature_may_match_while_a_secret_is_rotated() -> None:
    old = sign("old-secret", BODY, NOW).split(",")[1]
    header = f"{sign(SECRET, BODY, NOW)},{old}"

    verify(SECRET, BODY, header, now=NOW)
    verify("old-secret", BODY, header, now=NOW)


def test_a_bad_signature_is_permanent_so_the_webhook_is_never_retried_by_us() -> None:
    assert issubclass(InvalidSignature, PermanentError)
