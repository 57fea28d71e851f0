"""The RabbitMQ broker, its queue topology, its JSON encoder and the middleware order.

Differences from a stock `RabbitmqBroker`, each on purpose:
- queues are quorum queues (setting `queue_type`) with a delivery limit, so a message that kills
  its worker again and again ends in the dead-letter queue instead of looping;
- the dead-letter queues (`.XQ`) have no TTL: nothing expires silently, the archive sweeps them;
- publisher confirms are on for everything the broker itself publishes (retries, delayed
  messages); the outbox relay publishes with windowed confirms of its own;
- the encoder is strict JSON: a body that is not a well-formed Dramatiq message is turned into a
  message for the `circulate.undecodable` actor, which dead-letters it with its reason; options a
  producer sets are cut down to an allowlist and each kept option is checked for its type and
  range (`shared.options`): a message with a bad one is dead-lettered with the reason;
- the `.DQ` queues have no delivery limit: a delayed message handed back by a restarting worker
  or a closed channel is not a poison message;
- no delay waits in a worker for longer than `broker_delay_max_ms`: a later eta, or a longer
  retry delay, is moved to the PostgreSQL schedule (`shared.schedule`) and the delivery acked;
- a middleware hook that raises never lets a failed message be acked away (`emit_before` and
  `emit_after` below);
- a hook is called only on the middleware whose class defines it (`shared.middleware_dispatch`),
  not on every middleware for every message; order and failure handling are Dramatiq's;
- it connects to the first live node of `CIRCULATE_AMQP_URL` (`shared.broker_nodes`), and a
  consumer that lost its connection reconnects after a capped, jittered wait;
- an ack or nack that can no longer be sent (the delivery's channel died with its node) is
  counted in `circulate_acks_lost_total` and logged once per lost connection: RabbitMQ has already
  put the message back, and its idempotency key absorbs the redelivery. Dramatiq would log it and
  retry it every 5 s on the consumer thread, stalling consumption, or send its tag on the new
  channel, where the same number may be another delivery;
- a prefetched message whose connection is gone is not handled at all (`StaleDelivery`): RabbitMQ
  redelivers it on a live connection, so handling it here would only spend the worker's threads
  on work that is done again, behind which the redelivered messages would wait (with 256
  prefetched per consumer, most of a failover's stall).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.common import current_millis, dq_name, q_name, xq_name
from dramatiq.encoder import Encoder, MessageData
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    MiddlewareError,
    Retries,
    ShutdownNotifications,
    SkipMessage,
    TimeLimit,
)

from shared import options as message_options
from shared.broker_nodes import ReconnectBackoff, pika_parameters
from shared.config import QUEUES, Settings
from shared.errors import InvalidMessage, MiddlewareFailed
from shared.metrics import ACKS_LOST
from shared.middleware_dispatch import HookTable

UNDECODABLE_ACTOR = "circulate.undecodable"

#: Options Dramatiq's own middleware writes; anything else a producer sets is dropped on decode.
ALLOWED_OPTIONS = message_options.ALLOWED_OPTIONS

logger = logging.getLogger(__name__)

#: Writes a message to the PostgreSQL schedule, due at the given epoch milliseconds.
Scheduler = Callable[[dramatiq.Message[Any], int], None]

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
    "message_timestamp": int,
}


class StrictJSONEncoder(Encoder):
    """JSON only, never pickle; decoding never raises, so no body is ever dropped by the consumer.

    Options are checked against `limits` (`shared.options`); a message with a bad option keeps
    its identity and is marked rejected, so the actor factory dead-letters it with the reason.
    """

    def __init__(self, limits: message_options.OptionLimits | None = None) -> None:
        self.limits = limits or message_options.OptionLimits()

    def encode(self, data: MessageData) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def decode(self, data: bytes) -> MessageData:
        try:
            fields = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            return undecodable_message(data, f"body is not JSON: {error}")
        problem = _shape_problem(fields)
        if problem:
            return undecodable_message(data, problem)
        fields["options"] = message_options.checked(fields["options"], self.limits)
        return dict(fields)


def _shape_problem(fields: Any) -> str | None:
    if not isinstance(fields, dict):
        return "body is not a JSON object"
    for name, kind in _FIELDS.items():
        if name not in fields:
            return f"body has no {name!r} field"
        if not isinstance(fields[name], kind) or isinstance(fields[name], bool):
            return f"field {name!r} has the wrong type"
    return None


def undecodable_message(data: bytes, reason: str) -> MessageData:
    """A stand-in message that carries the raw body and the reason to the dead-letter path."""
    digest = hashlib.sha256(data).hexdigest()
    return {
        "queue_name": "undecodable",
        "actor_name": UNDECODABLE_ACTOR,
        "args": [],
        "kwargs": {"reason": reason, "raw": data.decode("utf-8", errors="replace")[:10_000]},
        "options": {},
        "message_id": str(uuid.UUID(digest[:32])),
        # Stamped now, so the age limit never pre-empts the reason with its own.
        "message_timestamp": int(time.time() * 1000),
    }


class CirculateConsumer(_RabbitmqConsumer):
    """Trusts the queue a message came from, not the queue its body names.

    Dramatiq routes acks through `message.queue_name`; a body naming another queue (or the
    undecodable stand-in) would otherwise crash the worker thread instead of being dead-lettered.
    """

    def __init__(self, broker: CirculateBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._lost_reported = False
        #: Set when Dramatiq closes this consumer (after a connection error, or at shutdown):
        #: nothing it delivered can be acked any more.
        self.closed = False

    def close(self) -> None:
        self.closed = True
        super().close()  # type: ignore[no-untyped-call]

    def __next__(self) -> Any:
        delivered = super().__next__()  # type: ignore[no-untyped-call]
        if delivered is None:
            return None
        # Tags number deliveries per channel: only this consumer's channel may ack this one.
        delivered._circulate_consumer = self
        if delivered.queue_name != self.queue_name:
            delivered._message = delivered._message.copy(queue_name=self.queue_name)
        if self._schedule_if_far(delivered):
            return None
        return delivered

    def _schedule_if_far(self, delivered: Any) -> bool:
        """Move a delivery whose eta is beyond the broker's delay bound to the schedule; ack it.

        A delayed message waits in the worker's memory, unacked, until its eta: past RabbitMQ's
        consumer timeout that closes the channel, and every hand-back counts a delivery. From a
        work queue any eta beyond the small tolerance is moved (a producer's eta must not pin
        prefetch slots that good messages need); from a `.DQ` only one beyond the bound.
        """
        eta = delivered.options.get("eta")
        if eta is None or message_options.REJECTED in delivered.options:
            return False
        broker: CirculateBroker = self.broker
        horizon = broker.delay_max_ms if self.queue_name.endswith(".DQ") else IMMEDIATE_ETA_TOLERANCE_MS
        if eta <= time.time() * 1000 + horizon:
            return False
        message = _undelayed(delivered._message)
        try:
            broker.schedule(message, int(eta))
        except Exception as error:
            logger.warning("could not move message %s to the schedule", message.message_id, exc_info=True)
            delivered.options[message_options.REJECTED] = (
                f"its eta is {int(eta - time.time() * 1000)} ms ahead, beyond what a worker may hold "
                f"({horizon} ms), and it could not be moved to the schedule: {error}"
            )
            del delivered.options["eta"]
            return False
        self.known_tags.discard(delivered._tag)
        self.connection.add_callback_threadsafe(lambda: self.channel.basic_ack(delivered._tag))
        return True

    def ack(self, message: Any) -> None:
        self._settle("ack", message)

    def nack(self, message: Any) -> None:
        self._settle("nack", message)

    def _settle(self, operation: str, message: Any) -> None:
        """Ack or nack on the delivery's own channel; one that died with its node is counted."""
        origin = getattr(message, "_circulate_consumer", self)
        if origin is self:
            held: dict[CirculateConsumer, list[int]] | None = getattr(_held, "acks", None)
            if held is not None and operation == "ack":
                self._hold_ack(held, message)
                return
            try:
                getattr(super(), operation)(message)
                return
            except ConnectionClosed:
                pass
        ACKS_LOST.labels(self.queue_name, operation).inc()
        origin.report_lost(operation)

    def _hold_ack(self, held: dict[CirculateConsumer, list[int]], message: Any) -> None:
        try:
            self.known_tags.remove(message._tag)
        except KeyError:
            self.logger.warning("Failed to ack message: not in known tags.")
            return
        held.setdefault(self, []).append(message._tag)

    def send_acks(self, tags: list[int]) -> None:
        """Ack `tags` (taken off `known_tags` already) in one callback on the connection's thread."""
        try:
            self.connection.add_callback_threadsafe(functools.partial(self._ack_tags, tags))
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
            ACKS_LOST.labels(self.queue_name, "ack").inc(len(tags))
            self.report_lost("ack")

    def _ack_tags(self, tags: list[int]) -> None:
        """Every ack frame queued, then one flush: one write, where `basic_ack` flushes each."""
        channel = self.channel
        impl = getattr(channel, "_impl", None)
        if impl is None:  # not pika's BlockingChannel (a stand-in in tests)
            for tag in tags:
                channel.basic_ack(tag)
            return
        for tag in tags:
            impl.basic_ack(delivery_tag=tag, multiple=False)
        channel._flush_output()

    def report_lost(self, operation: str) -> None:
        """Say once per lost connection that its deliveries' acks are gone (and why that is safe)."""
        if self._lost_reported:
            return
        self._lost_reported = True
        logger.warning(
            "%s: the connection that delivered in-flight messages is gone, so their %ss cannot be sent; "
            "RabbitMQ redelivers them and their idempotency keys absorb the repeat "
            "(counted in circulate_acks_lost_total, not logged again for this connection)",
            self.queue_name,
            operation,
        )


