"""The Mailer against a real SMTP server (SmtpSink on a free 127.0.0.1 port)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.errors import InvalidMessage
from tasks.notifications.identity import dedupe_key_for, message_id_for
from tasks.notifications.smtp import Mailer, MailRejected, MailUnavailable
from tasks.notifications.templates import render
from tests.fixtures import smtp as fixtures
from workers.harness.smtp_sink import SmtpSink, read_maildir

smtp_sink = fixtures.smtp_sink
mailer_for = fixtures.mailer_for

ORDER_ID = "8d0e2f4a-1b3c-4d5e-9f60-718293a4b5c6"
MESSAGE_ID = message_id_for(dedupe_key_for(ORDER_ID, "shipped", "buyer", "email"))


def send_one(mailer: Mailer, *, to: str = "ada@buyers.test", message_id: str = MESSAGE_ID) -> None:
    mailer.send(to=to, subject="Order shipped", body="It is on its way.\n", message_id=message_id)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that is bound but not listening, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel backlog) but never says a word."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_a_rendered_notification_arrives_with_its_message_id_subject_and_recipient(
    smtp_sink: SmtpSink,
) -> None:
    # Given a rendered notification and its stable Message-ID
    rendered = render("shipped", {"order_id": ORDER_ID, "recipient_name": "Ada", "tracking_number": "TRK-1"})

    # When it is sent
    mailer_for(smtp_sink).send(
        to="ada@buyers.test",
        subject=rendered.subject,
        body=rendered.text_body,
        message_id=MESSAGE_ID,
        headers={"X-Circulate-Template": "shipped"},
    )

    # Then exactly that email arrived
    [received] = smtp_sink.messages
    assert received["Message-ID"] == MESSAGE_ID
    assert received["Subject"] == rendered.subject
    assert received["To"] == "ada@buyers.test"
    assert received["From"] == fixtures.SENDER
    assert received["Date"] is not None
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["X-Circulate-Template"] == "shipped"
    assert received.get_content() == rendered.text_body


def test_resending_the_same_notification_gives_receivers_one_message_id_to_keep(smtp_sink: SmtpSink) -> None:
    mailer = mailer_for(smtp_sink)

    send_one(mailer)
    send_one(mailer)
    send_one(mailer, message_id=message_id_for(dedupe_key_for(ORDER_ID, "delivered", "buyer", "email")))

    assert len(smtp_sink.messages) == 3
    assert len(smtp_sink.unique_message_ids()) == 2


def test_a_451_to_rcpt_makes_mail_unavailable_and_the_retry_gets_through(smtp_sink: SmtpSink) -> None:
    mailer = mailer_for(smtp_sink)
    smtp_sink.reject_next(1, 451)

    with pytest.raises(MailUnavailable) as caught:
        send_one(mailer)
    send_one(mailer)

    assert caught.value.smtp_code == 451
    assert len(smtp_sink.messages) == 1


def test_a_550_to_rcpt_makes_mail_rejected(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(1, 550)

    with pytest.raises(MailRejected) as caught:
        send_one(mailer_for(smtp_sink))

    assert caught.value.smtp_code == 550
    assert smtp_sink.messages == []


@pytest.mark.parametrize(("code", "error"), [(451, MailUnavailable), (554, MailRejected)])
def test_a_refusal_after_data_is_classified_by_its_code(
    smtp_sink: SmtpSink, code: int, error: type[Exception]
) -> None:
    smtp_sink.reject_next(1, code, stage="data")

    with pytest.raises(error, match=str(code)):
        send_one(mailer_for(smtp_sink))

    assert smtp_sink.messages == []


def test_nothing_listening_makes_mail_unavailable(closed_port: int) -> None:
    mailer = Mailer(host="127.0.0.1", port=closed_port, sender=fixtures.SENDER, timeout_s=1.0)

    with pytest.raises(MailUnavailable, match="unreachable"):
        send_one(mailer)


def test_a_relay_that_never_answers_makes_mail_unavailable_after_the_timeout(silent_port: int) -> None:
    mailer = Mailer(host="127.0.0.1", port=silent_port, sender=fixtures.SENDER, timeout_s=0.2)

    with pytest.raises(MailUnavailable, match="unreachable"):
        send_one(mailer)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(smtp_sink: SmtpSink) -> None:
    mailer = mailer_for(smtp_sink)

    with pytest.raises(InvalidMessage):
        mailer.send(to="ada@buyers.test", subject="Hi\r\nBcc: x@evil.test", body="x", message_id=MESSAGE_ID)
    with pytest.raises(InvalidMessage, match="Message-ID"):
        mailer.send(to="ada@buyers.test", subject="Hi", body="x", message_id="no-angle-brackets")
    with pytest.raises(InvalidMessage, match="overridden"):
        mailer.send(
            to="a@b.test", subject="Hi", body="x", message_id=MESSAGE_ID, headers={"message-id": "<x@y>"}
        )

    assert smtp_sink.messages == []


def test_every_received_email_is_written_to_the_maildir_and_reads_back(smtp_sink: SmtpSink) -> None:
    assert smtp_sink.maildir is not None
    mailer = mailer_for(smtp_sink)
    recipients = [f"buyer{n}@buyers.test" for n in range(3)]

    for n, to in enumerate(recipients):
        send_one(mailer, to=to, message_id=f"<{n}@circulate.test>")

    assert sorted(p.name for p in smtp_sink.maildir.iterdir()) == ["1.eml", "2.eml", "3.eml"]
    assert [m["To"] for m in read_maildir(smtp_sink.maildir)] == recipients
    assert [m["Message-ID"] for m in read_maildir(smtp_sink.maildir)] == [
        f"<{n}@circulate.test>" for n in range(3)
    ]


def test_a_restarted_sink_numbers_after_the_files_already_in_its_maildir(tmp_path: Path) -> None:
    for _ in range(2):
        with SmtpSink("127.0.0.1", 0, tmp_path) as sink:
            send_one(mailer_for(sink))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.eml", "2.eml"]


def test_the_sink_process_writes_the_maildir_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Given the sink running as its own process, as `circulate smtp-sink` runs it
    code = (
        "import pathlib, sys; from workers.harness.smtp_sink import run_smtp_sink; "
        "run_smtp_sink('127.0.0.1', 0, pathlib.Path(sys.argv[1]))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # blocks until the sink has printed its address
        port = int(ready.split()[3].rstrip(",").rsplit(":", 1)[1])

        # When an email is sent to it and it is told to stop
        Mailer(host="127.0.0.1", port=port, sender=fixtures.SENDER, timeout_s=5.0).send(
            to="ada@buyers.test", subject="Hi", body="x\n", message_id=MESSAGE_ID
        )
        process.terminate()

        # Then it exits cleanly and another process can read what it received
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert [m["Message-ID"] for m in read_maildir(tmp_path)] == [MESSAGE_ID]
