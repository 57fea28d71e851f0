"""The metric registry's conventions, the message middleware's bookkeeping, multiprocess files."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import dramatiq
import pytest
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics, outcome
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.metrics_runtime import prepare_multiprocess_dir, sweep_dead_processes, worker_metrics_env
from shared.middleware.metrics import MessageMetrics, MetricsServer, queue_wait_seconds

NAME = re.compile(r"^circulate_[a-z][a-z0-9_]*[a-z0-9]$")
LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
HISTOGRAM_UNITS = ("_seconds", "_orders")
RESERVED_LABELS = {"le", "quantile", "pid"}  # histograms, summaries, multiprocess gauges
QUEUE, ACTOR = "shipping", "tests.metrics_probe"


def module_metrics() -> list[MetricWrapperBase]:
    return [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def every_metric() -> list[MetricWrapperBase]:
    return module_metrics() + list(metrics.ExporterMetrics().all())


def exposed_name(metric: MetricWrapperBase) -> str:
    family = metric.describe()[0]
    return f"{family.name}_total" if family.type == "counter" else family.name


def test_every_metric_name_follows_the_conventions() -> None:
    names = [exposed_name(metric) for metric in every_metric()]
    assert len(names) == len(set(names)), "a metric name is defined twice"
    for metric in every_metric():
        name = exposed_name(metric)
        assert NAME.match(name), name
        assert metric._documentation.strip(), f"{name} has no help text"
        for label in metric._labelnames:
            assert LABEL.match(label) and label not in RESERVED_LABELS, f"{name}: label {label}"
        if isinstance(metric, Counter):
            assert name.endswith("_total"), name
        if isinstance(metric, Histogram):
            # time, in seconds; or a count of things, named (orders per group)
            assert name.endswith(HISTOGRAM_UNITS), f"{name}: a histogram names its unit"
        if isinstance(metric, Gauge):
            assert not name.endswith("_total"), name
        if re.search(r"_(age|wait)_", name):
            assert name.endswith("_seconds"), name


def test_module_level_gauges_drop_the_share_of_a_dead_process() -> None:
    # In multiprocess mode every worker process writes a file per module-level gauge; gauges of
    # shared state belong in ExporterMetrics, which only the exporter builds.
    gauges = [metric for metric in module_metrics() if isinstance(metric, Gauge)]
    assert gauges == [metrics.MESSAGES_IN_PROGRESS]
    assert metrics.MESSAGES_IN_PROGRESS._multiprocess_mode == "livesum"


# The middleware, driven hook by hook with a real message proxy and no broker.
fake_broker: Any = SimpleNamespace(actors={ACTOR: None})


def message(**kwargs: Any) -> dramatiq.MessageProxy:
    return dramatiq.MessageProxy(
        dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(), kwargs=kwargs, options={})
    )


def in_progress() -> float:
    labels = {"queue": QUEUE, "actor": ACTOR}
    return REGISTRY.get_sample_value("circulate_messages_in_progress", labels) or 0.0


def outcomes() -> dict[str, float]:
    return {
        result: REGISTRY.get_sample_value(
            "circulate_messages_total", {"queue": QUEUE, "actor": ACTOR, "outcome": result}
        )
        or 0.0
        for result in metrics.MESSAGE_OUTCOMES
    }


def changed(before: dict[str, float]) -> dict[str, float]:
    return {key: value - before[key] for key, value in outcomes().items() if value != before[key]}


def test_the_in_progress_gauge_returns_to_zero_after_a_failing_message() -> None:
    middleware, proxy, before = MessageMetrics(), message(), outcomes()

    middleware.before_process_message(fake_broker, proxy)
    assert in_progress() == 1
    middleware.after_process_message(fake_broker, proxy, exception=RuntimeError("carrier down"))
    proxy.fail()
    middleware.after_nack(fake_broker, proxy)

    assert in_progress() == 0
    assert changed(before) == {"dead_lettered": 1}


def test_a_failed_attempt_whose_retry_was_enqueued_counts_as_retried() -> None:
    middleware, proxy, before = MessageMetrics(), message(), outcomes()

    middleware.before_process_message(fake_broker, proxy)
    middleware.after_process_message(fake_broker, proxy, exception=RuntimeError("timeout"))
    middleware.after_enqueue(fake_broker, proxy.copy(queue_name=f"{QUEUE}.DQ"), 1_000)
    middleware.after_ack(fake_broker, proxy)

    assert in_progress() == 0
    assert changed(before) == {"retried": 1}


def test_a_failed_attempt_acked_without_a_retry_counts_as_failed() -> None:
    middleware, proxy, before = MessageMetrics(), message(), outcomes()

    middleware.before_process_message(fake_broker, proxy)
    middleware.after_process_message(fake_broker, proxy, exception=RuntimeError("broker gone"))
    middleware.after_ack(fake_broker, proxy)

    assert changed(before) == {"failed": 1}


def test_a_duplicate_marked_by_the_actor_factory_counts_as_duplicate_skipped() -> None:
    middleware, proxy, before = MessageMetrics(), message(), outcomes()

    middleware.before_process_message(fake_broker, proxy)
    outcome.mark(outcome.Outcome.DUPLICATE_SKIPPED)
    middleware.after_process_message(fake_broker, proxy, result=None)
    middleware.after_ack(fake_broker, proxy)
    middleware.before_process_message(fake_broker, second := message())
    middleware.after_process_message(fake_broker, second, result=None)
    middleware.after_ack(fake_broker, second)

    assert changed(before) == {"duplicate_skipped": 1, "succeeded": 1}


def test_a_message_for_an_unknown_actor_is_counted_once_when_rejected() -> None:
    middleware, before = (
        MessageMetrics(),
        REGISTRY.get_sample_value(
            "circulate_messages_total", {"queue": QUEUE, "actor": "unknown", "outcome": "dead_lettered"}
        ),
    )
    proxy = dramatiq.MessageProxy(
        dramatiq.Message(queue_name=QUEUE, actor_name="no.such_actor", args=(), kwargs={}, options={})
    )

    proxy.fail()
    middleware.after_nack(fake_broker, proxy)

    after = REGISTRY.get_sample_value(
        "circulate_messages_total", {"queue": QUEUE, "actor": "unknown", "outcome": "dead_lettered"}
    )
    assert (after or 0) - (before or 0) == 1


def test_a_message_moved_off_its_delay_queue_is_not_counted() -> None:
    middleware, before = MessageMetrics(), outcomes()

    middleware.after_ack(fake_broker, message())

    assert changed(before) == {}


def test_the_queue_wait_is_measured_from_the_envelope_on_a_first_attempt_only() -> None:
    produced = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    first = message(envelope={"produced_at": produced})
    retry = dramatiq.MessageProxy(first._message.copy(options={"retries": 1}))

    assert 29 < (queue_wait_seconds(first) or 0) < 60
    assert queue_wait_seconds(retry) is None


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"envelope": "x"}, {"envelope": {"produced_at": 12}}, {"envelope": {"produced_at": "yesterday"}}],
)
def test_a_malformed_envelope_records_no_queue_wait(kwargs: dict[str, Any]) -> None:
    assert queue_wait_seconds(message(**kwargs)) is None


def test_the_metrics_server_asks_dramatiq_for_one_module_level_fork() -> None:
    (fork,) = MetricsServer().forks
    assert fork.__module__ == "shared.metrics_runtime" and "." not in fork.__qualname__


# Multiprocess files


def test_the_multiprocess_directory_is_cleared_at_start(tmp_path: Any) -> None:
    directory = tmp_path / "worker-9191"
    directory.mkdir()
    for stale in ("counter_101.db", "histogram_101.db", "gauge_livesum_101.db"):
        (directory / stale).write_bytes(b"stale")
    (directory / "README").write_text("not ours to delete")

    prepare_multiprocess_dir(directory)

    assert sorted(path.name for path in directory.iterdir()) == ["README"]


def test_the_live_gauges_of_a_process_that_has_exited_are_dropped(tmp_path: Any) -> None:
    exited, alive = _exited_pid(), os.getpid()
    for pid in (exited, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{exited}.db").write_bytes(b"")

    assert sweep_dead_processes(tmp_path) == [exited]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{alive}.db", f"counter_{exited}.db"]
    )


def _exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_worker_instance_refuses_a_metrics_port_already_in_use(tmp_path: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(metrics_port=port, metrics_dir=str(tmp_path))

        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}.*CIRCULATE_METRICS_PORT"):
            worker_metrics_env(settings)
    assert not (tmp_path / "circulate-metrics").exists()


def test_each_worker_instance_gets_a_directory_of_its_own(tmp_path: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = worker_metrics_env(Settings(metrics_port=port, metrics_dir=str(tmp_path)))

    assert env == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "circulate-metrics" / f"worker-{port}")}


def test_message_outcomes_keep_the_label_values_dashboards_and_alerts_query() -> None:
    assert [str(result) for result in metrics.MESSAGE_OUTCOMES] == [
        "succeeded",
        "failed",
        "retried",
        "dead_lettered",
        "duplicate_skipped",
    ]
