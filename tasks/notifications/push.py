"""The push gateway as the notification handlers need it: one call, and errors that decide retries.

The gateway collapses sends that share a `dedupe_key` into one notification, so the handler
passes the message's idempotency key and a retry (ours or the broker's) never buzzes a phone
twice. That is why a couple of quick in-handler retries are safe.

    PushUnavailable(TransientError)  5xx, 429, timeout or connection error after the quick
                                     retries; `delay_ms` carries a Retry-After too long to wait here
    PushRejected(PermanentError)     any 4xx: the request itself is wrong, never retried
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self

import httpx

from shared.config import Settings
from shared.errors import PermanentError, TransientError
from shared.http_retry import QuickRetry

OnResponse = Callable[[str, int | None, float], None]


class PushUnavailable(TransientError):
    """The gateway did not answer usefully; sending again with the same dedupe key is safe."""


class PushRejected(PermanentError):
    """The gateway refused the notification (auth, bad payload); retrying cannot help."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class PushClient:
    """One pooled HTTP connection to the push gateway, built at worker boot and closed at shutdown."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 5.0,
        retry_attempts: int = 3,
        max_retry_wait_s: float = 1.0,
        on_response: OnResponse | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
        )
        self._retry = QuickRetry(
            transient=PushUnavailable, attempts=retry_attempts, max_wait_s=max_retry_wait_s
        )
        self._on_response = on_response

    def send(self, *, user_id: str, title: str, body: str, dedupe_key: str) -> str:
        """Queue one notification and return the gateway's push id (the same id for a repeated key)."""
        payload = {"user_id": user_id, "title": title, "body": body, "dedupe_key": dedupe_key}
        response = self._retry.call(self._attempt, payload)
        try:
            return str(response.json()["push_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PushUnavailable(f"push gateway answered {response.status_code} without a push_id") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _attempt(self, payload: dict[str, str]) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self._http.post("/v1/push", json=payload)
        except httpx.TransportError as exc:
            self._report(None, started)
            raise PushUnavailable(f"push gateway did not answer: {exc!r}") from exc
        self._report(response.status_code, started)
        status = response.status_code
        if status == 429 or status >= 500:
            raise PushUnavailable(f"push gateway answered {status}", delay_ms=_retry_after_ms(response))
        if not 200 <= status < 300:
            raise PushRejected(
                f"push gateway refused with {status}: {response.text[:200]}", status_code=status
            )
        return response

    def _report(self, status: int | None, started: float) -> None:
        if self._on_response is not None:
            self._on_response("push_send", status, time.perf_counter() - started)


def push_from_settings(settings: Settings) -> PushClient:
    """The "push" adapter factory (`tasks.registry.ADAPTERS`), built at worker boot."""
    return PushClient(
        base_url=settings.push_url,
        api_key=settings.push_api_key.get_secret_value(),
        timeout_s=settings.carrier_timeout_s,
    )


def _retry_after_ms(response: httpx.Response) -> int | None:
    # Gateways send Retry-After in seconds; a date form is rare enough to fall back to our backoff.
    value = response.headers.get("Retry-After", "").strip()
    return int(value) * 1000 if value.isascii() and value.isdigit() else None
