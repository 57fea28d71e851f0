"""deploy/prometheus and deploy/grafana: checked by promtool, and only naming metrics that exist.

promtool comes from Debian's `prometheus` package, which `make test` installs
(scripts/install-system-packages.sh); these tests skip only where it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

# Skipped only outside CI: in CI a missing promtool fails these tests instead of hiding them.
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool is not installed (`make test` installs it: scripts/install-system-packages.sh)",
)

#: The rabbitmq_prometheus (3.10) series the dashboards use, checked against
#: `curl -s http://127.0.0.1:15692/metrics/per-object` (and /metrics for the alarms).
RABBITMQ_METRICS = frozenset(
    {
        "rabbitmq_alarms_file_descriptor_limit",
        "rabbitmq_alarms_free_disk_space_watermark",
        "rabbitmq_alarms_memory_used_watermark",
        "rabbitmq_channels",
        "rabbitmq_connections",
        "rabbitmq_disk_space_available_bytes",
        "rabbitmq_disk_space_available_limit_bytes",
        "rabbitmq_global_messages_acknowledged_total",
        "rabbitmq_global_messages_dead_lettered_delivery_limit_total",
        "rabbitmq_global_messages_dead_lettered_rejected_total",
        "rabbitmq_global_messages_delivered_total",
        "rabbitmq_global_messages_received_total",
        "rabbitmq_global_messages_redelivered_total",
        "rabbitmq_global_messages_unroutable_dropped_total",
        "rabbitmq_global_messages_unroutable_returned_total",
        "rabbitmq_process_max_fds",
        "rabbitmq_process_open_fds",
        "rabbitmq_process_resident_memory_bytes",
        "rabbitmq_queue_consumers",
        "rabbitmq_queue_messages_published_total",
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "rabbitmq_resident_memory_limit_bytes",
    }
)
METRIC = re.compile(r"\b(?:circulate|rabbitmq)_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def circulate_series() -> set[str]:
    """Every series name shared.metrics can expose (`_total`, `_bucket`... included)."""
    found = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    found += metrics.ExporterMetrics().all()
    families = [family for metric in found for family in metric.describe()]
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing; run scripts/install-system-packages.sh")
    return subprocess.run(["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


@needs_promtool
def test_the_prometheus_configuration_is_valid() -> None:
    result = promtool("check", "config", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "deploy/prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_alert_passes_its_promtool_unit_tests() -> None:
    result = promtool("test", "rules", "deploy/prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]

    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts == firing == silent


def test_the_alert_rules_name_only_metrics_that_exist() -> None:
    rules = [
        rule
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    # Recorded series (`queue:circulate_...:seconds`) are defined in the file itself.
    expressions = [re.sub("|".join(map(re.escape, recorded)), "", rule["expr"]) for rule in rules]

    unknown = {name for expr in expressions for name in METRIC.findall(expr)} - circulate_series()

    assert not unknown
    assert all(name.startswith("queue:circulate_") for name in recorded)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_dashboard_query_names_only_metrics_that_exist(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    known = circulate_series() | RABBITMQ_METRICS

    queries = panel_queries(dashboard)

    assert queries, f"{path.name} has no queries"
    unknown = {(title, name) for title, expr in queries for name in METRIC.findall(expr) if name not in known}
    assert not unknown


def test_the_dashboards_are_the_three_expected_with_unique_ids() -> None:
    boards = {path.stem: json.loads(path.read_text()) for path in DASHBOARDS}
    panel_ids = [[panel["id"] for panel in board["panels"]] for board in boards.values()]

    assert sorted(boards) == ["marketplace", "overview", "rabbitmq"]
    assert len({board["uid"] for board in boards.values()}) == 3
    assert all(len(ids) == len(set(ids)) for ids in panel_ids)


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses the expressions of a rules file: one recording rule per panel query, with
    # Grafana's variables replaced by what Grafana would send.
    substitutions = {"$__rate_interval": "1m", "$queue": ".*", "$vhost": ".*"}
    rules = []
    for path in DASHBOARDS:
        for index, (_title, expr) in enumerate(panel_queries(json.loads(path.read_text()))):
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            rules.append({"record": f"dashboard:{path.stem}:{index}", "expr": expr})
    rules_file = tmp_path / "dashboard_queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))

    result = promtool("check", "rules", str(rules_file))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "circulate.yml").read_text())

    assert [source["type"] for source in sources["datasources"]] == ["prometheus"]
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["options"]["path"]
