"""What the carrier sandbox remembers and the rules it applies, kept apart from HTTP.

The sandbox stands in for a shipping carrier and a push gateway in tests and in the demo, so
its rules are the ones our workers must cope with: idempotent purchases keyed by
`Idempotency-Key`, address refusals, labels that cannot be voided once shipped, pushes
collapsed by `dedupe_key`, and faults switched on by configuration. The HTTP layer
(`workers.harness.sandbox.app`) may run handlers on several threads, so every read and write of the state
goes through one lock. Refusals are raised as `SandboxProblem`, which the HTTP layer turns into
a JSON error with the same status.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SERVED_COUNTRIES = frozenset({"GB", "US", "FR", "DE", "IT", "ES", "NL", "BE", "IE"})
_EUROPE = SERVED_COUNTRIES - {"US", "GB"}
_CURRENCY = {"GB": "GBP", "US": "USD"}
CARRIER_NAME = "sandbox-post"
TrackingEvent = Literal["in_transit", "shipped", "delivered", "returned"]


class FaultConfig(BaseModel):
    """Which carrier and gateway requests fail, and how; also the body of POST /v1/sandbox/faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_next: int = Field(default=0, ge=0)
    mode: Literal["5xx", "429", "timeout"] = "5xx"
    retry_after_seconds: int = Field(default=1, ge=0)
    timeout_seconds: float = Field(default=10.0, ge=0)
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None
    fail_references: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxConfig:
    api_key: str = "sandbox-api-key"
    webhook_url: str | None = None
    webhook_secret: str = "sandbox-webhook-secret"
    webhook_attempts: int = 3
    webhook_timeout_s: float = 2.0
    faults: FaultConfig = field(default_factory=FaultConfig)


class SandboxProblem(Exception):
    """A refusal with its HTTP status; `field` points at the part of the body to fix."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.field = field
        self.headers = headers or {}


class AddressIn(BaseModel):
    name: str = Field(min_length=1)
    line1: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postcode: str = Field(min_length=1)
    country: str = Field(min_length=1)


class LabelRequest(BaseModel):
    reference: str = Field(min_length=1)
    ship_from: AddressIn
    ship_to: AddressIn
    weight_grams: int = Field(gt=0, le=30_000)
    service: Literal["standard", "express"] = "standard"


class PushRequest(BaseModel):
    user_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    body: str
    dedupe_key: str = Field(min_length=1)


class EventRequest(BaseModel):
    event: TrackingEvent


@dataclass
class Label:
    label_id: str
    tracking_number: str
    cost_minor: int
    currency: str
    request: LabelRequest
    status: Literal["purchased", "voided"] = "purchased"
    events: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "tracking_number": self.tracking_number,
            "label_url": f"https://labels.sandbox-post.invalid/{self.label_id}.pdf",
            "cost_minor": self.cost_minor,
            "currency": self.currency,
            "carrier": CARRIER_NAME,
            "status": self.status,
            "reference": self.request.reference,
            "service": self.request.service,
            "events": list(self.events),
        }


def check_address(prefix: str, address: AddressIn) -> None:
    """Refuse what a real carrier's address check refuses, driven by visible markers in the data."""
    if "invalid" in address.line1.lower():
        raise SandboxProblem(
            422, "invalid_address", f"{address.line1!r} is not a deliverable street", field=f"{prefix}.line1"
        )
    if address.country not in SERVED_COUNTRIES:
        served = ", ".join(sorted(SERVED_COUNTRIES))
        message = f"country {address.country!r} is not served (served: {served})"
        raise SandboxProblem(422, "invalid_address", message, field=f"{prefix}.country")


