"""A few quick retries inside a handler, for HTTP adapters whose calls are safe to repeat.

The carrier and push clients send an idempotency (or dedupe) key, so retrying a transient fault
in place is safe and cheaper than a trip through the broker's delay queue. A Retry-After longer
than `max_wait_s` is not waited out here: the error keeps its `delay_ms`, and the actor factory
turns it into a broker retry after that delay, so no worker thread blocks for long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from shared.errors import TransientError

P = ParamSpec("P")
T = TypeVar("T")


class QuickRetry:
    """Retry `transient` errors up to `attempts` times with jittered backoff capped at `max_wait_s`."""

    def __init__(self, *, transient: type[TransientError], attempts: int, max_wait_s: float) -> None:
        self._transient = transient
        self._attempts = attempts
        self._max_wait_s = max_wait_s
        self._backoff = wait_random_exponential(multiplier=0.1, max=max_wait_s)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args)`, retried; a final transient error says how many attempts were made."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception(self._worth_retrying_here),
            reraise=True,
        )
        try:
            return retrying(fn, *args, **kwargs)
        except TransientError as exc:
            if not isinstance(exc, self._transient):
                raise
            attempts = retrying.statistics.get("attempt_number", 1)
            message = f"{exc}; gave up after attempt {attempts} of {self._attempts}"
            raise self._transient(message, delay_ms=exc.delay_ms) from exc

    def _worth_retrying_here(self, exc: BaseException) -> bool:
        if not isinstance(exc, self._transient):
            return False
        return exc.delay_ms is None or exc.delay_ms <= self._max_wait_s * 1000

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, self._transient) and exc.delay_ms is not None:
            return exc.delay_ms / 1000
        return float(self._backoff(state))
