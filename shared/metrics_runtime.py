"""Serving /metrics from each kind of process, without the faults of Dramatiq's own exporter.

Dramatiq's `Prometheus` middleware binds a fixed port from every instance on a host (the second
instance's exporter dies quietly), shares one never-cleared directory between instances (stale
files from old runs are summed in) and keeps the in-progress gauge of killed processes forever.
Here instead:

- workers (`dramatiq` forks N processes) use prometheus_client's multiprocess mode. Each
  instance gets its own directory, named after its metrics port and cleared at start
  (`worker_metrics_env`, called before `circulate worker` execs Dramatiq, so the variable is set
  before any child imports prometheus_client). A port already in use fails the start loudly.
  One fork process serves the directory (`serve_worker_metrics`); on every scrape it drops the
  live gauges of processes that no longer exist, so a process killed with -9 stops counting too.
- the API, the relay and the exporter are single processes and serve their own registry.

Ports: workers `metrics_port` (9191), relay `metrics_port + 1`, exporter `metrics_port + 2`, the
API on its own port at /metrics.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import tempfile
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from shared import metrics
from shared.config import Settings
from shared.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: prometheus_client's own switch for multiprocess mode; it reads it when first imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RELAY_PORT_OFFSET = 1
EXPORTER_PORT_OFFSET = 2


def relay_metrics_port(settings: Settings) -> int:
    return settings.metrics_port + RELAY_PORT_OFFSET


def exporter_port(settings: Settings) -> int:
    return settings.metrics_port + EXPORTER_PORT_OFFSET


def worker_multiprocess_dir(settings: Settings) -> Path:
    """One directory per worker instance, keyed by its port: two instances can't share a port."""
    base = Path(settings.metrics_dir) if settings.metrics_dir else Path(tempfile.gettempdir())
    return base / "circulate-metrics" / f"worker-{settings.metrics_port}"


def prepare_multiprocess_dir(path: Path | str) -> Path:
    """Create `path` and delete the metric files of earlier runs in it (only `*.db`, nothing else)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    return directory


def worker_metrics_env(settings: Settings) -> dict[str, str]:
    """Environment for `python -m dramatiq workers.worker:boot`; clears the instance's directory.

    Raises ConfigurationError when the metrics port is taken, before any directory is touched: a
    second instance with the same port would otherwise wipe the first one's files.
    """
    ensure_port_free(settings.metrics_host, settings.metrics_port)
    path = prepare_multiprocess_dir(worker_multiprocess_dir(settings))
    return {MULTIPROC_ENV: str(path)}


def ensure_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise _port_error(host, port, error) from error


def _port_error(host: str, port: int, error: OSError) -> ConfigurationError:
    hint = " (another process listens there)" if error.errno == errno.EADDRINUSE else ""
    return ConfigurationError(
        f"cannot serve /metrics on {host}:{port}{hint}: {error.strerror or error}; give each process "
        "its own port with CIRCULATE_METRICS_PORT (workers use it, the relay +1, the exporter +2)"
    )


def multiprocess_dir_in_use() -> str | None:
    """The directory this process writes metrics to, or None outside multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class LiveProcessesCollector(Collector):
    """prometheus_client's MultiProcessCollector, after dropping live gauges of dead processes."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._inner = multiprocess.MultiProcessCollector(None, path=str(path))  # type: ignore[no-untyped-call]

    def collect(self) -> list[Metric]:
        sweep_dead_processes(self._path)
        return list(self._inner.collect())  # type: ignore[no-untyped-call]


def sweep_dead_processes(path: Path) -> list[int]:
    """`mark_process_dead` for every pid with live-gauge files that is no longer running."""
    dead: set[int] = set()
    for file in path.glob("gauge_live*_*.db"):
        suffix = file.stem.rsplit("_", 1)[-1]
        if suffix.isdigit() and not _alive(int(suffix)):
            dead.add(int(suffix))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_this_process_dead() -> None:
    """Drop this process's live gauges now, at a clean shutdown, rather than at the next scrape."""
    path = multiprocess_dir_in_use()
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def exposition_registry() -> Collector:
    """What this process should expose: every process's files in multiprocess mode, else its own."""
    path = multiprocess_dir_in_use()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(LiveProcessesCollector(path))
    return registry


def serve_metrics(registry: Collector, *, host: str, port: int) -> WSGIServer:
    """Serve `registry` on http://host:port/metrics from a daemon thread; see `stop_serving`."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise _port_error(host, port, error) from error
    logger.info("serving /metrics on %s:%d", host, port)
    return server


def stop_serving(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()


def serve_worker_metrics() -> int:
    """Dramatiq fork target (see shared.middleware.metrics.MetricsServer): serve every worker's files.

    Runs in a process of its own that Dramatiq stops with SIGTERM. Settings come from the same
    environment as the workers', so host and port agree with `worker_metrics_env`.
    """
    settings = Settings()
    path = multiprocess_dir_in_use()
    if path is None:
        logger.error(
            "worker metrics are off: %s was not set before the workers started; start them with "
            "`circulate worker`, which sets it",
            MULTIPROC_ENV,
        )
        return 1
    registry = CollectorRegistry()
    registry.register(LiveProcessesCollector(path))
    try:
        serve_metrics(registry, host=settings.metrics_host, port=settings.metrics_port)
    except ConfigurationError as error:
        logger.error("%s", error)
        return 1
    while True:
        signal.pause()


def start_relay_metrics_server(settings: Settings) -> WSGIServer:
    """/metrics of the relay process on `metrics_host:metrics_port + 1`."""
    return serve_metrics(REGISTRY, host=settings.metrics_host, port=relay_metrics_port(settings))


def record_relay_pass(published: int) -> None:
    """Count the rows one relay pass published (and the broker confirmed)."""
    if published:
        metrics.OUTBOX_PUBLISHED.inc(published)
