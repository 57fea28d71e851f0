"""The SMTP adapter: hands one email to the relay and says whether a retry can help.

SMTP failures map onto the two error families the actor factory understands: a connection that
fails, times out or drops, and any 4xx reply, is `MailUnavailable` (transient, retried with
backoff); a 5xx reply, or a server that lacks something we are configured to use (STARTTLS,
AUTH), is `MailRejected` (permanent, dead-lettered). The caller supplies the Message-ID, derived
from the notification's dedupe key, so a resend after a crash is recognisable as a duplicate.

One connection per send: notifications are low volume, and it leaves no half-dead connection
to recover after a relay restart.
"""

from __future__ import annotations

import binascii
import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from email import quoprimime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from shared.config import Settings
from shared.errors import ConfigurationError, InvalidMessage, PermanentError, TransientError

# Set by `send` itself; letting callers override them would break the dedupe guarantee.
_RESERVED_HEADERS = frozenset({"message-id", "date", "from", "to", "subject"})


class MailUnavailable(TransientError):
    """The relay could not take the mail now (no connection, timeout, 4xx); retrying may work."""

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class MailRejected(PermanentError):
    """The relay refused the mail for good (5xx, or a missing capability); retrying cannot help."""

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class Mailer:
    """Sends plain-text notifications through one SMTP relay; `timeout_s` bounds each network step."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        timeout_s: float,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
    ) -> None:
        if (username is None) != (password is None):
            raise ConfigurationError("SMTP username and password must be given together")
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout_s = timeout_s
        self._username = username
        self._password = password
        self._starttls = starttls
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open_connections: list[smtplib.SMTP] = []

    def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Deliver one email; returns once the relay has accepted it (a 250 after DATA).

        Raises `MailUnavailable`, `MailRejected`, or `InvalidMessage` when the email itself cannot be
        built (a header with a line break, a malformed Message-ID).
        """
        date = format_datetime(datetime.now(UTC))
        message: EmailMessage | bytes | None = None
        if not headers:
            message = self._plain_email(to=to, subject=subject, body=body, message_id=message_id, date=date)
        if message is None:
            message = self._build(
                to=to, subject=subject, body=body, message_id=message_id, headers=headers, date=date
            )
        try:
            self._send_reusing(message, to)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _classify(exc, self._host, self._port) from exc

    def close(self) -> None:
        """Hang up every thread's connection (at worker shutdown)."""
        with self._lock:
            connections, self._open_connections = self._open_connections, []
        for connection in connections:
            _hang_up(connection, politely=True)

    def _send_reusing(self, message: EmailMessage | bytes, to: str) -> None:
        """One connection per worker thread, kept between emails: connecting, EHLO and QUIT for
        each email would cost more round trips than the email itself."""
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None)
        if connection is not None:
            try:
                self._hand(connection, message, to)
                return
            except smtplib.SMTPServerDisconnected:
                self._drop()  # the relay closed an idle connection before MAIL FROM: reconnect once
        self._hand(self._connect(), message, to)

    def _hand(self, connection: smtplib.SMTP, message: EmailMessage | bytes, to: str) -> None:
        if isinstance(message, bytes):  # written already, as `send_message` would write it
            connection.sendmail(self._sender, [to], message)
        else:
            connection.send_message(message, from_addr=self._sender, to_addrs=[to])

    def _connect(self) -> smtplib.SMTP:
        connection = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
        self._local.connection = connection
        with self._lock:
            self._open_connections.append(connection)
        if self._starttls:
            connection.starttls(context=ssl.create_default_context())
        if self._username is not None and self._password is not None:
            connection.login(self._username, self._password)
        return connection

    def _drop(self) -> None:
        """Forget this thread's connection after a failure; the link may be dead or mid-command."""
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                if connection in self._open_connections:
                    self._open_connections.remove(connection)
            _hang_up(connection, politely=False)

    def _plain_email(self, *, to: str, subject: str, body: str, message_id: str, date: str) -> bytes | None:
        """The email's bytes for the common case, written directly; None for any other case.

        The common case is every notification the handlers send: no extra headers, and each
        header a line of printable ASCII that needs no folding (`PlainHeadersAsGiven` keeps those
        as given). The body may be any text: its transfer encoding is picked as
        `EmailMessage.set_content` picks it (7bit, 8bit for non-ASCII lines that fit, else
        quoted-printable). For it the bytes are exactly those `smtplib.SMTP.send_message` writes
        for `_build`'s message (`tests/unit/test_email_plain.py` holds them equal); building that
        message and flattening it with the `email` package cost several times the CPU of the rest
        of a delivery. Where the package would pick base64, it writes the email itself.
        """
        _check_message_id(message_id)
        fields = (
            ("Message-ID", message_id),
            ("Date", date),
            ("From", self._sender),
            ("To", to),
            ("Subject", subject),
            ("Auto-Submitted", "auto-generated"),
        )
        if not all(_kept_as_given(name, value) for name, value in fields):
            return None
        head = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("ascii")
        try:
            lines = body.encode("utf-8").splitlines()
        except UnicodeEncodeError:  # a lone surrogate: the email package's path says what it makes of it
            return None
        if all(len(line) <= _MAX_LINE for line in lines):
            # The email package's own test: ASCII is 7bit; anything else 8bit (its policy's cte_type).
            encoding = "7bit" if body.isascii() else "8bit"
            return head + _plain_text_headers(encoding) + b"".join(line + b"\r\n" for line in lines or [b""])
        encoded = _quoted_printable(lines)
        if encoded is None:
            return None
        return head + _plain_text_headers("quoted-printable") + encoded.replace("\n", "\r\n").encode("ascii")

    def _build(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        message_id: str,
        headers: Mapping[str, str] | None,
        date: str,
    ) -> EmailMessage:
        _check_message_id(message_id)
        extra = dict(headers or {})
        clashing = sorted(name for name in extra if name.lower() in _RESERVED_HEADERS)
        if clashing:
            raise InvalidMessage(f"headers set by the mailer cannot be overridden: {clashing}")
        message = EmailMessage(policy=PLAIN_HEADERS_AS_GIVEN)
        try:
            message["Message-ID"] = message_id
            message["Date"] = date
            message["From"] = self._sender
            message["To"] = to
            message["Subject"] = subject
            # RFC 3834: tells autoresponders (out-of-office, vacation) not to answer a notification.
            message["Auto-Submitted"] = "auto-generated"
            for name, value in extra.items():
                message[name] = value
        except ValueError as exc:  # the email policy refuses CR/LF in a header value
            raise InvalidMessage(f"cannot build the email: {exc}") from exc
        message.set_content(body)
        return message


