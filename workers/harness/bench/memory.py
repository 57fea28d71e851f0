"""The memory section: peak worker RSS while the core drains a large backlog, and an optional soak.

The backlog is published first (100k messages by default), then the core's workers drain it; the
figure is the largest VmHWM of any worker process. The soak (`--soak-seconds`, not run by default)
keeps the queue fed at a steady rate and samples RSS every few seconds: flat means no leak.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from workers.harness.bench import procstat
from workers.harness.bench.consume import CONTENDERS, PREFETCH, circulate_body
from workers.harness.bench.env import BenchEnv, publish
from workers.harness.bench.report import Figure

SOAK_SAMPLE_S = 10.0
SOAK_BATCH = 500


def backlog(env: BenchEnv, messages: int) -> Figure:
    started = time.perf_counter()
    with _core_workers(env, messages) as workers:
        _wait_rows(env, messages)
        peak = max(procstat.peak_rss_mb(w.pid) for w in workers)
        cpu = sum(procstat.cpu_seconds(w.pid) for w in workers)
    elapsed = time.perf_counter() - started
    return Figure(
        "memory", "rss-backlog", f"core peak worker RSS draining {messages:,} (MiB)", peak, unit="MiB",
        cpu_s_per_1k=1000 * cpu / messages, extra={"messages": messages, "seconds": round(elapsed, 1)},
    )  # fmt: skip


def soak(env: BenchEnv, seconds: float, rate: int) -> Figure:
    """Feed `rate` msg/s for `seconds`; the figure is the RSS growth from the first sample to the last."""
    samples: list[float] = []
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(env, rate, stop), daemon=True)
    with _core_workers(env, 0) as workers:
        feeder.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(SOAK_SAMPLE_S)
            samples.append(max(procstat.rss_mb(w.pid) for w in workers))
        stop.set()
        feeder.join()
    growth = samples[-1] - samples[0] if samples else 0.0
    return Figure(
        "memory", "rss-soak", f"core RSS growth over a {seconds:.0f} s soak at {rate} msg/s (MiB)", growth,
        unit="MiB", extra={"samples_mb": [round(s, 1) for s in samples]},
    )  # fmt: skip


@contextmanager
def _core_workers(env: BenchEnv, messages: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The core's workers on a queue pre-filled with `messages`; stopped on exit."""
    contender = CONTENDERS["core"]
    env.purge(env.quorum)
    env.reset_tables()
    if messages:
        publish(env.quorum.amqp_url, [circulate_body(i) for i in range(messages)])
    environment = dict(os.environ, dramatiq_queue_prefetch=str(PREFETCH), PYTHONWARNINGS="ignore")
    environment.update(contender.environment(env))
    workers = [
        subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in contender.commands(env)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)


def _wait_rows(env: BenchEnv, messages: int) -> None:
    while env.rows() < messages:
        time.sleep(0.2)


def _feed(env: BenchEnv, rate: int, stop: threading.Event) -> None:
    sale = 10_000_000
    while not stop.is_set():
        started = time.monotonic()
        publish(env.quorum.amqp_url, [circulate_body(sale + i) for i in range(SOAK_BATCH)])
        sale += SOAK_BATCH
        time.sleep(max(0.0, SOAK_BATCH / rate - (time.monotonic() - started)))
