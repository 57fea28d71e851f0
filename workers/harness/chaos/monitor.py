"""What the platform was doing, sampled through a run, and each fault placed on that timeline.

A thread samples the database four times a second: messages handled so far, and when the last
worker transaction and the last relay batch began (`processed_messages.processed_at` and
`outbox.published_at` are `now()`, the start of the transaction that wrote them). The driver
reports how many orders are final. A fault is recorded when it starts and when it is lifted (the
node is back, the proxy passes again, the killed process was replaced).

Recovery of one fault is the first sample at which a worker transaction **and** a relay batch
that began after the fault was lifted have both committed: messages are consumed and published
again. It includes the time the broken part takes to come back (a RabbitMQ node's boot), so each
fault also gets its **resume** time: the first sample at which a worker transaction and a relay
batch that began after the fault *started* have both committed, while the part may still be
down; for a node loss on a cluster, that is when the clients carry on through the surviving
nodes. Throughput is compared over the fault's window and the same length of time just before it.
While the database is down the samples are skipped, which is itself visible as a gap.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

_SAMPLE = (
    "SELECT (SELECT count(*) FROM processed_messages), "
    "(SELECT extract(epoch FROM max(processed_at)) FROM processed_messages), "
    "(SELECT extract(epoch FROM max(published_at)) FROM outbox)"
)
SAMPLE_EVERY_S = 0.25


@dataclass(frozen=True)
class Sample:
    at: float
    final: int
    handled: int
    last_commit: float
    last_publish: float


@dataclass
class Fault:
    """One injected fault: what, when it started, when it was lifted (None: never, e.g. a kill
    whose process was never replaced)."""

    what: str
    started: float
    lifted: float | None = None

    def lift(self) -> None:
        self.lifted = time.time()


@dataclass
class Monitor:
    conninfo: str
    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    final: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chaos-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def progress(self, final: int) -> None:
        """The driver's progress callback: orders in a final state."""
        self.final = final

    def fault(self, what: str) -> Fault:
        fault = Fault(what, time.time())
        self.faults.append(fault)
        return fault

    def _run(self) -> None:
        connection: psycopg.Connection[tuple[Any, ...]] | None = None
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
                row = connection.execute(_SAMPLE).fetchone()
            except psycopg.Error:
                connection = None  # the database is down or restarting: no sample this time
                continue
            if row is not None:
                handled, commit, publish = row
                self.samples.append(
                    Sample(time.time(), self.final, int(handled), float(commit or 0), float(publish or 0))
                )
        if connection is not None:
            connection.close()

    # -- figures ----------------------------------------------------------------------------------

    def recovered_at(self, fault: Fault) -> float | None:
        """When work begun after the fault was lifted had been consumed and published."""
        if fault.lifted is None:
            return None
        return self._work_after(fault.lifted)

    def resumed_at(self, fault: Fault) -> float | None:
        """When work begun after the fault started had been consumed and published, whether or
        not the fault had been lifted by then (the platform carried on without the broken part)."""
        return self._work_after(fault.started)

    def _work_after(self, moment: float) -> float | None:
        for sample in self.samples:
            if sample.at >= moment and sample.last_commit > moment and sample.last_publish > moment:
                return sample.at
        return None

    def figures(self, fault: Fault) -> dict[str, Any]:
        """Recovery time and throughput for one fault; "during" runs from its start until it
        recovered (or was lifted, if it never visibly recovered), at least a second."""
        recovered = self.recovered_at(fault)
        resumed = self.resumed_at(fault)
        end = recovered or fault.lifted or fault.started
        during = max(end - fault.started, 1.0)
        before_start = max(fault.started - during, self.samples[0].at if self.samples else fault.started)
        return {
            "fault": fault.what,
            "at_s": round(fault.started - self.samples[0].at, 1) if self.samples else 0.0,
            "down_s": round(fault.lifted - fault.started, 2) if fault.lifted else None,
            "resumed_s": round(resumed - fault.started, 2) if resumed else None,
            "recovery_s": round(recovered - fault.started, 2) if recovered else None,
            "orders_per_s_before": self._rate(before_start, fault.started, "final"),
            "orders_per_s_during": self._rate(fault.started, fault.started + during, "final"),
            "messages_per_s_before": self._rate(before_start, fault.started, "handled"),
            "messages_per_s_during": self._rate(fault.started, fault.started + during, "handled"),
        }

    def _rate(self, start: float, end: float, attribute: str) -> float | None:
        first, last = self._at(start), self._at(end)
        if first is None or last is None or last.at - first.at < 0.5:
            return None
        change = float(getattr(last, attribute)) - float(getattr(first, attribute))
        return round(change / (last.at - first.at), 2)

    def _at(self, moment: float) -> Sample | None:
        """The last sample taken at or before `moment` (the first one if none was)."""
        if not self.samples:
            return None
        index = bisect.bisect_right([s.at for s in self.samples], moment)
        return self.samples[max(0, index - 1)]
