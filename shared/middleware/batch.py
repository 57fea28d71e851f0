"""`BatchedHandling`: worker threads that apply waiting messages in batches (`shared.batch`).

Dramatiq's worker threads take one message at a time off the process's work queue. At boot this
middleware has the worker start `BatchingWorkerThread`s instead (through `Worker._add_worker`,
the one place Dramatiq builds them). Given a message, such a thread also takes the messages
already waiting behind it, without waiting for more, up to `batch_size` or until the members'
domain functions are expected to take `budget_s` (`HandlingTimes`: each actor's recent mean), and
only those that the process's idle threads cannot take at once: a burst (the relay publishes an order's
follow-ups in one pass) spreads over idle threads instead of queueing behind one transaction,
whose commit would hold every member's follow-ups until the last member is done. When the queue
is short, every message goes the one-message path as before, so batching adds no latency.

Each member of a batch passes through every middleware hook as it would alone (the
`process_message` hooks around its domain function: metrics, log context, time limit); the
acks, and with them the outcome counts and log lines, come only after the batch commits. If the
batch is abandoned, each member is handled again by Dramatiq's own `process_message`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from dramatiq.worker import WorkerThread

from shared.batch import Delivery, apply_batch, batchable
from shared.broker import acks_held
from shared.logs import lines_held
from shared.metrics_held import metrics_held

logger = logging.getLogger(__name__)


class BatchedHandling(Middleware):
    def __init__(self, batch_size: int, *, budget_s: float) -> None:
        self.batch_size = batch_size
        self.budget_s = budget_s

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.batch_size <= 1:
            return

        busy = _BusyThreads()
        times = HandlingTimes()

        def add_worker() -> None:
            thread = BatchingWorkerThread(
                batch_size=self.batch_size,
                budget_s=self.budget_s,
                times=times,
                idle_threads=lambda: len(worker.workers) - busy.count,
                busy=busy,
                broker=broker,
                consumers=worker.consumers,
                work_queue=worker.work_queue,
                worker_timeout=worker.worker_timeout,
            )
            thread.start()
            worker.workers.append(thread)

        setattr(worker, "_add_worker", add_worker)  # noqa: B010 - replacing a method on purpose


class _BusyThreads:
    """How many of a worker's threads are handling a message (the others wait on its queue)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self, delta: int) -> None:
        with self._lock:
            self.count += delta


class HandlingTimes:
    """Each actor's recent mean time in its domain function (an exponentially weighted mean), for
    a thread to guess how long a batch will take; an actor not yet timed counts as instant."""

    #: The weight of the newest time: about the last twenty count.
    WEIGHT = 0.05

    def __init__(self) -> None:
        self._mean_s: dict[str, float] = {}

    def expected_s(self, actor_name: str) -> float:
        return self._mean_s.get(actor_name, 0.0)

    def record(self, actor_name: str, seconds: float) -> None:
        # One writer at a time is not needed: a lost update only delays the mean by one sample.
        mean = self._mean_s.get(actor_name)
        self._mean_s[actor_name] = seconds if mean is None else mean + self.WEIGHT * (seconds - mean)


class BatchingWorkerThread(WorkerThread):
    def __init__(
        self,
        *,
        batch_size: int,
        idle_threads: Callable[[], int],
        busy: _BusyThreads,
        budget_s: float,
        times: HandlingTimes,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.budget_s = budget_s
        self.times = times
        self.idle_threads = idle_threads
        self.busy = busy

    def process_message(self, message: Any) -> None:
        self.busy.add(1)
        try:
            self._process_with_waiting(message)
        finally:
            self.busy.add(-1)

    def _process_with_waiting(self, message: Any) -> None:
        first = batchable(message, self.broker.actors)
        if first is None:
            super().process_message(message)
            return
        batch, alone = [first], []
        expected_s = self.times.expected_s(first.message.actor_name)
        # Leave as many waiting messages as there are idle threads to take them.
        while len(batch) < self.batch_size and self.work_queue.qsize() > self.idle_threads():
            if self.budget_s and expected_s >= self.budget_s:
                break
            try:
                item = self.work_queue.get_nowait()
            except Empty:
                break
            member = batchable(item.message, self.broker.actors)
            if member is not None and member.runtime is first.runtime:
                batch.append(member)
                expected_s += self.times.expected_s(member.message.actor_name)
            else:
                alone.append(item.message)
        try:
            if len(batch) == 1:
                super().process_message(message)
            else:
                self._process_batch(batch)
        finally:
            for other in alone:
                super().process_message(other)

    def _process_batch(self, batch: list[Delivery]) -> None:
        # The batch's metrics are written together, once its messages are acked (or dropped, if
        # it is abandoned: each message is then observed by the one-message path alone).
        abandoned: BaseException | None = None
        with metrics_held() as held_metrics:
            try:
                apply_batch(batch, self._with_hooks)
            except BaseException as error:
                held_metrics.discard()
                abandoned = error
            else:
                # One write for the batch's acks (each still on its own tag) and one for its lines.
                with acks_held(), lines_held():
                    for delivery in batch:
                        self.consumers[delivery.message.queue_name].post_process_message(delivery.message)
                        self.work_queue.task_done()
        if abandoned is not None:
            logger.debug("batch of %d abandoned (%r); handling each alone", len(batch), abandoned)
            for delivery in batch:
                super().process_message(delivery.message)

    def _with_hooks(self, delivery: Delivery, handle: Callable[[], None]) -> None:
        """The member's `process_message` hooks around its domain function, as Dramatiq runs them.

        A hook that fails or fails the message, or a domain function that raises, abandons the
        batch; the hooks are closed as for a plain return first, so every `before_` has its
        `after_` (the one-message path then runs them again, for real).
        """
        message = delivery.message
        try:
            self.broker.emit_before("process_message", message)
            if message.failed:
                raise RuntimeError("a middleware failed the message")
            started = time.perf_counter()
            handle()
            self.times.record(message.actor_name, time.perf_counter() - started)
        except BaseException:
            self.broker.emit_after("process_message", message, result=None)
            raise
        self.broker.emit_after("process_message", message, result=None)
