"""Fulfilment's actors: one line each."""

from __future__ import annotations

from typing import Any

from shared.actors import ActorSpec, handler_actor
from tasks.fulfilment import handlers
from tasks.fulfilment import messages as m

# First among the messages a worker holds: every order's first hop, which confirms it (priorities:
# docs/writing-a-handler.md).
place_order = handler_actor(handlers.place_order, m.PlaceOrder, priority=-1)
cancel_order = handler_actor(handlers.cancel_order, m.CancelOrder)
record_label = handler_actor(handlers.record_label, m.RecordLabel)
record_label_rejection = handler_actor(handlers.record_label_rejection, m.RecordLabelRejection)
record_payment = handler_actor(handlers.record_payment, m.RecordPayment)
record_payment_refusal = handler_actor(handlers.record_payment_refusal, m.RecordPaymentRefusal)
record_tracking = handler_actor(handlers.record_tracking, m.RecordTracking)
complete_order = handler_actor(handlers.complete_order, m.CompleteOrder)

ACTORS: list[ActorSpec[Any]] = [
    place_order,
    cancel_order,
    record_label,
    record_label_rejection,
    record_payment,
    record_payment_refusal,
    record_tracking,
    complete_order,
]
