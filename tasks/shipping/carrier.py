"""The carrier's label API as the shipping handlers need it, and the errors that decide retries.

A label purchase cannot join our database transaction, so every purchase carries the producer's
idempotency key as the carrier's `Idempotency-Key` header, the same on every retry: the carrier
then sells one label however many times we ask. That makes short in-handler retries safe.

    CarrierUnavailable(TransientError)  5xx, 429, timeout or connection error, after a few quick
                                        retries here; `delay_ms` carries a Retry-After too long to
                                        wait in the handler, so the broker waits instead
    AddressRejected(PermanentError)     422: the address will not become valid by asking again
    CarrierRejected(PermanentError)     any other 4xx (401, 404, 409 ...): our request is wrong

A 4xx is never retried. `on_response(operation, status, seconds)` is called once per HTTP
attempt (status None when no answer came) so that metrics see retries too; it must not raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import quote

import httpx

from shared import metrics
from shared.config import Settings
from shared.errors import PermanentError, TransientError
from shared.http_retry import QuickRetry

OnResponse = Callable[[str, int | None, float], None]


class CarrierUnavailable(TransientError):
    """The carrier did not answer usefully; asking again later with the same key is safe."""


class AddressRejected(PermanentError):
    """The carrier refused an address; `field` (such as `ship_to.line1`) says which part to fix."""

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CarrierRejected(PermanentError):
    """The carrier refused the request itself (auth, unknown label, key reused with another body)."""

    def __init__(self, message: str, *, status_code: int, error: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postcode: str
    country: str


@dataclass(frozen=True)
class PurchasedLabel:
    label_id: str
    tracking_number: str
    label_url: str
    cost_minor: int
    currency: str
    carrier: str


class CarrierClient:
    """One pooled HTTP connection to the carrier, built at worker boot and closed at shutdown."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 5.0,
        retry_attempts: int = 3,
        max_retry_wait_s: float = 2.0,
        on_response: OnResponse | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
        )
        self._retry = QuickRetry(
            transient=CarrierUnavailable, attempts=retry_attempts, max_wait_s=max_retry_wait_s
        )
        self._on_response = on_response

    def buy_label(
        self,
        *,
        idempotency_key: str,
        reference: str,
        ship_from: Address,
        ship_to: Address,
        weight_grams: int,
        service: str = "standard",
    ) -> PurchasedLabel:
        """Buy one label; calling again with the same key returns the first purchase, not a second."""
        payload = {
            "reference": reference,
            "ship_from": asdict(ship_from),
            "ship_to": asdict(ship_to),
            "weight_grams": weight_grams,
            "service": service,
        }
        headers = {"Idempotency-Key": idempotency_key}
        response = self._send("buy_label", "POST", "/v1/labels", payload=payload, headers=headers)
        return _label_from(response)

    def void_label(self, label_id: str) -> None:
        """Cancel a label so that it is refunded; voiding an already void label is not an error."""
        self._send("void_label", "POST", f"/v1/labels/{quote(label_id, safe='')}/void")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self._retry.call(self._attempt, operation, method, path, payload, headers)

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self._http.request(method, path, json=payload, headers=headers)
        except httpx.TransportError as exc:
            self._report(operation, None, started)
            problem = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
            raise CarrierUnavailable(f"carrier {problem} during {operation}: {exc!r}") from exc
        self._report(operation, response.status_code, started)
        _raise_for_status(operation, response)
        return response

    def _report(self, operation: str, status: int | None, started: float) -> None:
        if self._on_response is not None:
            self._on_response(operation, status, time.perf_counter() - started)


def carrier_from_settings(settings: Settings) -> CarrierClient:
    """The "carrier" adapter factory (`tasks.registry.ADAPTERS`), built at worker boot; measured."""
    return CarrierClient(
        base_url=settings.carrier_url,
        api_key=settings.carrier_api_key.get_secret_value(),
        timeout_s=settings.carrier_timeout_s,
        on_response=record_response,
    )


def record_response(operation: str, status: int | None, seconds: float) -> None:
    """`on_response` of the worker's client: every HTTP attempt, retries included, is measured."""
    metrics.CARRIER_REQUEST.labels(operation).observe(seconds)
    metrics.CARRIER_RESPONSES.labels(operation, "error" if status is None else str(status)).inc()


def _raise_for_status(operation: str, response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        message = f"carrier answered {status} to {operation}"
        raise CarrierUnavailable(message, delay_ms=retry_after_ms(response.headers.get("Retry-After")))
    error = _error_body(response)
    if status == 422:
        raise AddressRejected(
            field=error.get("field", "address"), message=error.get("message", response.text)
        )
    detail = error.get("message", response.text[:200])
    raise CarrierRejected(
        f"carrier refused {operation} with {status}: {detail}", status_code=status, error=error.get("error")
    )


def _error_body(response: httpx.Response) -> dict[str, str]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in body.items()} if isinstance(body, dict) else {}


def _label_from(response: httpx.Response) -> PurchasedLabel:
    try:
        body = response.json()
        return PurchasedLabel(
            label_id=str(body["label_id"]),
            tracking_number=str(body["tracking_number"]),
            label_url=str(body["label_url"]),
            cost_minor=int(body["cost_minor"]),
            currency=str(body["currency"]),
            carrier=str(body["carrier"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        # Transient on purpose: the same idempotency key returns the same label when asked again.
        raise CarrierUnavailable(f"carrier answered {response.status_code} with an unreadable label") from exc


def retry_after_ms(value: str | None, *, now: datetime | None = None) -> int | None:
    """Read a Retry-After header (seconds or an HTTP date) as milliseconds; None if absent or garbled."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return int(value) * 1000
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with an unknown origin (RFC 5322)
        when = when.replace(tzinfo=UTC)
    delta = when - (now or datetime.now(UTC))
    return max(0, int(delta.total_seconds() * 1000))
