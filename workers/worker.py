"""The worker process: what `dramatiq workers.worker:boot` (and so `circulate worker`) loads.

`boot` is the composition root of a worker process: settings from the environment, logging, the
broker with its middleware, the Runtime (built at worker boot, after any fork) and every domain's
actors. Tests call `build_worker_broker` with their own Settings instead. `run_dramatiq` is
Dramatiq's command line with Circulate's logging in every process it starts (`circulate worker`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import dramatiq

from shared.actors import bind_actors
from shared.broker import CirculateBroker, build_broker
from shared.config import Settings
from shared.heartbeat import clear_beats
from shared.logs import configure_logging_from
from shared.middleware.batch import BatchedHandling
from shared.middleware.dead_letter import DeadLetterRecorder
from shared.middleware.heartbeat import Heartbeat
from shared.middleware.message_log import MessageLog
from shared.middleware.metrics import MessageMetrics, MetricsServer
from shared.middleware.resources import RuntimeResources
from shared.runtime import AdapterFactory, Runtime
from shared.schedule import schedule_message
from tasks.registry import ACTORS, ADAPTERS


def build_worker_broker(
    settings: Settings, *, adapters: Mapping[str, AdapterFactory] | None = None
) -> tuple[CirculateBroker, RuntimeResources]:
    """A broker with every actor bound, and the middleware that owns the process's Runtime."""
    chosen = ADAPTERS if adapters is None else adapters
    resources = RuntimeResources(lambda: Runtime.from_settings(settings, adapters=chosen))
    runtime = lambda: resources.runtime  # noqa: E731
    # `before_` hooks run in this order and `after_` hooks in reverse, so:
    # - MessageMetrics comes first: its attempt record exists before anything else runs, and its
    #   handling time covers the middleware after it;
    # - MessageLog next: it binds the message's ids before the rest run and unbinds them after,
    #   so their log lines carry them; at ack/nack it classifies MessageMetrics's record;
    # - RuntimeResources owns the engine and adapters, which DeadLetterRecorder needs at nack;
    # - MetricsServer only asks Dramatiq for the /metrics process;
    # - Heartbeat (when a directory is set) only watches the worker threads for the liveness probe;
    # - BatchedHandling only has the worker start threads that apply a backlog in batches.
    heartbeat = [Heartbeat(Path(settings.heartbeat_dir))] if settings.heartbeat_dir else []
    broker = build_broker(
        settings,
        extra_middleware=[
            MessageMetrics(),
            MessageLog(),
            resources,
            DeadLetterRecorder(runtime),
            MetricsServer(),
            *heartbeat,
            BatchedHandling(settings.worker_batch_size, budget_s=settings.worker_batch_budget_ms / 1000),
        ],
    )
    bind_actors(broker, ACTORS, runtime)
    broker.scheduler = lambda message, due_ms: schedule_message(resources.runtime.sessions, message, due_ms)
    return broker, resources


def boot() -> None:
    """Entry point for Dramatiq's CLI: build everything from the environment and install it.

    Logging is configured again here, in each worker process: under a plain `python -m dramatiq`
    (no `--skip-logging`) this replaces the text handler Dramatiq's CLI installed in the process.
    """
    settings = Settings()
    configure_logging_from(settings)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pika")
    broker, _ = build_worker_broker(settings)
    dramatiq.set_broker(broker)


def run_dramatiq(argv: Sequence[str]) -> int:
    """`python -m dramatiq ARGV --skip-logging`, after configuring Circulate's logging.

    Runs once per `circulate worker`, in Dramatiq's main process, before any worker process: the
    place to clear the heartbeats of an earlier start (`shared.heartbeat`).

    Dramatiq's CLI runs `logging.basicConfig` in its main process, in each worker process and in
    each fork (the /metrics server) unless given `--skip-logging`; only the worker processes
    import `boot`. Configured here, before any process starts, the handler reaches all of them
    through fork (Linux's start method) and follows each one's stderr into Dramatiq's log pipe,
    so every line is JSON.
    """
    from dramatiq.cli import main, make_argument_parser

    settings = Settings()
    configure_logging_from(settings)
    if settings.heartbeat_dir:
        clear_beats(Path(settings.heartbeat_dir))  # beats of an earlier start never count
    args = make_argument_parser().parse_args([*argv, "--skip-logging"])  # type: ignore[no-untyped-call]
    return int(main(args) or 0)  # type: ignore[no-untyped-call]
