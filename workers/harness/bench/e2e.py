"""The end-to-end section: orders posted open loop to a full stack, timed to `confirmed` and the label.

Every process runs as in the demo (`workers.harness.demo.stack`: API, carrier sandbox, SMTP sink,
relay, workers), on a database and vhost of this section's own (`<bench>_e2e`), except that the
workers run as one process of 8 threads (`WORKERS`, see `worker_shape`). At each
rate in `RATES` orders are posted on a schedule (`load.offer`), whatever the answers, for
`BENCH_E2E_SECONDS` (default 15); then the section waits until every accepted order has its label
(or `SETTLE_S` passes) and reads the orders' history (`order_transitions`). The latency of an
order is from the client's 202 to the transition's `at` (PostgreSQL's clock, the same machine's).
Then, if the last of them stayed under 1 s, it steps the rate up (`STEPS`, shorter) until
`confirmed` p95 passes 1 s, to report the highest rate that stays under it.

Beside the latencies, each rate prints where an order's time went, hop by hop (`e2e_hops`: the
outbox's wait for the relay, the queue's wait for a worker, the handler's own time), the CPU of
the API, relay and worker processes per accepted order (from /proc, steadier than any latency on
a loaded machine) and the load average.

Run once (run 0): the stack takes a while to start, and the rates already repeat the measurement.

    python -m workers.harness.bench.e2e          # this section alone
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db import libpq_url
from workers.harness.bench import e2e_hops, load, procstat
from workers.harness.bench.report import Figure
from workers.harness.bench.sections import BenchContext
from workers.harness.demo.prepare import prepare
from workers.harness.demo.stack import Stack, start_stack
from workers.harness.demo.supervisor import Supervisor

RATES = (5.0, 20.0, 50.0)
STEPS = (80.0, 120.0, 160.0, 220.0, 300.0)
DURATION_S = float(os.environ.get("BENCH_E2E_SECONDS", "15"))
STEP_DURATION_S = 10.0
SETTLE_S = 60.0
#: The workers' processes x threads; `BENCH_E2E_WORKERS` (e.g. "2x8") to run another shape.
WORKERS = os.environ.get("BENCH_E2E_WORKERS", "1x8")
UNDER_S = 1.0
#: How long each message of the window waited in the outbox for the relay: one wait per hop.
_RELAY_WAITS = (
    "SELECT extract(epoch FROM published_at - greatest(created_at, available_at)) FROM outbox "
    "WHERE published_at IS NOT NULL AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)"
)
#: When each order entered `confirmed` and `label_purchased`. A handler that records an event
#: without moving the order (`payment_booked`, `label_recorded`) writes a row whose `to_state` is
#: the state the order is already in: only the row that moved it in counts.
_TRANSITIONS = (
    "SELECT order_id::text, to_state, extract(epoch FROM min(at)) FROM order_transitions "
    "WHERE order_id = ANY(%s::uuid[]) AND to_state IN ('confirmed', 'label_purchased') "
    "AND from_state IS DISTINCT FROM to_state GROUP BY order_id, to_state"
)


@dataclass(frozen=True)
class RateResult:
    rate: float
    accepted: int
    not_accepted: int
    confirmed_ms: dict[str, float]
    label_ms: dict[str, float]
    missing_label: int
    #: The relay's wait per message of the window, and messages per accepted order.
    relay_wait_ms: dict[str, float]
    messages_per_order: float
    hops: list[e2e_hops.Hop]
    #: CPU milliseconds per accepted order of each stack process (its whole tree).
    cpu_ms_per_order: dict[str, float]
    #: The 1-minute load average before and after the rate.
    load_average: tuple[float, float]
    #: The workers' processes x threads.
    workers: str


def section(context: BenchContext, run: int) -> list[Figure]:
    if run > 0:
        return []
    settings = e2e_settings(context.env.quorum)
    results = measure(settings)
    return figures(results)


def e2e_settings(bench: Settings, workers: str = WORKERS) -> Settings:
    """The bench settings with a database and a vhost of this section's own, and `workers`' shape."""
    url = make_url(bench.database_url)
    database_url = url.set(database=f"{url.database}_e2e").render_as_string(hide_password=False)
    processes, threads = worker_shape(workers)
    return bench.model_copy(
        update={
            "database_url": database_url,
            "amqp_url": f"{bench.amqp_url}_e2e",
            "worker_processes": processes,
            "worker_threads": threads,
        }
    )


def worker_shape(text: str) -> tuple[int, int]:
    """Processes x threads from text such as "1x8".

    One process by default, as every worker pod runs (deploy/k8s sets CIRCULATE_WORKER_PROCESSES=1
    and scales by pods). Here all of the stack shares one host of two cores with PostgreSQL and
    RabbitMQ: a second worker process only competes for the same cores, and it splits each burst
    of follow-ups between two work queues, so fewer of them are applied together in one
    transaction (`shared.middleware.batch`). Against the demo's 2 x 8, in interleaved runs at 50
    orders/s, one process of 8 threads took 12 % less worker CPU per order and about half the
    `confirmed` p95 (docs/development/benchmarks-http.md, sixth round).
    """
    processes, sep, threads = text.lower().partition("x")
    if not sep or not processes.strip().isdigit() or not threads.strip().isdigit():
        raise ValueError(f"BENCH_E2E_WORKERS must look like 1x8 (processes x threads), not {text!r}")
    shape = int(processes), int(threads)
    if min(shape) < 1:
        raise ValueError(f"BENCH_E2E_WORKERS needs at least one process and one thread, not {text!r}")
    return shape


def measure(settings: Settings) -> list[RateResult]:
    token = prepare(settings)
    with (
        tempfile.TemporaryDirectory(prefix="circulate-bench-e2e-") as run_dir,
        Supervisor(Path(run_dir)) as supervisor,
    ):
        stack = start_stack(supervisor, settings, fail_rate=0.0)

        def at_rate(rate: float, duration_s: float) -> RateResult:
            supervisor.check_alive()
            return _at_rate(settings, stack, supervisor, token, rate, duration_s)

        return run_rates(at_rate)


def run_rates(at_rate: Callable[[float, float], RateResult]) -> list[RateResult]:
    """Every rate of `RATES`, then `STEPS` upwards while `confirmed` p95 stays under `UNDER_S`.

    Once a rate passes it, a higher one can only pass it too: the steps are skipped (each costs
    its seconds plus the wait for its labels, about half a minute of `make bench`).
    """
    results = [at_rate(rate, DURATION_S) for rate in RATES]
    for rate in STEPS:
        if results[-1].confirmed_ms["p95_ms"] >= UNDER_S * 1000:
            break
        results.append(at_rate(rate, STEP_DURATION_S))
    return results


#: The stack's processes whose CPU is counted per order.
_CPU_OF = ("api", "relay", "worker")


def _at_rate(
    settings: Settings, stack: Stack, supervisor: Supervisor, token: str, rate: float, duration_s: float
) -> RateResult:
    load_before = os.getloadavg()[0]
    pids = {c.name: c.process.pid for c in supervisor.children if c.name in _CPU_OF}
    cpu_before = {name: procstat.cpu_seconds(pid) for name, pid in pids.items()}
    metrics_url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    handling_before = e2e_hops.scrape_handling(metrics_url)
    started = time.time()
    outcomes, order_ids = load.run(_post_orders(stack.api_url, token, rate, duration_s))
    answered = {order_ids[o.index]: o.answered_at for o in outcomes if o.status == 202}
    transitions = _wait_for_labels(settings, list(answered))
    handling = e2e_hops.window(handling_before, e2e_hops.scrape_handling(metrics_url))
    cpu_ms = {
        name: round(1000 * (procstat.cpu_seconds(pid) - cpu_before[name]) / max(1, len(answered)), 1)
        for name, pid in pids.items()
    }
    waits = _relay_waits(settings, started, time.time())
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        hops = e2e_hops.hops(conn, list(answered), handling)
    confirmed = [at - answered[oid] for (oid, state), at in transitions.items() if state == "confirmed"]
    labelled = [at - answered[oid] for (oid, state), at in transitions.items() if state == "label_purchased"]
    result = RateResult(
        rate=rate,
        accepted=len(answered),
        not_accepted=len(outcomes) - len(answered),
        confirmed_ms=load.summary_ms(confirmed),
        label_ms=load.summary_ms(labelled),
        missing_label=len(answered) - len(labelled),
        relay_wait_ms=load.summary_ms(waits),
        messages_per_order=round(len(waits) / max(1, len(answered)), 1),
        hops=hops,
        cpu_ms_per_order=cpu_ms,
        load_average=(load_before, os.getloadavg()[0]),
        workers=f"{settings.worker_processes}x{settings.worker_threads}",
    )
    print(
        f"  e2e {rate:5.0f} orders/s, workers {result.workers}: "
        f"{result.accepted} accepted ({result.not_accepted} not); "
        f"confirmed p50/p95/p99 {_ms(result.confirmed_ms)}; label {_ms(result.label_ms)}"
        + (f"; {result.missing_label} without a label" if result.missing_label else "")
        + f"; relay wait per hop {_ms(result.relay_wait_ms)}, {result.messages_per_order} messages/order"
        + f"\n    load average {result.load_average[0]:.1f} -> {result.load_average[1]:.1f}; CPU per order "
        + ", ".join(f"{name} {ms:,.1f} ms" for name, ms in cpu_ms.items())
        + "\n"
        + e2e_hops.describe(hops)
    )
    return result


async def _post_orders(
    api_url: str, token: str, rate: float, duration_s: float
) -> tuple[list[load.Outcome], dict[int, str]]:
    order_ids: dict[int, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with load.KeepAliveClient(api_url, connections=128, headers=headers) as client:

        async def send(index: int) -> int:
            body = load.fresh_order(index)
            order_ids[index] = body["order_id"]
            return await client.post_json("/v1/orders", body, {"Idempotency-Key": str(uuid.uuid4())})

        return await load.offer(send, rate=rate, duration_s=duration_s), order_ids


def _wait_for_labels(settings: Settings, order_ids: list[str]) -> dict[tuple[str, str], float]:
    """(order, state) -> epoch seconds of the transition, once every order has its label."""
    deadline = time.monotonic() + SETTLE_S
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        while True:
            found = entered_at(conn, order_ids)
            labelled = sum(1 for _, state in found if state == "label_purchased")
            if labelled >= len(order_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def entered_at(
    conn: psycopg.Connection[tuple[object, ...]], order_ids: list[str]
) -> dict[tuple[str, str], float]:
    """(order, state) -> epoch seconds when the order moved into `confirmed` or `label_purchased`."""
    rows = conn.execute(_TRANSITIONS, (order_ids,)).fetchall()
    return {(str(oid), str(state)): float(at) for oid, state, at in rows}  # type: ignore[arg-type]


def _relay_waits(settings: Settings, since: float, until: float) -> list[float]:
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        return [float(row[0]) for row in conn.execute(_RELAY_WAITS, (since, until)).fetchall()]


def figures(results: list[RateResult]) -> list[Figure]:
    out = []
    for r in results:
        extra = {"confirmed": r.confirmed_ms, "label_purchased": r.label_ms, "accepted": r.accepted,
                 "not_accepted": r.not_accepted, "missing_label": r.missing_label,
                 "relay_wait": r.relay_wait_ms, "messages_per_order": r.messages_per_order,
                 "cpu_ms_per_order": r.cpu_ms_per_order, "workers": r.workers,
                 "load_average": list(r.load_average),
                 "hops": [asdict(hop) for hop in r.hops]}  # fmt: skip
        out.append(
            Figure(
                "e2e",
                f"e2e-confirmed-{r.rate:.0f}",
                f"accept -> confirmed p95 at {r.rate:.0f} orders/s",
                r.confirmed_ms["p95_ms"],
                unit="ms",
                extra=extra,
            )
        )
        if r.missing_label == r.accepted:  # no order got its label within SETTLE_S: no p95 to show
            continue
        out.append(
            Figure(
                "e2e",
                f"e2e-label-{r.rate:.0f}",
                f"accept -> label bought p95 at {r.rate:.0f} orders/s",
                r.label_ms["p95_ms"],
                unit="ms",
                extra=extra,
            )
        )
    under = [r.rate for r in results if r.confirmed_ms["p95_ms"] < UNDER_S * 1000 and not r.not_accepted]
    out.append(
        Figure(
            "e2e",
            "e2e-max-rate",
            "highest rate offered with confirmed p95 < 1 s",
            max(under, default=0.0),
            unit="orders/s",
        )
    )
    return out


def _ms(summary: dict[str, float]) -> str:
    return " / ".join(f"{summary[k]:,.0f}" for k in ("p50_ms", "p95_ms", "p99_ms")) + " ms"


def main() -> None:
    from workers.harness.bench.env import BenchEnv
    from workers.harness.bench.report import render, summarise

    context = BenchContext(BenchEnv.from_environment(), messages=0, backlog=0, soak_seconds=0, runs=1)
    print(render(summarise(section(context, 0)), []))


if __name__ == "__main__":
    main()