_held = threading.local()


@contextlib.contextmanager
def acks_held() -> Iterator[None]:
    """Acks this thread sends meanwhile go out together when the block ends, per consumer.

    The batch path (`shared.middleware.batch`) acks its messages one after another after one
    commit; sent together, they cost the consumer thread one callback and one write instead of
    one each. Each message is still acked on its own delivery tag (never `multiple`), its ack
    hooks run as before, and an ack whose connection is gone is counted as lost as before.
    """
    held: dict[CirculateConsumer, list[int]] = {}
    _held.acks = held
    try:
        yield
    finally:
        _held.acks = None
        for consumer, tags in held.items():
            consumer.send_acks(tags)


class StaleDelivery(SkipMessage):
    """The message's connection is gone: RabbitMQ redelivers it, so this copy is not handled."""


def delivered_on_closed_connection(message: Any) -> bool:
    origin = getattr(message, "_circulate_consumer", None)
    return origin is not None and bool(origin.closed)


class _QuietStaleSkips(logging.Filter):
    """Drops Dramatiq's "Message ... was skipped." for stale deliveries: one per prefetched message
    after a node's loss. The loss itself is logged once (`CirculateConsumer.report_lost`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and getattr(args[0], "_circulate_stale", False))


#: How far ahead an eta on a work queue may be and still be held by the worker (clock skew).
IMMEDIATE_ETA_TOLERANCE_MS = 1_000

#: Message hooks whose failure fails the attempt instead of being logged and ignored.
_GUARDED_BEFORE = frozenset({"process_message"})
_GUARDED_AFTER = frozenset({"process_message", "skip_message"})


class CirculateBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker with Circulate's queue arguments (see the module docstring)."""

    def __init__(self, *, settings: Settings, middleware: list[Middleware]) -> None:
        self._hooks = HookTable()
        super().__init__(url=settings.amqp_urls, confirm_delivery=True, middleware=middleware)
        # Every node, from a random first one: pika tries each in turn on every (re)connect.
        self.parameters = pika_parameters(settings.amqp_urls)
        self._consumer_backoff: dict[str, ReconnectBackoff] = {}
        worker_log = logging.getLogger("dramatiq.worker.WorkerThread")
        if not any(isinstance(f, _QuietStaleSkips) for f in worker_log.filters):
            worker_log.addFilter(_QuietStaleSkips())
        self.queue_type = settings.queue_type
        self.delivery_limit = settings.delivery_limit
        self.delay_max_ms = settings.broker_delay_max_ms
        #: Set by the worker process at boot (it owns the database); None elsewhere.
        self.scheduler: Scheduler | None = None

    @property
    def middleware(self) -> list[Middleware]:
        """The middleware in order; assign a new list or use `add_middleware` (both re-read it)."""
        return self._hooks.middleware

    @middleware.setter
    def middleware(self, middleware: list[Middleware]) -> None:
        self._hooks.middleware = middleware

    def add_middleware(
        self,
        middleware: Middleware,
        *,
        before: type[Middleware] | None = None,
        after: type[Middleware] | None = None,
    ) -> None:
        super().add_middleware(middleware, before=before, after=after)
        self._hooks.forget()

    @property
    def consumer_class(self) -> type[CirculateConsumer]:
        return CirculateConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> CirculateConsumer:
        """A consumer on the first live node; a reconnect waits a capped, jittered time first.

        Dramatiq's consumer thread waits a fixed 3 s after losing its consumer, every worker
        process in step; the jitter on top (up to 0.5 s, doubling per failed attempt up to 5 s)
        spreads a fleet's reconnects over the surviving nodes.
        """
        backoff = self._consumer_backoff.get(queue_name)
        if backoff is None:
            backoff = self._consumer_backoff[queue_name] = ReconnectBackoff(first_s=0.5, cap_s=5.0)
        else:
            time.sleep(backoff.next_delay())
        consumer: CirculateConsumer = super().consume(queue_name, prefetch, timeout)  # type: ignore[assignment]
        backoff.reset()
        return consumer

    def schedule(self, message: dramatiq.Message[Any], due_ms: int) -> None:
        """Keep `message` in the PostgreSQL schedule until `due_ms`; the relay publishes it then."""
        if self.scheduler is None:
            raise RuntimeError("this process has no schedule (only worker processes own one)")
        self.scheduler(message, due_ms)

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        """Publish `message`; a delay beyond `broker_delay_max_ms` goes to the schedule instead.

        Retries' backoff and a handler's `TransientError(delay_ms=...)` (a carrier's long
        Retry-After) both come through here.
        """
        if delay is not None and delay > self.delay_max_ms and self.scheduler is not None:
            self.schedule(_undelayed(message), current_millis() + delay)
            return message
        return super().enqueue(message, delay=delay)

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """As Dramatiq's, but a failing `before_process_message` hook fails the attempt.

        Dramatiq logs and ignores it: the actor would run without what the hook should have done.
        Raised from here, the worker treats it as the attempt's exception (retried, then
        dead-lettered with the reason), never as success.
        """
        hook = "before_" + signal
        if signal not in _GUARDED_BEFORE:
            for middleware in self._hooks.before(hook):
                try:
                    getattr(middleware, hook)(self, *args, **kwargs)
                except MiddlewareError:
                    raise
                except Exception:
                    self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)
            return
        if delivered_on_closed_connection(args[0]):
            # Before any middleware: nothing is started, so nothing is counted or logged for it.
            args[0]._circulate_stale = True
            raise StaleDelivery("its connection is gone; RabbitMQ redelivers it")
        for middleware in self._hooks.before(hook):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception as error:
                raise MiddlewareFailed(_hook_failure(middleware, hook, error)) from error
        _fail_if_rejected(args[0])

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """As Dramatiq's, but a hook that raises after a failed attempt dead-letters the message.

        Dramatiq logs the error and then acks the message, because nothing marked it failed: a
        `Retries` that raised before re-enqueueing it (a bad option, a lost connection) lost it.
        Here the message is marked failed instead, so it is rejected to its `.XQ` with the reason.
        After a successful attempt the effects are committed, and the ack stands.
        """
        hook = "after_" + signal
        if signal not in _GUARDED_AFTER:
            for middleware in self._hooks.after(hook):
                try:
                    getattr(middleware, hook)(self, *args, **kwargs)
                except Exception:
                    self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)
            return
        message = args[0]
        attempt_failed = signal == "skip_message" or kwargs.get("exception") is not None
        for middleware in self._hooks.after(hook):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except Exception as error:
                self.logger.critical(
                    "Unexpected failure in after_%s of %r.", signal, middleware, exc_info=True
                )
                if attempt_failed and not message.failed:
                    earlier = getattr(message, "_exception", None)
                    reason = _hook_failure(middleware, hook, error)
                    if earlier is not None:
                        reason += f"; the attempt had failed with {type(earlier).__name__}: {earlier}"
                    failure = MiddlewareFailed(reason)
                    failure.__cause__ = error
                    message.stuff_exception(failure)
                    message.fail()

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": xq_name(queue_name),
        }
        if self.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
            arguments["x-delivery-limit"] = self.delivery_limit
        return arguments

    def delay_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments = self._build_queue_arguments(queue_name)
        arguments.pop("x-delivery-limit", None)
        return arguments

    def _declare_dq_queue(self, queue_name: str) -> Any:
        """A `.DQ` without a delivery limit: a delayed message handed back is not poison.

        A `.DQ` declared by an earlier version (with the limit) makes RabbitMQ refuse the new
        arguments. A worker then uses it as it is and says so (an eta beyond the bound that it
        delivers is moved to the schedule all the same); `circulate setup` replaces it
        (`shared.topology.replace_stale_delay_queues`).
        """
        arguments = self.delay_queue_arguments(queue_name)
        name = dq_name(queue_name)
        try:
            return self.channel.queue_declare(queue=name, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code != 406:
                raise
        del self.channel
        logger.warning(
            "%s was declared by an earlier version with a delivery limit; using it as it is until "
            "`circulate setup` replaces it (with the workers stopped)",
            name,
        )
        return self.channel.queue_declare(queue=name, passive=True)

    def _declare_xq_queue(self, queue_name: str) -> Any:
        arguments = {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}
        return self.channel.queue_declare(queue=xq_name(queue_name), durable=True, arguments=arguments)

    def declare_topology(self) -> list[str]:
        """Declare every queue with its delay and dead-letter queues; `circulate setup` calls this."""
        declared = []
        for queue in QUEUES:
            self.declare_queue(queue, ensure=True)
            declared += [queue, dq_name(queue), xq_name(queue)]
        return declared


def build_middleware(settings: Settings, extra: list[Middleware]) -> list[Middleware]:
    """The middleware order, in one list: limits first, retries, then Circulate's own."""
    return [
        AgeLimit(max_age=settings.max_age_ms),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
        *extra,
    ]


def _undelayed(message: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
    """The message as the schedule keeps it: its own queue (not `.DQ`), no eta.

    `Retries` hands over the worker's MessageProxy, the consumer a Message: both are accepted.
    """
    plain: dramatiq.Message[Any] = getattr(message, "_message", message)
    options = {name: value for name, value in plain.options.items() if name != "eta"}
    return dataclasses.replace(plain, queue_name=q_name(plain.queue_name), options=options)


def _fail_if_rejected(message: Any) -> None:
    """A message whose options failed their checks at decode is dead-lettered before any actor runs.

    Failed here, Dramatiq's worker skips the actor, `Retries` sees no exception to retry, and the
    message is rejected to its `.XQ`; the dead-letter recorder reads the reason off the exception.
    """
    reason = message.options.get(message_options.REJECTED)
    if reason is not None and not message.failed:
        message.stuff_exception(InvalidMessage(str(reason)))
        message.fail()


def _hook_failure(middleware: Middleware, hook: str, error: BaseException) -> str:
    return f"{hook} of {type(middleware).__name__} raised {type(error).__name__}: {error}"


def build_broker(settings: Settings, *, extra_middleware: list[Middleware] | None = None) -> CirculateBroker:
    """A broker for `settings`; also installs the strict encoder process-wide (Dramatiq has one)."""
    dramatiq.set_encoder(StrictJSONEncoder(message_options.OptionLimits.from_settings(settings)))
    return CirculateBroker(settings=settings, middleware=build_middleware(settings, extra_middleware or []))
