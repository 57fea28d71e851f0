"""A real Prometheus scrapes a real demo run: every series is there, agrees with the report, and alerts fire.

The demo runs as `circulate demo --exporter --linger`, so its processes stay up after it writes
its report; `<run dir>/endpoints.json` says where they answer as soon as they are up. Debian's
`prometheus` then scrapes the workers, relay, exporter and API of that run every second, with
deploy/prometheus/alerts.yml loaded, while the orders go through and after. The test compares
what Prometheus holds with the demo's own audit, then dead-letters a poison message and waits for
the alerts. Everything started here is stopped in `finally` blocks, whatever fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.config import Settings
from shared.migrate import create_database_if_missing
from shared.topology import delete_vhost, ensure_vhost
from tests.fixtures.services import _drop_database, make_settings, publish_raw
from workers.harness.demo.supervisor import free_port

ORDERS = 30
CLI = ("-c", "import sys; from workers.cli import main; sys.exit(main())")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
JOBS = ("circulate-worker", "circulate-relay", "circulate-exporter", "circulate-api")
REQUIRED_SERIES = (
    "circulate_messages_total",
    "circulate_message_handling_seconds_bucket",
    "circulate_message_queue_wait_seconds_bucket",
    "circulate_messages_in_progress",
    "circulate_queue_messages",
    "circulate_queue_consumers",
    "circulate_queue_oldest_message_age_seconds",
    "circulate_outbox_backlog",
    "circulate_carrier_responses_total",
    "circulate_notifications_total",
    "circulate_ledger_postings_total",
    "circulate_ledger_imbalance_minor",
    "circulate_orders",
    "circulate_http_requests_total",
)


@pytest.fixture
def prom_settings(settings: Settings) -> Iterator[Settings]:
    """A database and vhost of this test's own: the demo empties whatever it is pointed at."""
    own = make_settings(database_url=f"{settings.database_url}_prom", amqp_url=f"{settings.amqp_url}_prom")
    _drop_database(own)
    create_database_if_missing(own)
    ensure_vhost(own)
    yield own
    delete_vhost(own)
    _drop_database(own)


class Prometheus:
    """The few calls of Prometheus's HTTP API the test needs."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=5.0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/query", params={"query": expr})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def by_label(self, expr: str, label: str) -> dict[str, float]:
        return {row["metric"][label]: float(row["value"][1]) for row in self.query(expr)}

    def targets_up(self) -> dict[str, str]:
        response = self.http.get("/api/v1/targets", params={"state": "active"})
        response.raise_for_status()
        return {t["labels"]["job"]: t["health"] for t in response.json()["data"]["activeTargets"]}

    def firing(self, alert: str, **labels: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/alerts")
        response.raise_for_status()
        return [
            a
            for a in response.json()["data"]["alerts"]
            if a["labels"].get("alertname") == alert
            and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool], *, timeout: float = 20.0) -> Any:
    """Poll `read` until `ok(value)`, then return the value; on timeout return the last one seen,
    so the assertion that follows shows what Prometheus actually held."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


class DemoRun:
    """The demo process and what it writes under `root` (its output, endpoints and report)."""

    def __init__(self, process: subprocess.Popen[bytes], root: Path) -> None:
        self.process = process
        self.root = root

    def wait_for_json(self, name: str, *, timeout: float) -> Any:
        """`root/name` once the demo has written it as whole JSON; fails at once if the demo exited."""
        found = eventually(lambda: self._read(self.root / name), lambda v: v is not None, timeout=timeout)
        assert found is not None, f"the demo wrote no {name} within {timeout:.0f}s"
        return found

    def _read(self, path: Path) -> Any:
        if self.process.poll() is not None:
            output = (self.root / "demo.log").read_text()[-4000:]
            raise AssertionError(f"the demo exited with {self.process.returncode}:\n{output}")
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None


@contextmanager
def lingering_demo(settings: Settings, root: Path) -> Iterator[DemoRun]:
    """`circulate demo --exporter --linger`; stopped with SIGTERM (ends the linger), then by force."""
    env = {
        **os.environ,
        "CIRCULATE_DATABASE_URL": settings.database_url,
        "CIRCULATE_AMQP_URL": settings.amqp_url,
    }
    argv = [sys.executable, *CLI, "demo", "--orders", str(ORDERS), "--json", str(root / "report.json"),
            "--run-dir", str(root / "run"), "--timeout", "90", "--exporter", "--linger", "180"]  # fmt: skip
    with (root / "demo.log").open("wb") as log:
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield DemoRun(process, root)
        finally:
            _stop_demo(process, root / "run" / "endpoints.json")


