"""Two batches holding the same rows take them in one order, so one waits instead of deadlocking."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from shared.batch import Delivery, apply_batch
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tasks.fulfilment.messages import PlaceOrder
from tests.factories import envelope_for, order_row, place_order

#: Long enough for the other batch to take its first row, or to be blocked taking it.
STEP_S = 1.0


def _lock_the_order(uow: UnitOfWork, payload: PlaceOrder) -> None:
    """What the fulfilment handlers do first: lock the order's row."""
    uow.execute("SELECT id FROM orders WHERE id = %(id)s FOR UPDATE", {"id": payload.order_id})


def _delivery(runtime: Runtime, payload: PlaceOrder, batch: int) -> Delivery:
    """A follow-up of the order's placement, as its key says (`order-placed:<order>>...`)."""
    actor: Any = SimpleNamespace(spec=SimpleNamespace(handler=_lock_the_order))
    envelope = envelope_for(payload, key=f"order-placed:{payload.order_id}>follow-up-{batch}")
    return Delivery(message=None, actor=actor, runtime=runtime, envelope=envelope, payload=payload)


def test_batches_that_arrived_in_opposite_orders_lock_their_rows_in_one_order(clean_db: Runtime) -> None:
    # Given two orders, and a batch of messages for both on each of two threads, in opposite orders
    first, second = place_order(), place_order()
    with clean_db.sessions.begin() as session:
        session.add_all([order_row(first), order_row(second)])
    batches = [
        [_delivery(clean_db, first, 1), _delivery(clean_db, second, 1)],
        [_delivery(clean_db, second, 2), _delivery(clean_db, first, 2)],
    ]
    # each pausing after its first member, so that both hold a row before either asks for another
    both_started = threading.Barrier(2)
    paused = threading.local()

    def around(delivery: Delivery, handle: Callable[[], None]) -> None:
        handle()
        if not getattr(paused, "done", False):
            paused.done = True
            # a broken barrier: the other batch is blocked on this one's row, nothing to wait for
            with contextlib.suppress(threading.BrokenBarrierError):
                both_started.wait(timeout=STEP_S)

    errors: list[BaseException] = []

    def run(batch: list[Delivery]) -> None:
        try:
            apply_batch(batch, around)
        except Exception as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    # When both run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then one waits for the other's commit and both commit: there was no deadlock to break
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
