"""A batch stops growing once its members are expected to take the time budget."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.middleware.batch import BatchedHandling, HandlingTimes
from shared.runtime import Runtime
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until

BACKLOG = 8


@pytest.fixture
def batching(broker: dramatiq.Broker) -> Iterator[BatchedHandling]:
    middleware = next(m for m in broker.middleware if isinstance(m, BatchedHandling))
    budget_s = middleware.budget_s
    yield middleware
    middleware.budget_s = budget_s


class FixedTimes(HandlingTimes):
    """Expectations that the handled messages do not move: how long a handler really takes
    depends on how busy the machine is, and the batches' sizes must depend on the budget only."""

    def record(self, actor_name: str, seconds: float) -> None:
        return None


def transactions_for_a_backlog(broker: dramatiq.Broker, runtime: Runtime, expected_s: float) -> int:
    """Handle a backlog with one thread that expects each place_order to take `expected_s`."""
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.queue_prefetch = BACKLOG  # the whole backlog in the process, as under load
    worker.start()
    try:
        (thread,) = worker.workers
        thread.times = FixedTimes()
        HandlingTimes.record(thread.times, "fulfilment.place_order", expected_s)
        thread.pause()
        thread.paused_event.wait(timeout=5)
        place = broker.get_actor("fulfilment.place_order")
        for payload in [place_order() for _ in range(BACKLOG)]:
            place.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
        wait_until(lambda: worker.work_queue.qsize() == BACKLOG)
        thread.resume()
        broker.join("fulfilment", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    with runtime.sessions() as session:
        return int(session.scalar(text("SELECT count(DISTINCT xmin::text) FROM processed_messages")) or 0)


def test_messages_expected_to_take_the_budget_each_are_handled_alone(broker, runtime, batching):
    batching.budget_s = 0.05
    assert transactions_for_a_backlog(broker, runtime, expected_s=0.06) == BACKLOG


def test_without_a_budget_the_backlog_is_one_batch(broker, runtime, batching):
    batching.budget_s = 0.0
    assert transactions_for_a_backlog(broker, runtime, expected_s=0.06) == 1


def test_the_default_budget_keeps_batches_of_eight_millisecond_handlers_to_three(broker, runtime, batching):
    """20 ms (`worker_batch_budget_ms`): a member's follow-ups wait for the batch's commit, and at
    50 orders/s, with 50 ms, that wait was most of each hop's time to the relay."""
    assert batching.budget_s == Settings().worker_batch_budget_ms / 1000 == 0.02
    # 8 members expected at 8 ms each: batches of 3, 3 and 2 (the third member reaches 24 ms)
    assert transactions_for_a_backlog(broker, runtime, expected_s=0.008) == 3
