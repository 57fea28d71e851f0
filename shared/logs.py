"""Structured logs: every line one JSON object, and nothing in it that identifies a person.

Dramatiq, uvicorn, pika and Circulate's own modules all log through the standard library, so the
format is applied where records leave the process: one root handler whose formatter is structlog's
`ProcessorFormatter`. Whoever emitted a record, it comes out with the same fields:

    timestamp (ISO 8601, UTC) · level · logger · event · pid · thread
    + whatever is bound with `structlog.contextvars` (MessageLog binds a message's ids while its
      handler runs, so the handler's own lines carry its trace_id and correlation_id)
    + the `extra={...}` of a stdlib call, and the key-value pairs of a structlog call

Redaction ("no address, email or token in logs") is the last step before rendering, so it sees
the final text of every field, exception tracebacks included:

- a key that names personal data or a credential (email, address, line1, postcode, city, phone,
  token, authorization, password, secret, api_key, cookie ...) loses its value, whatever it is;
- in every string value, email addresses, bearer and basic credentials, Circulate API tokens
  (`circ_...`), JWTs, passwords in URLs, `key=value` / `"key": "value"` pairs of those keys,
  UK postcodes and street addresses (house number and street) are masked.

Every string value is cut to `MAX_VALUE_CHARS` first (head and tail kept) and every step is
linear in its input, so no content can pin a worker in a log call (see `shared.redaction`).

Patterns cannot recognise every piece of personal data in prose (a name, a 5-digit ZIP code), so
the rule stays that payloads are never logged: MessageLog logs the order id and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import json as _json
import logging
import math
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.processors import CallsiteParameter, CallsiteParameterAdder
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.config import Settings
from shared.line_buffer import PendingLines
from shared.redaction import email_spans, replace_spans, truncate

#: Libraries that log every connection, frame or request at INFO.
NOISY_LOGGERS = ("pika", "httpx", "httpcore", "urllib3", "aiormq", "mail.log", "alembic")
REDACTED = "[redacted]"
#: Fields every line starts with, in this order.
_HEAD = ("timestamp", "level", "logger", "event")

_SENSITIVE_PARTS = frozenset(
    {
        "email", "emails", "address", "addresses", "line1", "line2", "street", "postcode", "zip",
        "zipcode", "city", "phone", "token", "tokens", "authorization", "password", "passwd",
        "secret", "secrets", "cookie", "cookies", "credentials", "signature",
    }
)  # fmt: skip
_SENSITIVE_JOINED = ("api_key", "apikey", "postal_code", "post_code", "private_key", "access_key")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_KV_KEYS = (
    r"e-?mail|address|line[12]|street|post_?code|postal_code|zip|city|phone|password|passwd|secret"
    r"|token|access_token|refresh_token|api[_-]?key|authorization|cookie"
)
_STREET_TYPES = (
    r"Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Row|Way|Drive|Dr|Boulevard|Blvd|Place|Pl|Court|Ct"
    r"|Square|Sq|Terrace|Close|Crescent|Gardens|Parkway"
)
#: (pattern, replacement) applied in order to every string value, which is never longer than
#: `MAX_VALUE_CHARS` by then. E-mail addresses are found by `shared.redaction.email_spans` after
#: the first `_EMAIL_AFTER` rules, not by a pattern: `[local]+@` from every start is quadratic.
#: Each pattern that starts with a run begins with a look-behind, so it is tried only where that
#: run begins, never from every character inside it.
_VALUE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # amqp://user:password@host: the password goes, the user and host stay for debugging.
    (
        re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,40}://[^/\s:@]+):[^@\s/]+@"),
        rf"\1:{REDACTED}@",
    ),
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?<![A-Za-z0-9_-])circ_[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # "line1": "12 High Street", city=Leeds, 'token': 'abc': the value goes (not a nested object,
    # whose own keys are matched in turn).
    (
        re.compile(rf"""(?i)(["']?)\b({_KV_KEYS})\b\1(\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&{{}}\[\]"']+)"""),
        rf"\1\2\1\3{REDACTED}",
    ),
    (re.compile(r"\b(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?[0-9][A-Z]{2}\b"), "[postcode]"),
    # "12 High Street", "4 rue Victor Hugo"; then "Hauptstraße 5", "Via Roma 12".
    (
        re.compile(
            rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:(?:rue|avenue|boulevard|allée|chemin|place|impasse)\s[^,\n]{{1,60}}"
            rf"|(?:[A-Z][\w'.-]*\s+){{0,4}}(?:{_STREET_TYPES})\b\.?)"
        ),
        "[address]",
    ),
    (
        re.compile(
            r"\b(?:(?:Via|Viale|Corso|Piazza|Calle)\s+(?:[\w'.-]+\s+){0,3}?"
            r"|\w+(?:straße|strasse|weg|platz|allee|gasse)\s+)\d{1,5}[a-zA-Z]?\b"
        ),
        "[address]",
    ),
)
#: How many of `_VALUE_RULES` run before e-mail addresses are masked (credentials in URLs first).
_EMAIL_AFTER = 4
#: Text no rule can match, so it skips them all: most fields of every message's line (ids, UUIDs,
#: actor and queue names, the timestamp). No upper-case letter (postcodes, `eyJ` tokens), no
#: space (addresses, `Bearer x`), no `@`, `:` or `=` (e-mails, URLs, `key=value`), and short.
#: `circ_` tokens are the one lower-case rule, checked apart. A timestamp is ISO 8601, digits only.
_PLAIN = re.compile(r"[a-z0-9_.\-]{0,200}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?")


