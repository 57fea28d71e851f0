"""The scaling guide's measurements (docs/operations/scaling.md): `circulate demo` with 1, 2 and 4
worker processes, on one RabbitMQ node and on a 3-node cluster, both nodes of its own.

Each broker is started from the tests' own-instance fixtures (tests/fixtures/own_services.py), so its
CPU time is this run's alone: RabbitMQ CPU seconds per message come from the nodes' beam processes
(/proc/<pid>/stat, before and after). PostgreSQL is the machine's (its commits are counted in
pg_stat_database for this run's database only). Circulate's own CPU is every process the demo
started (API, relay, workers, sandbox, SMTP sink and the driver), from RUSAGE_CHILDREN once the
demo has exited. Figures are printed, never asserted; the machine's load average is printed next
to them, since other work shares its cores.

    .venv/bin/python scripts/scaling-runs.py --orders 300 --processes 1 2 4 --nodes 1 3

To measure a commit rather than the working tree: `git archive <commit> | tar -x -C <dir>`, then
`.venv/bin/python <dir>/scripts/scaling-runs.py ...` (the code is taken from the script's checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiormq
import aiormq.abc
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.own_services import OwnRabbitNode, OwnServices  # noqa: E402

DATABASE = "circulate_scaling"
VHOST = "circulate_scaling"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CLI = "import sys; from workers.cli import main; sys.exit(main())"
PROBE_QUEUE = "scaling.probe"
PROBE_BODY = b"x" * 900  # about the size of an order's Dramatiq message
PROBE_WINDOW = 500


def beam_cpu_s(nodes: list[OwnRabbitNode]) -> float:
    total = 0
    for node in nodes:
        pid = node.pid()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def commits() -> int:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        query = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
        row = conn.execute(query, (DATABASE,)).fetchone()
    return int(row[0]) if row else 0


def messages_by_domain() -> dict[str, int]:
    """Handled messages per domain (the kind's prefix; each domain's actors share its queue)."""
    url = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT split_part(kind, '.', 1), count(*) FROM processed_messages GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    return {str(domain): int(count) for domain, count in rows}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(nodes: list[OwnRabbitNode], processes: int, orders: int, out: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "CIRCULATE_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}",
        "CIRCULATE_AMQP_URL": ",".join(node.amqp_url(VHOST) for node in nodes),
        "CIRCULATE_RABBITMQ_MANAGEMENT_URL": ",".join(node.management_url for node in nodes),
        "CIRCULATE_WORKER_PROCESSES": str(processes),
        "CIRCULATE_LOG_LEVEL": "WARNING",
        # This checkout's code, even when the interpreter's environment has another installed (a
        # clean export of a commit, measured with the development .venv's interpreter).
        "PYTHONPATH": str(ROOT),
    }
    report = out / f"demo-{len(nodes)}n-{processes}p.json"
    command = [sys.executable, "-c", CLI, "demo", "--orders", str(orders), "--fail-rate", "0",
               "--timeout", "900", "--json", str(report), "--run-dir", str(out / report.stem)]  # fmt: skip
    load_before = os.getloadavg()[0]
    beam, cpu = beam_cpu_s(nodes), children_cpu_s()
    commits_before = commits()
    with tempfile.TemporaryFile("w+") as output:
        demo = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        by_process = _sample_process_cpu(demo, out / report.stem / "endpoints.json")
        output.seek(0)
        completed = subprocess.CompletedProcess(command, demo.returncode, output.read(), "")
    beam, cpu = beam_cpu_s(nodes) - beam, children_cpu_s() - cpu
    committed = commits() - commits_before
    if completed.returncode != 0 or not report.exists():
        error = completed.stdout[-1500:] + completed.stderr[-1500:]
        return {"nodes": len(nodes), "processes": processes, "error": error}
    throughput = json.loads(report.read_text())["throughput"]
    messages = int(throughput["messages_processed"])
    elapsed = float(throughput["elapsed_s"])
    return {
        "nodes": len(nodes),
        "processes": processes,
        "orders": orders,
        "elapsed_s": elapsed,
        "orders_per_s": throughput["orders_per_s"],
        "messages": messages,
        "messages_per_s": throughput["messages_per_s"],
        "messages_per_order": round(messages / orders, 1),
        "circulate_cpu_ms_per_message": round(1000 * cpu / messages, 2),
        **{
            f"{name}_cpu_ms_per_message": round(1000 * seconds / messages, 2)
            for name, seconds in by_process.items()
        },
        "rabbitmq_cpu_ms_per_message": round(1000 * beam / messages, 3),
        "pg_commits_per_s": round(committed / elapsed, 1),
        "pg_commits_per_message": round(committed / messages, 2),
        "messages_by_domain": messages_by_domain(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _process_tree_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds so far of `root` and every descendant (Dramatiq forks its worker processes)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return {pid: times[pid] for pid in tree if pid in times}


def _sample_process_cpu(demo: subprocess.Popen[str], endpoints: Path) -> dict[str, float]:
    """CPU seconds of the demo's worker, relay and API process trees, sampled until it exits
    (a process's last sample is kept: what it spent after it is its shutdown)."""
    seen: dict[str, dict[int, float]] = {"worker": {}, "relay": {}, "api": {}}
    while demo.poll() is None:
        time.sleep(0.5)
        try:
            pids = json.loads(endpoints.read_text())["pids"]
        except (OSError, ValueError, KeyError):
            continue
        for name, per_pid in seen.items():
            if name in pids:
                per_pid.update(_process_tree_cpu_s(int(pids[name])))
    return {name: sum(per_pid.values()) for name, per_pid in seen.items()}


def broker_probe(nodes: list[OwnRabbitNode], messages: int) -> dict[str, object]:
    """One quorum queue driven as hard as one publisher and one consumer can: publish with
    windowed confirms, then consume with acks. The per-message CPU of a run at a low rate is
    mostly the broker's fixed cost (its schedulers spin, Raft ticks, statistics); this is the
    figure per message at saturation, which is what sizing needs."""
    return asyncio.run(_broker_probe(nodes, messages))


async def _broker_probe(nodes: list[OwnRabbitNode], messages: int) -> dict[str, object]:
    connection = await aiormq.connect(nodes[0].amqp_url(VHOST))
    channel = await connection.channel(publisher_confirms=True)
    await channel.queue_declare(PROBE_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    beam, started = beam_cpu_s(nodes), time.monotonic()
    for start in range(0, messages, PROBE_WINDOW):
        count = min(PROBE_WINDOW, messages - start)
        await asyncio.gather(
            *(channel.basic_publish(PROBE_BODY, routing_key=PROBE_QUEUE) for _ in range(count))
        )
    published_s, published_cpu = time.monotonic() - started, beam_cpu_s(nodes) - beam
    beam, started = beam_cpu_s(nodes), time.monotonic()
    done, received = asyncio.Event(), 0

    async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
        nonlocal received
        received += 1
        if received % 100 == 0 or received == messages:
            await message.channel.basic_ack(message.delivery_tag, multiple=True)
        if received == messages:
            done.set()

    await channel.basic_qos(prefetch_count=1000)
    consumer = await channel.basic_consume(PROBE_QUEUE, on_message)
    await done.wait()
    consumed_s, consumed_cpu = time.monotonic() - started, beam_cpu_s(nodes) - beam
    await channel.basic_cancel(consumer.consumer_tag)
    await channel.queue_delete(PROBE_QUEUE)
    await connection.close()
    return {
        "nodes": len(nodes),
        "probe_messages": messages,
        "publish_per_s": round(messages / published_s),
        "consume_per_s": round(messages / consumed_s),
        "rabbitmq_cpu_ms_per_message": round(1000 * (published_cpu + consumed_cpu) / messages, 3),
        "messages_per_rabbitmq_core_s": round(messages / (published_cpu + consumed_cpu)),
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--probe-messages", type=int, default=30_000, help="0: no broker probe")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "scaling-runs.json")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="circulate-scaling-"))
    results = []
    for size in args.nodes:
        services = OwnServices()
        try:
            nodes = services.rabbit_cluster(size)
            nodes[0].add_vhost(VHOST)
            if args.probe_messages:
                result = broker_probe(nodes, args.probe_messages)
                results.append(result)
                print(json.dumps(result), flush=True)
            for processes in args.processes:
                result = one_run(nodes, processes, args.orders, out)
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            services.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.json}; demo reports and logs in {out}")


if __name__ == "__main__":
    main()
