"""The sections measured by this package: consume, publish and memory (see `sections`)."""

from __future__ import annotations

from workers.harness.bench import consume as consume_section
from workers.harness.bench import memory as memory_section
from workers.harness.bench import publish as publish_section
from workers.harness.bench.report import Figure
from workers.harness.bench.sections import BenchContext

#: Consume contenders in the order they run within each run.
CONSUMERS = ("stock", "bare", "core", "core-single", "celery")
#: Shown for reference, not held to a target: measured in the first run only, to keep
#: `make bench` within its time.
FIRST_RUN_ONLY = frozenset({"core-single"})


def consume(context: BenchContext, run: int) -> list[Figure]:
    chosen = context.consumers or CONSUMERS
    keys = [key for key in CONSUMERS if key in chosen and (run == 0 or key not in FIRST_RUN_ONLY)]
    return [consume_section.measure(context.env, key, context.messages) for key in keys]


def publish(context: BenchContext, run: int) -> list[Figure]:
    env, n = context.env, context.messages
    return [
        publish_section.raw(env, env.classic, "classic", n),
        publish_section.raw_framed(env, env.classic, "classic", n),
        publish_section.relay(env, env.classic, "classic", n),
        publish_section.raw(env, env.quorum, "quorum", n),
        publish_section.raw_framed(env, env.quorum, "quorum", n),
        publish_section.relay(env, env.quorum, "quorum", n),
    ]


def memory(context: BenchContext, run: int) -> list[Figure]:
    if run > 0:
        return []
    figures = []
    if context.backlog:
        figures.append(memory_section.backlog(context.env, context.backlog))
    if context.soak_seconds:
        figures.append(memory_section.soak(context.env, context.soak_seconds, rate=500))
    return figures
