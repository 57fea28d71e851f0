"""The worker modules the benchmark's `dramatiq` processes load.

`boot` (the idempotent core) is a production worker (`workers.worker.build_worker_broker`: the
same middleware, JSON logging, prometheus multiprocess metrics) with the bench actor added; only
the /metrics fork is left out, since it serves scrapes and would take the workers' port.
`boot_bare` is Circulate's broker (quorum queues, strict encoder, Dramatiq's own middleware) with
a plain actor doing one autocommit insert: what the core is measured against.
"""

from __future__ import annotations

import warnings

import dramatiq

from shared.actors import bind_actors
from shared.broker import UNDECODABLE_ACTOR, build_broker
from shared.config import Settings
from shared.logs import configure_logging_from
from shared.middleware.metrics import MetricsServer
from workers.harness.bench.work import RECORD_SALE, bind_bare_actor
from workers.worker import build_worker_broker


def boot() -> None:
    settings = Settings()
    configure_logging_from(settings)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    broker, resources = build_worker_broker(settings)
    broker.middleware = [m for m in broker.middleware if not isinstance(m, MetricsServer)]
    # bind_actors declares the undecodable actor again along with the bench actor.
    del broker.actors[UNDECODABLE_ACTOR]
    bind_actors(broker, [RECORD_SALE], lambda: resources.runtime)
    dramatiq.set_broker(broker)


def boot_bare() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    settings = Settings()
    broker = build_broker(settings)
    bind_bare_actor(broker, settings)
    dramatiq.set_broker(broker)