def price_minor(order: LabelRequest) -> tuple[int, str]:
    """Domestic 299, within continental Europe 899, anything else 1999; +100 per started kg over 1 kg."""
    origin, destination = order.ship_from.country, order.ship_to.country
    if origin == destination:
        base = 299
    elif origin in _EUROPE and destination in _EUROPE:
        base = 899
    else:
        base = 1999
    extra_kg = max(0, -(-order.weight_grams // 1000) - 1)
    multiplier = 2 if order.service == "express" else 1
    return (base + 100 * extra_kg) * multiplier, _CURRENCY.get(origin, "EUR")


class SandboxState:
    """Labels, pushes, faults and counters of one sandbox process."""

    def __init__(self, config: SandboxConfig) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, Label] = {}
        self._by_key: dict[str, tuple[str, str]] = {}  # Idempotency-Key -> (body fingerprint, label_id)
        self._pushes: dict[str, dict[str, Any]] = {}  # dedupe_key -> stored push
        self._counters = dict.fromkeys(
            ("labels_purchased", "labels_voided", "purchase_requests", "pushes", "webhooks_sent"), 0
        )
        self._counters["webhook_attempts"] = 0
        self.set_faults(config.faults)

    def count(self, counter: str, by: int = 1) -> None:
        with self._lock:
            self._counters[counter] += by

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def purchase(self, key: str, order: LabelRequest) -> tuple[Label, bool]:
        """Return (label, created); a replayed key with the same body gets the first label back."""
        fingerprint = order.model_dump_json()
        with self._lock:
            if key in self._by_key:
                return self._replay(key, fingerprint), False
            check_address("ship_from", order.ship_from)
            check_address("ship_to", order.ship_to)
            label = self._new_label(order)
            self._labels[label.label_id] = label
            self._by_key[key] = (fingerprint, label.label_id)
            self._counters["labels_purchased"] += 1
            return label, True

    def _replay(self, key: str, fingerprint: str) -> Label:
        first_fingerprint, label_id = self._by_key[key]
        if first_fingerprint != fingerprint:
            message = "this Idempotency-Key was first used with a different body"
            raise SandboxProblem(409, "idempotency_conflict", message)
        return self._labels[label_id]

    def _new_label(self, order: LabelRequest) -> Label:
        cost, currency = price_minor(order)
        number = f"SP{len(self._labels) + 1:09d}{order.ship_to.country}"
        return Label(f"lbl_{uuid.uuid4().hex[:16]}", number, cost, currency, order)

    def label(self, label_id: str) -> Label:
        with self._lock:
            return self._find(label_id)

    def void(self, label_id: str) -> Label:
        """Void once; again is a no-op. Refused once a tracking event shows the parcel left."""
        with self._lock:
            label = self._find(label_id)
            if label.events:
                message = f"label {label_id} is already in the carrier's network ({label.events[-1]})"
                raise SandboxProblem(409, "already_shipped", message)
            if label.status != "voided":
                label.status = "voided"
                self._counters["labels_voided"] += 1
            return label

    def record_event(self, label_id: str, event: TrackingEvent) -> dict[str, Any]:
        """Append a tracking event and return the webhook payload announcing it."""
        with self._lock:
            label = self._find(label_id)
            if label.status == "voided":
                raise SandboxProblem(409, "label_voided", f"label {label_id} was voided and cannot move")
            label.events.append(event)
            return {
                "event_id": str(uuid.uuid4()),
                "label_id": label.label_id,
                "tracking_number": label.tracking_number,
                "reference": label.request.reference,
                "event": event,
                "occurred_at": datetime.now(UTC).isoformat(),
            }

    def _find(self, label_id: str) -> Label:
        if label_id not in self._labels:
            raise SandboxProblem(404, "not_found", f"no label {label_id}")
        return self._labels[label_id]

    def push(self, request: PushRequest) -> tuple[str, bool]:
        """Return (push_id, duplicate): a repeated dedupe_key is accepted but stored once."""
        with self._lock:
            stored = self._pushes.get(request.dedupe_key)
            if stored is not None:
                return str(stored["push_id"]), True
            push_id = f"psh_{uuid.uuid4().hex[:16]}"
            received_at = datetime.now(UTC).isoformat()
            self._pushes[request.dedupe_key] = {
                "push_id": push_id,
                **request.model_dump(),
                "received_at": received_at,
            }
            self._counters["pushes"] += 1
            return push_id, False

    def pushes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(push) for push in self._pushes.values()]

    def faults(self) -> FaultConfig:
        with self._lock:
            return self._faults

    def set_faults(self, faults: FaultConfig) -> None:
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)

    def take_fault(self, reference: str | None = None) -> FaultConfig | None:
        """Decide whether this request fails; `fail_next` is used up one request at a time."""
        with self._lock:
            faults = self._faults
            if reference is not None and reference in faults.fail_references:
                return faults
            if faults.fail_next > 0:
                self._faults = faults.model_copy(update={"fail_next": faults.fail_next - 1})
                return faults
            if faults.fail_rate and self._random.random() < faults.fail_rate:
                return faults
            return None
