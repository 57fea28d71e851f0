"""The archive sweeper: empties every `<queue>.XQ` into the dead-letter archive.

For each dead copy: `basic_get` it, upsert its archive row by message id, commit, and only then
ack. A sweeper killed between commit and ack gets the copy again and the upsert recognises it
(nothing changes), so sweeping is idempotent. Copies are handled in batches of `batch_size`: one
transaction, then one multiple-ack. If the database fails, the unacked copies go back to the
`.XQ` when the channel closes and the next sweep takes them again.

Each pass also deletes for good what was purged more than `CIRCULATE_DLQ_PURGE_RETENTION_DAYS`
ago. After a sweep the `.XQ` queues are empty and the archive is the single source of truth, so no
dead message can expire or be lost with a queue. `circulate dlq sweep` runs one pass; `--loop`
runs one every `--interval` seconds until SIGTERM or Ctrl-C, and beats the heartbeat
(`shared.heartbeat.LoopHeartbeat`, role `dlq-sweeper`) after each batch and each second of its
wait: a pass stuck on the broker or the database lets the beat go stale.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dramatiq.common import xq_name
from sqlalchemy.orm import Session, sessionmaker

from shared.broker_nodes import blocking_connection
from shared.config import QUEUES, Settings
from shared.dead_letters.changes import archive_swept, audit, expire_purged
from shared.heartbeat import LoopHeartbeat
from workers.dlq import deaths

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What one pass did, per outcome: `recorded` (no worker record), `archived`, `already`."""

    counts: dict[str, int] = field(default_factory=lambda: {"recorded": 0, "archived": 0, "already": 0})
    expired: int = 0

    @property
    def moved(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        c = self.counts
        return (
            f"swept {self.moved} message(s): {c['archived']} recorded by the worker, "
            f"{c['recorded']} recorded now from the queue, {c['already']} already archived"
            + (f"; {self.expired} purged message(s) past retention deleted" if self.expired else "")
        )


def sweep_once(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    operator: str = "sweeper",
    queues: tuple[str, ...] = QUEUES,
    batch_size: int = 100,
    progressed: Callable[[], None] = lambda: None,
) -> SweepResult:
    """One pass over every `.XQ`; audited when it moved anything. `progressed` after each batch."""
    result = SweepResult()
    host = f"sweeper@{socket.gethostname()}"
    connection = blocking_connection(settings)
    try:
        channel = connection.channel()
        for queue in queues:
            xq, limit = xq_name(queue), settings.delivery_limit
            while _sweep_batch(channel, sessions, xq, result, host=host, size=batch_size, limit=limit):
                progressed()
    finally:
        if connection.is_open:
            connection.close()
    with sessions.begin() as session:
        if result.moved:
            audit(session, operator=operator, via="sweeper", action="sweep", where={"queues": list(queues)},
                  count=result.moved, outcome=result.summary())  # fmt: skip
        retention = settings.dlq_purge_retention_days
        result.expired = expire_purged(session, retention_days=retention)
        if result.expired:
            outcome = f"deleted {result.expired} purged message(s) for good"
            where = {"purged_days": retention}
            audit(session, operator=operator, via="sweeper", action="expire", where=where,
                  count=result.expired, outcome=outcome)  # fmt: skip
    return result


def _sweep_batch(
    channel: Any,
    sessions: sessionmaker[Session],
    xq: str,
    result: SweepResult,
    *,
    host: str,
    size: int,
    limit: int,
) -> bool:
    """Archive up to `size` copies in one transaction, then ack them; False when the queue is empty."""
    last_tag = None
    with sessions.begin() as session:
        for _ in range(size):
            method, properties, body = channel.basic_get(xq, auto_ack=False)
            if method is None:
                break
            swept = deaths.describe(xq, body, properties.headers, host=host, delivery_limit=limit)
            outcome = archive_swept(session, swept, operator=host)
            result.counts[outcome or "already"] += 1
            last_tag = method.delivery_tag
    if last_tag is None:
        return False
    channel.basic_ack(delivery_tag=last_tag, multiple=True)
    return True


def sweep_forever(settings: Settings, sessions: sessionmaker[Session], *, interval_s: float) -> None:
    """Sweep every `interval_s` seconds until SIGTERM/SIGINT; a failed pass is logged and retried."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    heartbeat = LoopHeartbeat.for_role(settings.heartbeat_dir, "dlq-sweeper")
    sweep_until(stop, settings, sessions, interval_s=interval_s, heartbeat=heartbeat)


def sweep_until(
    stop: threading.Event,
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    interval_s: float,
    heartbeat: LoopHeartbeat,
) -> None:
    """The loop of `sweep_forever`, beating `heartbeat` as it goes, until `stop` is set."""
    while not stop.is_set():
        try:
            result = sweep_once(settings, sessions, progressed=heartbeat.progressed)
            if result.moved:
                logger.info(result.summary())
        except Exception:
            logger.exception("sweep failed; trying again in %ss", interval_s)
        _wait_beating(stop, interval_s, heartbeat)


def _wait_beating(stop: threading.Event, seconds: float, heartbeat: LoopHeartbeat) -> None:
    """Wait `seconds` (or until `stop`), beating each second: a sweeper waiting is a live one."""
    deadline = time.monotonic() + seconds
    while True:
        heartbeat.progressed()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or stop.wait(min(1.0, remaining)):
            return
