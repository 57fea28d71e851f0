"""A real SMTP server that keeps what it receives, for tests and the demo.

Tests and the demo exercise the real `Mailer` over a real socket rather than a fake, so SMTP
framing, reply codes and Message-IDs are checked end to end. The sink keeps every accepted email
in memory and, given a maildir, also writes it as ``<n>.eml`` so another process can count what
arrived. `reject_next` injects 4xx/5xx replies to drive the mailer's retry and dead-letter paths.

It runs aiosmtpd's Controller (an asyncio loop in a daemon thread) on a socket bound up front, so
port 0 works and `port` is known before the first connection, with no free-port race.
"""

from __future__ import annotations

import asyncio
import email.policy
import os
import signal
import socket
import threading
from collections.abc import Awaitable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

Stage = Literal["rcpt", "data"]

_PARSER = BytesParser(policy=email.policy.default)
# Greeting name; without it aiosmtpd calls socket.getfqdn(), which can stall on a DNS lookup.
_SERVER_NAME = "smtp-sink.circulate.test"


class SmtpSink:
    """An SMTP server on `host`:`port` (0 picks a free port) that accepts and keeps every email."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, maildir: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.maildir = maildir
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self._refusals: dict[Stage, tuple[int, int]] = {}
        self._next_file = 1
        self._controller: _BoundController | None = None

    def start(self) -> None:
        """Listen and return once the server answers; `port` then holds the real port."""
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            # Continue numbering after a restart so files another process counted are not overwritten.
            self._next_file = 1 + max((int(p.stem) for p in _eml_files(self.maildir)), default=0)
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]
        controller = _BoundController(_Handler(self), sock, server_hostname=_SERVER_NAME)
        try:
            controller.start()
        except BaseException:
            sock.close()
            raise
        self._controller = controller

    def stop(self) -> None:
        """Stop listening and join the server thread; safe to call when not running."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """A snapshot of the emails accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def unique_message_ids(self) -> set[str]:
        """Distinct Message-IDs received: what a receiver that drops duplicates would show."""
        return {str(m["Message-ID"]) for m in self.messages if m["Message-ID"] is not None}

    def reject_next(self, n: int, code: int = 451, *, stage: Stage = "rcpt") -> None:
        """Answer the next `n` RCPT (or DATA, with stage="data") commands with `code` instead of 250.

        A refused RCPT ends that send (smtplib gives up when its only recipient is refused), so each
        refused send consumes one. A refused DATA is the same relay deciding after the content.
        """
        if n < 0 or not 400 <= code < 600:
            raise ValueError(f"need n >= 0 and a 4xx or 5xx code, got n={n}, code={code}")
        with self._lock:
            self._refusals[stage] = (n, code)

    def _refusal(self, stage: Stage) -> str | None:
        with self._lock:
            remaining, code = self._refusals.get(stage, (0, 0))
            if remaining == 0:
                return None
            self._refusals[stage] = (remaining - 1, code)
        return f"{code} Refused on purpose by SmtpSink.reject_next"

    def _accept(self, wire: bytes) -> None:
        # SMTP carries CRLF; files and parsed bodies use "\n", as mail tools on Unix expect.
        raw = wire.replace(b"\r\n", b"\n")
        message = _PARSER.parsebytes(raw)
        with self._lock:
            self._messages.append(message)
            number, self._next_file = self._next_file, self._next_file + 1
        if self.maildir is not None:
            # Write then rename, so a process counting *.eml never reads half a message.
            partial = self.maildir / f".{number}.eml.partial"
            partial.write_bytes(raw)
            os.replace(partial, self.maildir / f"{number}.eml")


def read_maildir(path: Path) -> list[EmailMessage]:
    """The emails a sink wrote to `path`, in arrival order."""
    return [_PARSER.parsebytes(p.read_bytes()) for p in sorted(_eml_files(path), key=lambda p: int(p.stem))]


def run_smtp_sink(host: str, port: int, maildir: Path | None) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly; the body of `circulate smtp-sink`."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with SmtpSink(host, port, maildir) as sink:
            print(f"smtp-sink listening on {sink.host}:{sink.port}, maildir={maildir}", flush=True)
            # A timed wait keeps the main thread returning to the interpreter, where handlers run.
            while not stopping.wait(timeout=0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _eml_files(path: Path) -> list[Path]:
    return [p for p in path.glob("*.eml") if p.stem.isdigit()]


class _Handler:
    """aiosmtpd hooks; they run on the sink's event loop thread."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._sink._refusal("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._sink._refusal("data")
        if refusal is not None:
            return refusal
        self._sink._accept(envelope.original_content or b"")
        return "250 Message accepted for delivery"


class _BoundController(Controller):
    """Serves on an already bound socket; `_create_server` is aiosmtpd's documented override point."""

    def __init__(self, handler: _Handler, sock: socket.socket, **smtp_kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **smtp_kwargs)
        self._sock = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)
