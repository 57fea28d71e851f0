"""Several delivered messages applied in one transaction: the worker's batch path.

When messages are already waiting in a worker process (a backlog), a worker thread takes up to
`worker_batch_size` of them (fewer when their handlers are expected to take
`worker_batch_budget_ms`, `shared.middleware.batch`) and, in one unit of work: claims every
idempotency key in one statement, calls each message's domain function in
turn, and commits once.
Only after that commit is each message acked, so the guarantee is the one-message path's: the
claims, effects and outbox rows of a message commit together, and a crash before the commit
rolls back everything and the redelivery starts clean.

Anything that is not a plain success abandons the whole batch (`Abandoned`, or whatever was
raised): it is rolled back and every message is handled again, one at a time, by the ordinary
path (`shared.actors.run_message`), which sorts duplicates from conflicts, retries from
dead letters, and counts and logs each outcome. So a batch never decides an outcome other than
success, and a failing message costs its batch-mates one extra attempt, never their effects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared import idempotency
from shared.actors import HandlerActor
from shared.errors import InvalidMessage
from shared.messages import Envelope, Payload, decode_message
from shared.options import REJECTED
from shared.runtime import Runtime
from shared.uow import UnitOfWork


class Abandoned(Exception):
    """The batch cannot commit as a whole; its messages go through the one-message path."""


@dataclass(frozen=True)
class Delivery:
    """A delivered message that may join a batch, decoded once."""

    message: Any  # dramatiq's MessageProxy
    actor: HandlerActor
    runtime: Runtime
    envelope: Envelope
    payload: Payload


#: Runs one message's domain function inside whatever the worker wraps around it (its hooks).
Around = Callable[[Delivery, Callable[[], None]], None]


def batchable(message: Any, actors: dict[str, Any]) -> Delivery | None:
    """The message as a batch member, or None if it must take the one-message path.

    Only first attempts of handler actors with a well-formed envelope and payload: a retry, a
    message whose options were rejected, or one that fails to decode is likely to fail again and
    would only make its batch start over.
    """
    actor = actors.get(message.actor_name)
    if not isinstance(actor, HandlerActor) or message.failed or message.args:
        return None
    if message.options.get("retries") or REJECTED in message.options:
        return None
    try:
        envelope, payload = decode_message(actor.spec.payload_type, message.kwargs)
    except InvalidMessage:
        return None
    return Delivery(message, actor, actor.runtime(), envelope, payload)


def apply_batch(deliveries: Sequence[Delivery], around: Around) -> None:
    """Claim, handle and commit every delivery in one transaction, or raise (all rolled back).

    The members go in the order of their idempotency keys, not in the order they arrived, so
    that batches on other threads take the same rows in the same order. A follow-up's key
    begins with the key of the message it follows (`order-placed:<order>>...`), so the messages
    of one order sort together and each batch locks order rows in one global order. In arrival
    order, two batches each holding one order's row and waiting for the other's deadlocked, and
    PostgreSQL broke the cycle only after its `deadlock_timeout` (1 s) by failing one of them:
    every member of that batch then waited a second and ran again one by one (the label's p99
    at 50 orders/s). Members are independent deliveries, which other threads could have
    handled in any order anyway.
    """
    ordered = sorted(deliveries, key=lambda delivery: delivery.envelope.idempotency_key)
    runtime = ordered[0].runtime
    with UnitOfWork(runtime.sessions, runtime=runtime) as uow:
        if not idempotency.claim_all(uow.session, [(d.envelope, d.payload) for d in ordered]):
            raise Abandoned("a key in the batch was already taken")
        for delivery in ordered:
            uow.handle(delivery.envelope)
            around(delivery, functools.partial(delivery.actor.spec.handler, uow, delivery.payload))
        uow.commit()
