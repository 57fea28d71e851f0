"""The mailer writes a plain notification's bytes itself, exactly as `smtplib` writes the message
the `email` package builds for it; anything else still goes through the `email` package."""

from __future__ import annotations

import email.generator
import io

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidMessage
from tasks.notifications.smtp import Mailer

SENDER = "Circulate <notifications@circulate.test>"
DATE = "Mon, 07 Dec 2026 03:44:57 +0000"
MESSAGE_ID = "<n-1f2e.email@circulate.test>"


def mailer(sender: str = SENDER) -> Mailer:
    return Mailer(host="127.0.0.1", port=25, sender=sender, timeout_s=1)


def as_smtplib_writes_it(sender: str, to: str, subject: str, body: str) -> bytes:
    """`smtplib.SMTP.send_message`'s flattening of the message `_build` makes."""
    message = mailer(sender)._build(
        to=to, subject=subject, body=body, message_id=MESSAGE_ID, headers=None, date=DATE
    )
    with io.BytesIO() as written:
        email.generator.BytesGenerator(written).flatten(message, linesep="\r\n")
        return written.getvalue()


def written_directly(sender: str, to: str, subject: str, body: str) -> bytes | None:
    return mailer(sender)._plain_email(to=to, subject=subject, body=body, message_id=MESSAGE_ID, date=DATE)


BODIES = [
    "Hello Ana,\n\nYour order 1234 is confirmed.\n\n-- Circulate\n",
    "",
    "no newline at the end",
    "\n\n\n",
    "windows\r\nline ends\r\n",
    "a lone\rcarriage return",
    ".a line starting with a dot\n..two\n",
    "x" * 78 + "\n",
    "  leading spaces\n\ttab\ntrailing  \n",
    # Lines too long for 7bit: quoted-printable, soft line breaks, "=" and trailing blanks escaped
    "x" * 79 + "\n",
    "Your order d6fb8fc2-9acc-49dc-b069-4fb85a2c89ee is confirmed. Total paid: EUR 52.44.\nThanks\n",
    "total = 5, " + "y" * 80 + " \t\nend ",
    "\n".join(f"line {n} " + "y" * (70 + n) for n in range(14)),  # more lines than the sniffed ten
    # Not ASCII: 8bit where every line fits, quoted-printable where one does not
    "Grüße\n",
    "Bonjour Léa,\n\nVotre commande est confirmée.\n",
    "Hi Zoé, your order d6fb8fc2-9acc-49dc-b069-4fb85a2c89ee is confirmed. Total paid: EUR 52.44.\n",
    "\n".join(f"ligne {n} é" + "y" * (70 + n) for n in range(14)),
]


@pytest.mark.parametrize("body", BODIES)
def test_a_plain_notification_is_written_byte_for_byte_as_before(body: str) -> None:
    expected = as_smtplib_writes_it(SENDER, "buyer1@example.com", "Your order is confirmed", body)
    assert written_directly(SENDER, "buyer1@example.com", "Your order is confirmed", body) == expected


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Votre commande est confirmée", "ok\n"),  # RFC 2047 for the subject
        ("A subject long enough that the default policy has to fold it onto a second line", "ok\n"),
        ("two  spaces", "ok\n"),
        ("ok", "Привет, " * 12 + "\n"),  # quoted-printable longer than base64: base64
        ("ok", "=" * 100 + "\n"),  # quoted-printable longer than base64: the email package picks base64
        ("ok", "a = b " * 30 + "\t\nend "),  # the same
    ],
)
def test_anything_else_is_left_to_the_email_package(subject: str, body: str) -> None:
    assert written_directly(SENDER, "buyer1@example.com", subject, body) is None


def test_a_notification_whose_line_carries_an_order_id_and_an_amount_is_written_directly() -> None:
    """Most notifications have such a line (longer than 78 characters): they took the email
    package's path, building and flattening a message, until quoted-printable was written too."""
    body = "Hi Ana,\n\nYour order d6fb8fc2-9acc-49dc-b069-4fb85a2c89ee is confirmed. Total paid: EUR 52.44.\n"
    written = written_directly(SENDER, "buyer1@example.com", "Order confirmed", body)
    assert written is not None
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in written
    assert written == as_smtplib_writes_it(SENDER, "buyer1@example.com", "Order confirmed", body)


def test_a_malformed_message_id_is_refused_on_both_paths() -> None:
    with pytest.raises(InvalidMessage):
        mailer()._plain_email(to="a@example.com", subject="s", body="b", message_id="nope", date=DATE)


_printable_words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_header_values = st.lists(_printable_words, min_size=1, max_size=6).map(" ".join)
_any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
_ascii_char = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t")
_ascii_lines = st.lists(st.text(_ascii_char, max_size=90))
_ascii_body = st.tuples(_ascii_lines, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans()).map(
    lambda parts: parts[1].join(parts[0]) + (parts[1] if parts[2] else "")
)


@settings(max_examples=400)
@given(to=_header_values, subject=_header_values | _any_text, body=_ascii_body | _any_text)
def test_whatever_it_writes_is_what_smtplib_would_have_written(to: str, subject: str, body: str) -> None:
    written = written_directly(SENDER, to, subject, body)
    event("written directly" if written is not None else "left to the email package")
    if written is not None:
        assert written == as_smtplib_writes_it(SENDER, to, subject, body)
