"""A burst of messages meets idle worker threads: each thread takes one, none batches them."""

from __future__ import annotations

import dramatiq
from sqlalchemy import text

from shared.runtime import Runtime
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until

BURST = 4


def test_a_burst_spreads_over_idle_threads_instead_of_waiting_in_one_batch(broker, runtime: Runtime):
    # Given a worker whose 4 threads are held while a burst of 4 orders reaches its work queue
    worker = dramatiq.Worker(broker, worker_threads=BURST, worker_timeout=100)
    worker.start()
    try:
        for thread in worker.workers:
            thread.pause()
        for thread in worker.workers:
            thread.paused_event.wait(timeout=5)
        place = broker.get_actor("fulfilment.place_order")
        for payload in [place_order() for _ in range(BURST)]:
            place.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
        wait_until(lambda: worker.work_queue.qsize() == BURST)
        # When the threads go back to their queue, all idle
        for thread in worker.workers:
            thread.resume()
        broker.join("fulfilment", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    # Then every order was handled in a transaction of its own (a batch would share one xmin)
    with runtime.sessions() as session:
        transactions = session.scalar(text("SELECT count(DISTINCT xmin::text) FROM processed_messages"))
    assert transactions == BURST