def is_sensitive_key(key: object) -> bool:
    """Whether a field named `key` may hold personal data or a credential (`shipTo.postCode` too)."""
    if not isinstance(key, str):
        return False
    # Every line has the same few keys: remembered, they cost a dict lookup instead of two regexes.
    known = _KEY_SENSITIVITY.get(key)
    if known is None:
        known = _key_is_sensitive(key)
        if len(key) <= _CACHED_KEY_CHARS and len(_KEY_SENSITIVITY) < _KEYS_KEPT:
            _KEY_SENSITIVITY[key] = known
    return known


#: Keys already judged. Longer keys are judged every time, and the count is bounded, so no
#: content can fill it with large strings or many of them.
_KEY_SENSITIVITY: dict[str, bool] = {}
_CACHED_KEY_CHARS = 64
_KEYS_KEPT = 4096


def _key_is_sensitive(key: str) -> bool:
    snake = _NON_ALNUM.sub("_", _CAMEL.sub("_", key).lower())
    return bool(_SENSITIVE_PARTS.intersection(snake.split("_"))) or any(
        joined in snake for joined in _SENSITIVE_JOINED
    )


def redact_text(text: str) -> str:
    """`text` cut to `MAX_VALUE_CHARS`, with emails, credentials, postcodes and addresses masked.

    Linear in `len(text)`: the cut comes first, so no pattern is handed more than a bounded
    string, and e-mail addresses are found by a scanner (see `shared.redaction`).
    """
    if _PLAIN.fullmatch(text) and "circ_" not in text:
        return text
    if len(text) <= _CACHED_TEXT_CHARS:
        return _short_text_redacted(text)
    return apply_value_rules(text)


#: Short texts recur on every line (the event, the thread's name): their redaction is remembered.
#: Bounded in size and count, so no content can make the cache large.
_CACHED_TEXT_CHARS = 64


@functools.lru_cache(maxsize=2048)
def _short_text_redacted(text: str) -> str:
    return apply_value_rules(text)


