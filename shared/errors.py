"""Every error Circulate raises, under one root.

    CirculateError
    ├── PermanentError          fails now: no retry, the message goes to the dead-letter queue
    │   ├── InvalidMessage      the body, envelope or payload does not validate (keeps the cause)
    │   └── ConflictingReplay   an idempotency key replayed with a different content
    ├── TransientError          retried with backoff by the broker; may carry a delay
    │   └── MiddlewareFailed    a middleware hook raised around a message (never acks it away)
    └── ConfigurationError      the settings or the environment cannot work

Domain errors subclass PermanentError or TransientError (`ItemAlreadySold(PermanentError)`,
`CarrierUnavailable(TransientError)`), so the actor factory decides retry or dead-letter from the
class alone and handlers never catch in order to retry.
"""

from __future__ import annotations


class CirculateError(Exception):
    """Root of every error raised by Circulate code."""


class PermanentError(CirculateError):
    """Retrying cannot help: the message is dead-lettered at once with this error as its reason."""


class TransientError(CirculateError):
    """Retrying may help: the broker redelivers after a backoff, or after `delay_ms` if given."""

    def __init__(self, message: str, *, delay_ms: int | None = None) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


class MiddlewareFailed(TransientError):
    """A middleware hook raised while a message was being handled; the attempt counts as failed."""


class InvalidMessage(PermanentError):
    """The message cannot be understood; `raw` keeps what was received for the dead-letter archive."""

    def __init__(self, reason: str, *, raw: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class ConflictingReplay(PermanentError):
    """The same idempotency key arrived again with different content: a producer bug, never applied."""


class ConfigurationError(CirculateError):
    """The settings or the environment cannot work (a service that does not answer, a bad value)."""
