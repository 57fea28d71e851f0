"""The mailer's email policy writes every email byte for byte as the default policy would."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest

from tasks.notifications.smtp import PLAIN_HEADERS_AS_GIVEN

HEADERS = [
    ("Message-ID", "<n-1f2e.email@circulate.test>"),
    ("Date", "Mon, 07 Dec 2026 03:44:57 +0000"),
    ("From", "Circulate <notifications@circulate.test>"),
    ("To", "buyer1@example.com"),
    ("Subject", "Your order is confirmed"),
    ("Auto-Submitted", "auto-generated"),
]
ODD_HEADERS = [
    ("Subject", "Votre commande est confirmée"),  # non-ASCII: RFC 2047
    ("To", "Zoë Ångström <zoe@example.com>"),
    ("Subject", "A subject long enough that the default policy has to fold it onto a second line"),
    ("X-Spaced", "two  spaces and a trailing one "),
    ("X-Tab", "a\ttab"),
    ("From", '"Circulate, Ltd" <notifications@circulate.test>'),
]
BODIES = ["Hello Ana,\n\nYour order is confirmed.\n", "Grüße, Zoë\n", "x" * 200 + "\n"]


def build(email_policy: policy.EmailPolicy, headers: list[tuple[str, str]], body: str) -> bytes:
    message = EmailMessage(policy=email_policy)
    for name, value in headers:
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=email_policy.clone(linesep="\r\n"))


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("extra", [[], *[[h] for h in ODD_HEADERS]])
def test_an_email_is_written_as_the_default_policy_writes_it(extra: list[tuple[str, str]], body: str) -> None:
    headers = list((dict(HEADERS) | dict(extra)).items())  # an odd header replaces its usual one
    assert build(PLAIN_HEADERS_AS_GIVEN, headers, body) == build(policy.default, headers, body)


@pytest.mark.parametrize("value", ["evil\r\nBcc: victim@example.com", "a\nb", "a\rb"])
def test_a_header_with_a_line_break_is_refused_as_by_the_default_policy(value: str) -> None:
    message = EmailMessage(policy=PLAIN_HEADERS_AS_GIVEN)
    with pytest.raises(ValueError):
        message["Subject"] = value