def apply_value_rules(text: str) -> str:
    """Every rule of `_VALUE_RULES`, in order, on `text` cut to `MAX_VALUE_CHARS`."""
    text = truncate(text)
    for pattern, replacement in _VALUE_RULES[:_EMAIL_AFTER]:
        text = pattern.sub(replacement, text)
    text = replace_spans(text, email_spans(text), "[email]")
    for pattern, replacement in _VALUE_RULES[_EMAIL_AFTER:]:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """A copy of `value` with sensitive keys emptied and strings masked, through dicts and lists.

    A value that is neither JSON nor a container is rendered with `str` here, so the renderer's
    own `str()` can never put unredacted or unbounded text in a line.
    """
    if isinstance(value, str):
        return redact_text(value)
    # Before the Mapping check: an ABC isinstance is slow, and most values are numbers or None.
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_sensitive_key(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering (see the module docstring)."""
    redacted = {}
    for key, value in event_dict.items():
        if is_sensitive_key(key):
            redacted[key] = REDACTED
        elif value is None or type(value) in _NUMBERS:  # most fields of a line: nothing to mask
            redacted[key] = value
        else:
            redacted[key] = redact_value(value)
    return redacted


_NUMBERS = frozenset({int, float, bool})


def _shared_processors() -> list[Processor]:
    """Steps for every record, stdlib or structlog, before the formatter's own."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        CallsiteParameterAdder([CallsiteParameter.PROCESS, CallsiteParameter.THREAD_NAME]),
    ]


def build_formatter(*, json: bool = True) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of Circulate's handler: JSON lines, or aligned text for a terminal; both redacted."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return (JSONLineFormatter if json else structlog.stdlib.ProcessorFormatter)(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _tidy,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


#: Attributes every LogRecord has; any other is an `extra` field (as structlog's ExtraAdder reads it).
_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)


class JSONLineFormatter(structlog.stdlib.ProcessorFormatter):
    """The JSON formatter, with the chain's steps written out for a plain stdlib record.

    Most lines are plain records without a traceback: the message log line of every message,
    Dramatiq's and the libraries' lines. For those, `format_plain` builds the same fields in the
    same order as the processor chain of `build_formatter` would (contextvars, level, logger,
    extras, timestamp, pid, thread; then `_tidy` and `redact`, the same functions), without
    copying the record or calling six processor objects: about a third of the cost of a line.
    A structlog call, or a record with a traceback or stack, takes the chain itself.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.stack_info or "_logger" in record.__dict__:
            return super().format(record)
        return format_plain(record)


def format_plain(record: logging.LogRecord) -> str:
    """One JSON line for a plain stdlib record: `build_formatter`'s chain, step by step."""
    extra = {key: value for key, value in record.__dict__.items() if key not in _RECORD_KEYS}
    return _json_line(
        record.getMessage(), record.levelname, record.name, extra, record.process, record.threadName
    )


def _json_line(
    message: str, levelname: str, name: str, extra: Mapping[str, Any], pid: int | None, thread: str | None
) -> str:
    event: EventDict = {"event": message}
    structlog.contextvars.merge_contextvars(None, "", event)
    event["level"] = _level(levelname)
    event["logger"] = name
    event.update(extra)
    event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event["process"] = pid
    event["thread_name"] = thread
    return render(_tidy(None, "", event))


def render(event_dict: Mapping[str, Any]) -> str:
    """`redact` and then the JSON renderer on `event_dict`: the same text, built field by field.

    One line per message or request went through `redact`, which builds a redacted copy, and then
    the encoder, which walks that copy again: about half the CPU of a line, and the line about a
    tenth of a message's CPU in a worker draining a backlog. Here each field is rendered once, and
    a field whose value recurs (an actor, a queue, an outcome, a route, a thread's name) is taken
    from a small cache of what it rendered to; a value that is neither text, a number, a boolean
    nor None (a dict, a list, an object) takes `redact_value` and the encoder as before.
    """
    parts = []
    for key, value in event_dict.items():
        if type(key) is not str:  # the encoder's own rules for other keys
            return _ENCODER.encode(redact(None, "", dict(event_dict)))
        if type(value) is str and len(value) <= _CACHED_TEXT_CHARS:
            part = _RENDERED.get((key, value))
            if part is None:
                part = _render_field(key, value)
                if len(_RENDERED) >= _RENDERED_KEPT:
                    _RENDERED.clear()  # unique values (ids, timestamps) must not pin the memory
                _RENDERED[(key, value)] = part
        else:
            part = _render_field(key, value)
        parts.append(part)
    return "{" + ", ".join(parts) + "}"