def _stop_demo(demo: subprocess.Popen[bytes], endpoints: Path) -> None:
    with suppress(ProcessLookupError):
        demo.send_signal(signal.SIGTERM)  # the demo stops its children itself
    try:
        demo.wait(timeout=45)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()
    # Children live in process groups of their own; if the demo could not stop them, we do.
    with suppress(FileNotFoundError, ValueError):
        for pid in json.loads(endpoints.read_text())["pids"].values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def prometheus_config(tmp_path: Path, endpoints: dict[str, Any]) -> Path:
    """A config scraping this run every second, with alerts.yml as shipped except one `for`."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            # DeadLettersPresent waits 30 min in production (dead letters are triaged, not paged);
            # this copy waits 1 s so the test can see it fire. NewDeadLetters has no `for` and is
            # checked exactly as shipped.
            if rule.get("alert") == "DeadLettersPresent":
                rule["for"] = "1s"
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(yaml.safe_dump(rules, sort_keys=False))
    api = endpoints["api"].removeprefix("http://")
    targets = {**{f"circulate-{k}": v for k, v in endpoints["metrics"].items()}, "circulate-api": api}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(alerts)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def running_prometheus(tmp_path: Path, config: Path) -> Iterator[Prometheus]:
    port = free_port()
    argv = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        prometheus = Prometheus(f"http://127.0.0.1:{port}")
        try:
            ready = eventually(lambda: _ready(prometheus, process), bool, timeout=30)
            assert ready, (tmp_path / "prometheus.log").read_text()[-3000:]
            yield prometheus
        finally:
            prometheus.http.close()
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(prometheus: Prometheus, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, f"prometheus exited with {process.returncode}"
    try:
        return prometheus.http.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="needs Debian's prometheus (make system-packages)")
def test_prometheus_sees_a_demo_run_as_its_report_does_and_fires_on_a_dead_letter(
    prom_settings: Settings, tmp_path: Path
) -> None:
    with lingering_demo(prom_settings, tmp_path) as demo:
        # Given a demo run scraped by Prometheus from the moment its processes are up
        endpoints = demo.wait_for_json("run/endpoints.json", timeout=90)
        with running_prometheus(tmp_path, prometheus_config(tmp_path, endpoints)) as prometheus:
            all_up = dict.fromkeys(JOBS, "up")
            assert eventually(prometheus.targets_up, lambda health: health == all_up) == all_up

            # When the demo has finished its orders and written its report (its processes stay up)
            report = demo.wait_for_json("report.json", timeout=150)
            assert report["ok"], report["invariant_details"]
            written = (tmp_path / "report.json").stat().st_mtime
            last_scrape = 'min(timestamp(up{job=~"circulate-.*"}))'
            assert eventually(lambda: prometheus.value(last_scrape) or 0.0, lambda at: at > written) > written

            # Then Prometheus holds every series, with the numbers of the demo's own audit
            _assert_series_agree_with(prometheus, report)

            # When a poison message is dead-lettered while the run lingers; Then the alerts fire
            _assert_alerts_fire_on_a_dead_letter(prometheus, prom_settings)


def _assert_series_agree_with(prometheus: Prometheus, report: dict[str, Any]) -> None:
    """Workers', API's and exporter's series against the demo's audit of Postgres, sink and sandbox."""
    assert prometheus.by_label("circulate_orders", "state") == report["orders_by_state"]
    missing = [name for name in REQUIRED_SERIES if not prometheus.query(f'count({{__name__="{name}"}})')]
    assert not missing
    assert set(prometheus.by_label("circulate_ledger_imbalance_minor", "currency").values()) == {0.0}
    assert (prometheus.value("sum(circulate_ledger_postings_total)") or 0) > 0

    def total(selector: str) -> float:
        return prometheus.value(f"sum({selector})") or 0.0

    # Every processed_messages row is a message that succeeded (retries succeed once more).
    processed = report["throughput"]["messages_processed"]
    assert total('circulate_messages_total{outcome="succeeded"}') >= processed
    requests, duplicates = report["driver"]["requests"], report["duplicates_suppressed"]["by_workers"]
    carrier, emails = report["labels"]["carrier"], report["notifications"]["emails_received"]
    expected = {
        'circulate_messages_total{outcome="duplicate_skipped"}': duplicates,
        'circulate_notifications_total{channel="email",result="sent"}': emails,
        # The sandbox counts every POST /v1/labels it got, the client every answer.
        'circulate_carrier_responses_total{operation="buy_label"}': carrier["purchase_requests"],
        'circulate_http_requests_total{route="/v1/orders",method="POST",status="202"}': sum(
            requests.get(key, 0) for key in ("orders_accepted", "http_replays", "resends_other_key")
        ),
    }
    assert {selector: total(selector) for selector in expected} == expected


def _assert_alerts_fire_on_a_dead_letter(prometheus: Prometheus, settings: Settings) -> None:
    fulfilment = {"queue": "fulfilment"}
    assert not prometheus.firing("NewDeadLetters", **fulfilment), "the demo dead-lettered in fulfilment"
    dead = 'sum(circulate_messages_total{queue="fulfilment",outcome="dead_lettered"})'
    after = (prometheus.value(dead) or 0.0) + 1

    publish_raw(settings, "fulfilment", b"\xff this is not a message")

    assert eventually(lambda: prometheus.value(dead), after.__eq__) == after
    assert eventually(lambda: prometheus.firing("NewDeadLetters", **fulfilment), bool, timeout=30)
    assert eventually(lambda: prometheus.firing("DeadLettersPresent", **fulfilment), bool, timeout=30)