class PlainHeadersAsGiven(EmailPolicy):
    """The default email policy, except that a header needing no encoding and no folding is kept
    as the text given instead of being parsed into a header object.

    Parsing (the header registry's grammar for addresses, dates and message ids) took about a
    millisecond of CPU per notification email, a tenth of a worker's CPU per order in the
    end-to-end profile. A header of printable ASCII that fits on one line is written exactly as
    the default policy writes it after parsing; anything else (a line break, which is refused as
    before, non-ASCII text needing RFC 2047, a header too long for one line) takes the default
    path. `tests/unit/test_email_headers.py` holds the two policies' output to be the same.
    """

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, str) and _kept_as_given(name, value):
            return name, value
        return super().header_store_parse(name, value)


PLAIN_HEADERS_AS_GIVEN = PlainHeadersAsGiven()
#: Headers the message reads back while it is built and written (its MIME structure): parsed once
#: when stored, rather than at every read.
_READ_BACK = frozenset({"content-type", "content-transfer-encoding", "content-disposition", "mime-version"})
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
#: The default policy's line length: a longer body line is not sent as 7bit, a longer header is folded.
_MAX_LINE = 78
#: The lines of a body from which `EmailMessage.set_content` picks its transfer encoding.
_SNIFFED_LINES = 10


def _plain_text_headers(transfer_encoding: str) -> bytes:
    """What `EmailMessage.set_content` adds for a plain-text body, as the generator writes it."""
    return (
        'Content-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {transfer_encoding}\r\n"
        "MIME-Version: 1.0\r\n\r\n"
    ).encode("ascii")


def _quoted_printable(lines: list[bytes]) -> str | None:
    """The body's lines (UTF-8), one of them too long for 7bit or 8bit, as `set_content` encodes
    them: quoted-printable (lines ending in "\\n"), or None where its rule picks base64 (the email
    package writes that).

    The rule (`email.contentmanager._encode_text`) encodes the first ten lines both ways and keeps
    quoted-printable unless it came out longer; the encoder is the one it calls, on the bytes read
    as Latin-1 as it reads them. Notifications reach here whenever a line carries an order id and
    an amount: most of them.
    """
    sniffed = b"".join(line + b"\n" for line in lines[:_SNIFFED_LINES])
    sniffed_qp = quoprimime.body_encode(sniffed.decode("latin-1"), _MAX_LINE)
    if len(sniffed_qp) > len(binascii.b2a_base64(sniffed)):
        return None
    if len(lines) <= _SNIFFED_LINES:
        return sniffed_qp
    return quoprimime.body_encode(b"".join(line + b"\n" for line in lines).decode("latin-1"), _MAX_LINE)


def _kept_as_given(name: str, value: str) -> bool:
    """A header written exactly as given: printable ASCII on one line, no folding, not MIME's own."""
    return (
        name.lower() not in _READ_BACK
        and _PRINTABLE_ASCII.fullmatch(value) is not None
        and len(name) + 2 + len(value) <= _MAX_LINE
    )


def _check_message_id(message_id: str) -> None:
    if not (message_id.startswith("<") and message_id.endswith(">") and "@" in message_id):
        raise InvalidMessage(f"not an RFC 5322 Message-ID: {message_id!r}")


def mailer_from_settings(settings: Settings) -> Mailer:
    """The "mailer" adapter factory (`tasks.registry.ADAPTERS`), built at worker boot."""
    return Mailer(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender, timeout_s=10)


def _hang_up(connection: smtplib.SMTP, *, politely: bool) -> None:
    # After a failure the link may be dead: QUIT would only wait out another timeout. After
    # success, a failing QUIT must not turn a delivered mail into a retry, hence the swallow.
    if politely:
        try:
            connection.quit()
            return
        except (smtplib.SMTPException, OSError):
            pass
    connection.close()


def _classify(exc: smtplib.SMTPException | OSError, host: str, port: int) -> MailUnavailable | MailRejected:
    where = f"SMTP relay {host}:{port}"
    code: int | None
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per send; with several, any 4xx means a retry may still get through.
        code = min((code for code, _ in exc.recipients.values()), default=None)
        detail = "; ".join(f"{rcpt}: {c} {_text(reply)}" for rcpt, (c, reply) in exc.recipients.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, detail = exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        return MailUnavailable(f"{where} unreachable: {exc!r}")
    else:  # e.g. SMTPNotSupportedError: the relay lacks STARTTLS, AUTH or SMTPUTF8; it will not grow it
        return MailRejected(f"{where} cannot take this mail: {exc}")
    if code is not None and 500 <= code < 600:
        return MailRejected(f"{where} rejected the mail: {detail}", smtp_code=code)
    # 4xx, or smtplib's -1 for a garbled reply: both are worth another try.
    return MailUnavailable(f"{where} deferred the mail: {detail}", smtp_code=code)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
