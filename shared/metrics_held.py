"""Message metrics a batch holds and writes together: one write per series, not one per message.

In a worker process prometheus_client runs in multiprocess mode: every `inc` and `observe` takes
the library's process-wide lock, checks the process id and writes into a memory-mapped file. A
message's handling time, queue wait and outcome were five such writes; a worker draining a backlog
spent about a tenth of its CPU on metrics (`docs/development/benchmarks.md`). Inside
`metrics_held()` (the batch path, `shared.middleware.batch`) they are added up in the thread and
written when the block ends: a batch of sixteen messages of one actor writes its counter once and
each histogram bucket it touched once.

What a scrape sees: a batch's observations appear together when the batch's messages are acked,
where they appeared one by one a few milliseconds earlier. A batch that is abandoned and handled
one message at a time drops what it held (`discard`), so those messages are observed once, by the
path that handles them. Gauges are never held: the in-progress gauge moves as messages do.

Outside a block, `inc` and `observe` write at once, as prometheus_client's own methods do.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_held = threading.local()


class HeldMetrics:
    """A batch's counter increments and histogram observations, by labelled series."""

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        self._observations: dict[Any, list[float]] = {}

    def inc(self, counter: Any, amount: float) -> None:
        self._counts[counter] = self._counts.get(counter, 0.0) + amount

    def observe(self, histogram: Any, value: float) -> None:
        self._observations.setdefault(histogram, []).append(value)

    def discard(self) -> None:
        """Forget what is held: the messages are about to be handled, and observed, again."""
        self._counts.clear()
        self._observations.clear()

    def write(self) -> None:
        for counter, amount in self._counts.items():
            counter.inc(amount)
        for histogram, values in self._observations.items():
            _observe_all(histogram, values)
        self.discard()


def _observe_all(histogram: Any, values: list[float]) -> None:
    """`histogram.observe(value)` for each value: one write per bucket touched and one for the sum.

    Reads the labelled histogram's bucket bounds and values as `Histogram.observe` does
    (prometheus_client keeps one value per bucket and adds them up when collected);
    tests/unit/test_metrics_held.py holds the result to `observe`'s, sample for sample.
    """
    bounds: list[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        for index, bound in enumerate(bounds):
            if value <= bound:
                counts[index] += 1
                break
    histogram._sum.inc(sum(values))
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)


@contextlib.contextmanager
def metrics_held() -> Iterator[HeldMetrics]:
    """Counter increments and observations in this thread wait in the block and are written when
    it ends (also when it raises: what was held happened). Nested blocks write when the outermost
    ends."""
    outer: HeldMetrics | None = getattr(_held, "metrics", None)
    if outer is not None:
        yield outer
        return
    held = _held.metrics = HeldMetrics()
    try:
        yield held
    finally:
        _held.metrics = None
        held.write()


def inc(counter: Any, amount: float = 1.0) -> None:
    """`counter.inc(amount)`, held when inside `metrics_held()`."""
    held: HeldMetrics | None = getattr(_held, "metrics", None)
    if held is None:
        counter.inc(amount)
    else:
        held.inc(counter, amount)


def observe(histogram: Any, value: float) -> None:
    """`histogram.observe(value)`, held when inside `metrics_held()`."""
    held: HeldMetrics | None = getattr(_held, "metrics", None)
    if held is None:
        histogram.observe(value)
    else:
        held.observe(histogram, value)
