"""The age of the oldest message in a queue, from RabbitMQ's counters alone (no peeking).

RabbitMQ reports `head_message_timestamp` only for classic queues, and only when the head message
carries the AMQP `timestamp` property. Circulate's queues are quorum queues, which report nothing
of the kind, and peeking (get, then requeue) would spend one of the message's deliveries against
the quorum queue's delivery limit. So the exporter estimates the age from counters it already
reads, assuming the queue is first in, first out:

    published  messages ever published to the queue (management API `message_stats.publish`)
    depth      messages in it now, ready or unacknowledged

`published - depth` messages have left, so the oldest one still in it is number
`published - depth + 1`. It was published after the last sample whose `published` was at most
`published - depth`, and no later than the first sample above it; the age reported is measured
from that first sample, a lower bound with the scrape interval as its resolution. A queue that was
already backed up when the exporter started reports the exporter's watch time, also a lower bound.
A counter that goes backwards (broker restart, queue re-created) starts the history again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class _History:
    samples: deque[tuple[float, int]] = field(default_factory=deque)


class PublishHistory:
    """Per-queue samples of (time, published); only those the estimate can still need are kept."""

    def __init__(self, *, max_samples: int = 50_000) -> None:
        self._queues: dict[str, _History] = {}
        self._max_samples = max_samples

    def oldest_age(self, queue: str, *, now: float, published: int, depth: int) -> float:
        """Record a sample and return the estimated age in seconds of the queue's oldest message."""
        samples = self._record(queue, now, published)
        if depth <= 0:
            return 0.0
        left = published - depth
        # Samples at or below `left` only bound messages that have already gone.
        while len(samples) > 1 and samples[0][1] <= left:
            samples.popleft()
        return max(0.0, now - samples[0][0])

    def _record(self, queue: str, now: float, published: int) -> deque[tuple[float, int]]:
        history = self._queues.setdefault(queue, _History())
        samples = history.samples
        if samples and published < samples[-1][1]:
            samples.clear()
        if not samples or published > samples[-1][1]:
            samples.append((now, published))
            if len(samples) > self._max_samples:
                samples.popleft()
        return samples