#: (key, short text value) -> its rendered field. Cleared when full: ids and timestamps pass
#: through it once each, and the values that recur are back in it after one line each.
_RENDERED: dict[tuple[str, str], str] = {}
_RENDERED_KEPT = 4096


def _render_field(key: str, value: Any) -> str:
    """`"key": value` as the encoder writes one item of `redact`'s output."""
    head = _encode_text(key) + ": "
    if is_sensitive_key(key):
        return head + _REDACTED_JSON
    kind = type(value)
    if kind is str:
        return head + _encode_text(redact_text(value))
    if value is None:
        return head + "null"
    if kind is bool:
        return head + ("true" if value else "false")
    if kind is int:
        return head + int.__repr__(value)
    if kind is float and math.isfinite(value):
        return head + float.__repr__(value)
    return head + _ENCODER.encode(value if kind is float else redact_value(value))


def log_fields(logger: logging.Logger, level: int, message: str, fields: Mapping[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)`: the same line, written straight to the handler
    when logging is as `configure_logging` left it (JSON lines, its one handler, no filters).

    The API's request line and a worker's outcome line are one per request or message. Through
    `logging`, the record, the caller's frame lookup and the handler chain cost about as much as
    formatting the line (py-spy of the API called in-process: the request line 14 % of a
    request's CPU, formatting 6 % of it). Any other set-up (text lines, another handler such as
    pytest's `caplog`, a filter) gets the record as before.
    """
    handler = _handler
    if handler is None or not _writes_directly(logger, handler):
        logger.log(level, message, extra=dict(fields))
        return
    if not logger.isEnabledFor(level):
        return
    thread = threading.current_thread().name if logging.logThreads else None
    pid = os.getpid() if logging.logProcesses else None
    try:
        line = _json_line(message, logging.getLevelName(level), logger.name, fields, pid, thread)
    except Exception:
        logger.log(level, message, extra=dict(fields))  # the record path reports what went wrong
        return
    handler.write_line(line + handler.terminator, level)


def _writes_directly(logger: logging.Logger, handler: _StderrHandler) -> bool:
    """Whether a record of `logger` would reach `handler` alone, unfiltered, as a JSON line."""
    if logger.disabled or handler.filters or not isinstance(handler.formatter, JSONLineFormatter):
        return False
    current = logger
    while current is not logging.root:
        if current.handlers or current.filters or not current.propagate or current.parent is None:
            return False
        current = current.parent
    return current.handlers == [handler] and not current.filters


#: `json.dumps(..., default=str)` as the chain's JSONRenderer calls it, built once, not per line.
_ENCODER = _json.JSONEncoder(default=str)
#: The encoder's own text escaping (`ensure_ascii`, its default), in C.
_encode_text: Callable[[str], str] = _json.encoder.encode_basestring_ascii
_REDACTED_JSON = _encode_text(REDACTED)


def _level(levelname: str) -> str:
    """As structlog's `add_log_level` names a stdlib record's level (`warn` and `exception` mapped)."""
    name = levelname.lower()
    return {"warn": "warning", "exception": "error"}.get(name, name)


def _tidy(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The fixed fields first, under short names; uvicorn's ANSI-coloured copy of the event dropped."""
    event_dict.pop("color_message", None)
    event_dict["pid"] = event_dict.pop("process", None)
    event_dict["thread"] = event_dict.pop("thread_name", None)
    head = {key: event_dict.pop(key) for key in _HEAD if key in event_dict}
    return {**head, **event_dict}


#: The lines each thread holds inside `lines_held` (None outside it).
_held = threading.local()


@contextlib.contextmanager
def lines_held() -> Iterator[None]:
    """Lines this thread logs inside the block leave together, in order, when it ends.

    The batch path (`shared.middleware.batch`) writes one outcome line per message right after
    its one commit. In a Dramatiq worker process each write is a message on the pipe to the main
    process, which reads it and writes it out again; held, a batch's lines cost one of each. Every
    line is still its own complete JSON line, formatted and redacted as before, and lines of other
    threads are not held. Nested blocks write when the outermost ends.
    """
    if getattr(_held, "lines", None) is not None:
        yield
        return
    lines: list[str] = []
    _held.lines = lines
    try:
        yield
    finally:
        _held.lines = None
        if lines and _handler is not None:
            _handler.write_lines(lines)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record, not when it was built.

    Dramatiq points `sys.stderr` of each worker process at a pipe its main process reads (so lines
    of several processes never interleave); a handler built before that, in the main process and
    inherited through fork, must follow it there. Inside `lines_held` a record is formatted at
    once and its line kept until the block ends. With `pending` (`shared.line_buffer`), a line
    below WARNING waits up to its interval for others; a line at WARNING or above writes the
    waiting lines and itself at once, in that order.
    """

    pending: PendingLines | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record) + self.terminator, record.levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str, levelno: int) -> None:
        """A formatted line (a record's, or `log_fields`'): held by `lines_held`, kept by `pending`
        when below WARNING, or written at once after whatever `pending` kept."""
        held: list[str] | None = getattr(_held, "lines", None)
        with self.lock:  # type: ignore[union-attr]
            if held is not None:
                held.append(line)
            elif self.pending is not None and levelno < logging.WARNING:
                self.pending.add(line)
            else:
                self._write([*(self.pending.take() if self.pending else ()), line])

    def write_lines(self, lines: list[str]) -> None:
        """Write held lines in one go (one write to Dramatiq's pipe, one read by its main process)."""
        with self.lock:  # type: ignore[union-attr]
            self._write([*(self.pending.take() if self.pending else ()), *lines])

    def write_pending(self) -> None:
        """Write the lines `pending` holds (its thread, and the exit hooks, call this)."""
        with self.lock:  # type: ignore[union-attr]
            if self.pending is not None:
                self._write(self.pending.take())

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self.stream.write("".join(lines))
            self.flush()
        except Exception:
            # As `logging.Handler.handleError`: a failed write never breaks the caller.
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.__stderr__)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # logging.StreamHandler.__init__ assigns it; the property above is the truth


#: The handler `configure_logging` installed last: where held lines are written.
_handler: _StderrHandler | None = None


def buffer_lines(buffer_s: float) -> None:
    """From now on, lines below WARNING wait up to `buffer_s` to be written together (0: none do)."""
    if _handler is not None:
        _handler.write_pending()  # what waits under the interval it had
        _handler.pending = PendingLines(_handler.write_pending, buffer_s) if buffer_s > 0 else None


def configure_logging_from(settings: Settings) -> None:
    """`configure_logging` as the settings ask, lines held (the workers and the API)."""
    configure_logging(
        level=settings.log_level,
        json=settings.log_format == "json",
        buffer_s=settings.log_buffer_ms / 1000,
    )


def configure_logging(*, level: str = "INFO", json: bool = True, buffer_s: float = 0.0) -> None:
    """Route every stdlib and structlog record through one redacting handler on stderr.

    Replaces the root logger's handlers (logging.basicConfig's, Dramatiq's), so calling it again,
    as each worker process does after Dramatiq's own set-up, leaves exactly one handler.
    Noisy libraries are held at WARNING unless `level` is DEBUG. With `buffer_s`, lines below
    WARNING are written together at most that long after the first of them (`shared.line_buffer`:
    the workers and the API, whose every message or request writes a line).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    global _handler
    handler = _handler = _StderrHandler()
    handler.setFormatter(build_formatter(json=json))
    buffer_lines(buffer_s)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
