"""`handler_actor`: the one factory that turns a domain function into an idempotent actor.

For every message of every domain it does the same steps, in this order:
1. validate the envelope and payload (`InvalidMessage`, dead-lettered at once, otherwise);
2. open a unit of work (one transaction);
3. claim the idempotency key; a duplicate is marked and skipped, a key reused for other content
   is a `ConflictingReplay` (dead-lettered);
4. call the domain function with the unit of work and the payload;
5. commit claim, effects and outbox rows together, and only then does Dramatiq ack.
A crash anywhere before the commit rolls everything back and the redelivery starts clean.
A worker with a backlog does steps 2-5 for several messages in one transaction (`shared.batch`),
and hands any that does not simply succeed back to this one-message path.

Actors are described by `ActorSpec`s (plain data, no broker) and bound to a broker by the process
that owns it, so importing a domain never needs a broker or the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import dramatiq

from shared import idempotency, outcome
from shared.broker import UNDECODABLE_ACTOR
from shared.config import QUEUES
from shared.db_errors import permanent_database_errors
from shared.errors import ConflictingReplay, InvalidMessage, PermanentError, TransientError
from shared.messages import Payload, decode_message
from shared.runtime import Runtime
from shared.uow import UnitOfWork

P = TypeVar("P", bound=Payload)
Handler = Callable[[UnitOfWork, P], None]


@dataclass(frozen=True)
class ActorSpec(Generic[P]):
    """A domain function, the payload it takes, and actor options (max_retries, time_limit...)."""

    handler: Handler[P]
    payload_type: type[P]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.payload_type.kind

    @property
    def queue(self) -> str:
        return self.payload_type.queue


def handler_actor(handler: Handler[P], payload_type: type[P], **options: Any) -> ActorSpec[P]:
    """Describe an actor; one line per actor in each domain's `actors.py`."""
    return ActorSpec(handler=handler, payload_type=payload_type, options=options)


class HandlerActor(dramatiq.Actor[..., None]):
    """A Dramatiq actor made by `bind_actors`: it knows its spec and runtime, so a worker thread
    can apply several delivered messages in one transaction (`shared.batch`)."""

    def __init__(
        self, fn: Callable[..., None], *, spec: ActorSpec[Any], runtime: Callable[[], Runtime], **kwargs: Any
    ) -> None:
        self.spec = spec
        self.runtime = runtime
        super().__init__(fn, **kwargs)


def run_message(spec: ActorSpec[P], runtime: Runtime, kwargs: dict[str, Any]) -> None:
    """Steps 1-5 of the module docstring for one delivered message."""
    envelope, payload = decode_message(spec.payload_type, kwargs)
    with UnitOfWork(runtime.sessions, envelope=envelope, runtime=runtime) as uow:
        claimed = idempotency.claim(uow.session, envelope, payload)
        if claimed is idempotency.Claim.DUPLICATE:
            idempotency.count_duplicate(uow.session, envelope)
            uow.commit()
            outcome.mark(outcome.Outcome.DUPLICATE_SKIPPED)
            return
        if claimed is idempotency.Claim.CONFLICT:
            raise ConflictingReplay(
                f"idempotency key {envelope.idempotency_key!r} was already used for different content"
            )
        # Deterministic database errors (bad data, a refused constraint) are dead-lettered at once.
        with permanent_database_errors():
            try:
                spec.handler(uow, payload)  # type: ignore[arg-type]
            except TransientError as error:
                if error.delay_ms is None:
                    raise
                raise dramatiq.Retry(str(error), delay=error.delay_ms) from error
            uow.commit()


def bind_actors(
    broker: dramatiq.Broker, specs: Iterable[ActorSpec[Any]], runtime: Callable[[], Runtime]
) -> None:
    """Register every spec on `broker`; `runtime` is read per message (it exists after boot)."""
    for spec in specs:
        _bind(broker, spec, runtime)
    _bind_undecodable(broker)


def _bind(broker: dramatiq.Broker, spec: ActorSpec[Any], runtime: Callable[[], Runtime]) -> None:
    def run(*args: Any, **kwargs: Any) -> None:
        if args:
            raise InvalidMessage("positional arguments are not part of the message contract")
        run_message(spec, runtime(), kwargs)

    run.__name__ = spec.name.replace(".", "_")
    options = dict(spec.options)
    # Lower runs first among the messages a worker process holds (Dramatiq's work queue).
    priority = int(options.pop("priority", 0))
    HandlerActor(
        run,
        spec=spec,
        runtime=runtime,
        broker=broker,
        actor_name=spec.name,
        queue_name=spec.queue,
        priority=priority,
        options={"throws": (PermanentError,), **options},
    )


def _bind_undecodable(broker: dramatiq.Broker) -> None:
    """The actor a body that is not a Dramatiq message becomes (see shared.broker); it only fails."""

    def undecodable(*args: Any, reason: str = "unknown", raw: str = "", **kwargs: Any) -> None:
        raise InvalidMessage(reason, raw=raw)

    dramatiq.Actor(
        undecodable,
        broker=broker,
        actor_name=UNDECODABLE_ACTOR,
        # Never enqueued; any declared queue will do, so no extra queue appears.
        queue_name=QUEUES[0],
        priority=0,
        options={"throws": (PermanentError,)},
    )
