"""The carrier's label API as the shipping handlers need it, and the errors that decide retries.

A label purchase cannot join our database transaction, so every purchase carries the producer's
idempotency key as the carrier's `Idempotency-Key` header, the same on every retry: the carrier
then sells one label however many times we ask. That makes short in-handler retries safe.

    CarrierUnavailable(TransientError)  5xx, 429, timeout or connection error, after a few quick
                                        retries here; `delay_ms` carries a Retry-After too long to
                                        wait in the handler, so the broker waits instead
    AddressRejected(PermanentError)     422: the address will not become valid by asking again
    CarrierRejected(PermanentError)     any other 4xx (401, 404, 409 ...): our request is wrong

A 4xx is never retried. The connection, timeout, quick retries, Retry-After and the per-attempt
`on_response` hook are `shared.http_adapter.HttpAdapter`'s; the worker's client measures every
attempt with `record_response`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import quote

from shared import metrics
from shared.config import Settings
from shared.errors import PermanentError, TransientError
from shared.http_adapter import HttpAdapter, HttpResponse


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


class CarrierClient(HttpAdapter):
    """The carrier's label API; one pooled connection, built at worker boot and closed at shutdown."""

    service = "carrier"
    unavailable = CarrierUnavailable
    default_max_retry_wait_s = 2.0

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
        response = self._request("buy_label", "POST", "/v1/labels", payload=payload, headers=headers)
        return _label_from(response)

    def void_label(self, label_id: str) -> None:
        """Cancel a label so that it is refunded; voiding an already void label is not an error."""
        self._request("void_label", "POST", f"/v1/labels/{quote(label_id, safe='')}/void")

    def _refused(self, operation: str, response: HttpResponse) -> PermanentError:
        status = response.status_code
        error = _error_body(response)
        if status == 422:
            return AddressRejected(
                field=error.get("field", "address"), message=error.get("message", response.text)
            )
        detail = error.get("message", response.text[:200])
        return CarrierRejected(
            f"carrier refused {operation} with {status}: {detail}",
            status_code=status,
            error=error.get("error"),
        )


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


def _error_body(response: HttpResponse) -> dict[str, str]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in body.items()} if isinstance(body, dict) else {}


def _label_from(response: HttpResponse) -> PurchasedLabel:
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
