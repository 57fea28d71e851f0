"""The ledger's actors: one line each (queue `ledger`, from the payloads)."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec, handler_actor
from tasks.ledger import handlers
from tasks.ledger.messages import CapturePayment, ReleaseFunds, ReversePayment

capture_payment = handler_actor(handlers.capture_payment, CapturePayment)
release_funds = handler_actor(handlers.release_funds, ReleaseFunds)
reverse_payment = handler_actor(handlers.reverse_payment, ReversePayment)

ACTORS: list[ActorSpec[Any]] = [capture_payment, release_funds, reverse_payment]
