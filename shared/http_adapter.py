"""The HTTP adapter every external service shares (the carrier, the push gateway).

An outside call cannot join our database transaction, so each adapter sends an idempotency (or
dedupe) key and may repeat a call safely. What the adapters have in common lives here, once: one
pool of keep-alive connections (urllib3) with the timeout and the bearer key, the quick in-handler retries
(`shared.http_retry`), the reading of `Retry-After`, and the `on_response` hook that lets metrics
see every attempt. A subclass names its service, its transient error, and what a refusal means.

    <service>Unavailable(TransientError)  5xx, 429, timeout or connection error after the quick
                                          retries; `delay_ms` carries a Retry-After too long to
                                          wait in the handler, so the broker waits instead
    the subclass's `_refused(...)`        any other non-2xx: a PermanentError, never retried

`on_response(operation, status, seconds)` is called once per HTTP attempt (status None when no
answer came); it must not raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self

import urllib3
from urllib3.exceptions import HTTPError, TimeoutError

from shared.errors import PermanentError, TransientError
from shared.http_retry import QuickRetry

OnResponse = Callable[[str, int | None, float], None]


@dataclass(frozen=True)
class HttpResponse:
    """A service's answer: status, headers (case-insensitive) and the body as received."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON; a `ValueError` if it is not."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class HttpAdapter:
    """One pooled HTTP connection to one service, built at worker boot and closed at shutdown."""

    #: How error messages name the service ("carrier", "push gateway").
    service: ClassVar[str]
    #: Raised for 5xx, 429, timeouts and connection errors; the quick retries repeat only this.
    unavailable: ClassVar[type[TransientError]]
    #: The longest Retry-After (and backoff) waited out in the handler, unless the caller says.
    default_max_retry_wait_s: ClassVar[float] = 2.0

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 5.0,
        retry_attempts: int = 3,
        max_retry_wait_s: float | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        # urllib3 rather than httpx: the same keep-alive pool and timeouts for about a third of the
        # CPU per call (httpx's request building and transport layers were ~14 % of a worker's CPU
        # in the end-to-end profile, for two or three calls an order). Its own retries are off: the
        # quick retries below decide, and a redirect is an answer like any other.
        self._http = urllib3.PoolManager(
            num_pools=4, maxsize=32, timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False
        )
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        max_wait_s = self.default_max_retry_wait_s if max_retry_wait_s is None else max_retry_wait_s
        self._retry = QuickRetry(transient=self.unavailable, attempts=retry_attempts, max_wait_s=max_wait_s)
        self._on_response = on_response

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """A 2xx response to `method path`, after the quick retries; `operation` names it in metrics."""
        return self._retry.call(self._attempt, operation, method, path, payload, headers)

    def _refused(self, operation: str, response: HttpResponse) -> PermanentError:
        """The error for a non-2xx answer that asking again cannot change (a 4xx, mostly)."""
        raise NotImplementedError

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> HttpResponse:
        started = time.perf_counter()
        request_headers = {**self._headers, **(headers or {})}
        body = None
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            request_headers["Content-Type"] = "application/json"
        try:
            answer = self._http.request(
                method, self._base_url + path, body=body, headers=request_headers, redirect=False
            )
        except (HTTPError, OSError) as exc:
            self._report(operation, None, started)
            problem = "timed out" if isinstance(exc, TimeoutError) else "unreachable"
            raise self.unavailable(f"{self.service} {problem} during {operation}: {exc!r}") from exc
        response = HttpResponse(answer.status, answer.headers, answer.data)
        self._report(operation, response.status_code, started)
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status == 429 or status >= 500:
            delay_ms = retry_after_ms(response.headers.get("Retry-After"))
            raise self.unavailable(f"{self.service} answered {status} to {operation}", delay_ms=delay_ms)
        raise self._refused(operation, response)

    def _report(self, operation: str, status: int | None, started: float) -> None:
        if self._on_response is not None:
            self._on_response(operation, status, time.perf_counter() - started)


def retry_after_ms(value: str | None, *, now: datetime | None = None) -> int | None:
    """Read a Retry-After header (seconds or an HTTP date) as milliseconds; None if absent or garbled.

    A date in the past means "now" (0). RFC 9110 allows both forms, so an adapter that read only
    seconds would fall back to its own backoff and knock again before the service asked it to.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return int(value) * 1000
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with an unknown origin (RFC 5322)
        when = when.replace(tzinfo=UTC)
    delta = when - (now or datetime.now(UTC))
    return max(0, int(delta.total_seconds() * 1000))
