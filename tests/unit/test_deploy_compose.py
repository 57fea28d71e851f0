"""docker-compose.yml cannot run here (no Docker engine), so it is validated instead.

Against the Compose specification's JSON schema, read from `../shared/schemas/compose-spec.json`
(next to the checkout; not copied into the repository), and every Circulate service's command is
parsed by the real `circulate` command line, so an unknown command, option or value fails here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from workers.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
CIRCULATE_IMAGE = "circulate:local"
#: What every Circulate process needs to find the others (Settings' names).
SETTINGS_EACH_PROCESS_NEEDS = {
    "CIRCULATE_DATABASE_URL",
    "CIRCULATE_AMQP_URL",
    "CIRCULATE_RABBITMQ_MANAGEMENT_URL",
    "CIRCULATE_CARRIER_URL",
    "CIRCULATE_SMTP_HOST",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def circulate_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == CIRCULATE_IMAGE}


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """`circulate`'s group callback configures the root logger; give the next tests theirs back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_compose_file_follows_the_compose_specification():
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(
            f"{COMPOSE_SCHEMA} is missing: it is schema/compose-spec.json of compose-spec/compose-spec "
            "(see ../shared/schemas/README.md)"
        )
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(compose())
    ]
    assert errors == []


def resolve(command: click.Command, name: str, args: list[str], parent: click.Context | None = None) -> str:
    """Parse `args` as click would run them (types converted, nothing invoked); the command's path."""
    ctx = command.make_context(name, list(args), parent=parent)
    if isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        sub_name, sub, sub_args = command.resolve_command(ctx, rest)
        assert sub is not None and sub_name is not None
        return resolve(sub, sub_name, sub_args, ctx)
    assert ctx.args == [], f"unexpected arguments {ctx.args}"
    return ctx.command_path


def test_every_circulate_service_runs_a_real_command_with_real_options(logging_restored):
    services = circulate_services()
    assert {"setup", "worker", "relay", "dlq-sweeper", "exporter", "api", "sandbox", "smtp-sink"} <= set(
        services
    )
    for name, service in services.items():
        try:
            path = resolve(main, "circulate", service["command"])
        except click.ClickException as error:
            pytest.fail(f"service {name}: circulate {' '.join(service['command'])}: {error.format_message()}")
        assert path.startswith("circulate ")


def test_a_command_the_cli_does_not_know_fails_the_check(logging_restored):
    with pytest.raises(click.UsageError):
        resolve(main, "circulate", ["worker", "--queue", "fulfilment"])
    with pytest.raises(click.BadParameter):
        resolve(main, "circulate", ["dlq", "sweep", "--interval", "soon"])


def test_everything_else_waits_for_the_one_shot_setup_which_waits_for_healthy_services():
    services = compose()["services"]
    setup = services["setup"]
    assert setup["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    assert setup["restart"] == "no"
    for name in ("worker", "relay", "dlq-sweeper", "exporter", "api"):
        assert services[name]["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
        assert set(services[name]["environment"]) >= SETTINGS_EACH_PROCESS_NEEDS
    for name in ("postgres", "rabbitmq"):
        assert services[name]["healthcheck"]["test"]
        assert services[name]["volumes"]


def test_the_worker_scales_and_stops_gracefully():
    worker = compose()["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    seconds = int(re.fullmatch(r"(\d+)s", worker["stop_grace_period"]).group(1))
    assert seconds * 1000 > 30_000  # Settings.worker_shutdown_timeout_ms, the default the image keeps


def test_the_relay_sweeper_and_exporter_are_checked_by_their_own_heartbeat():
    services = compose()["services"]
    for service, role in {"relay": "relay", "dlq-sweeper": "dlq-sweeper", "exporter": "exporter"}.items():
        test = services[service]["healthcheck"]["test"]
        assert test[:5] == ["CMD", "python", "-m", "shared.heartbeat", f"/tmp/circulate/heartbeat/{role}"]


def test_every_image_is_pinned_by_an_exact_version():
    for name, service in compose()["services"].items():
        image = service["image"]
        if image == CIRCULATE_IMAGE:
            continue
        tag = image.rsplit(":", 1)[-1]
        # PostgreSQL's releases are MAJOR.MINOR; the others' MAJOR.MINOR.PATCH.
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", tag), f"service {name}: {image} is not exact"
    # The series the test suite runs against (scripts/services.sh starts these two from here).
    assert re.fullmatch(r"rabbitmq:3\.10\.\d+-management", compose()["services"]["rabbitmq"]["image"])
    assert compose()["services"]["postgres"]["image"].startswith("postgres:15.")


def test_rabbitmq_runs_the_management_and_prometheus_plugins():
    plugins = (ROOT / "deploy" / "compose" / "rabbitmq-enabled-plugins").read_text()
    assert set(re.findall(r"rabbitmq_\w+", plugins)) == {"rabbitmq_management", "rabbitmq_prometheus"}
    assert (
        "./deploy/compose/rabbitmq-enabled-plugins:/etc/rabbitmq/enabled_plugins:ro"
        in (compose()["services"]["rabbitmq"]["volumes"])
    )


def test_prometheus_loads_the_alert_rules_and_scrapes_the_jobs_of_deploy_prometheus():
    service = compose()["services"]["prometheus"]
    assert "./deploy:/etc/circulate/deploy:ro" in service["volumes"]
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    reference = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    rules = [(ROOT / "deploy" / "compose" / path).resolve() for path in config["rule_files"]]
    assert rules == [(ROOT / "deploy" / "prometheus" / "alerts.yml").resolve()]
    jobs = {job["job_name"]: job.get("metrics_path") for job in config["scrape_configs"]}
    assert jobs == {job["job_name"]: job.get("metrics_path") for job in reference["scrape_configs"]}


def test_grafana_is_provisioned_with_the_dashboards_and_the_compose_prometheus():
    volumes = compose()["services"]["grafana"]["volumes"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/circulate.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{dashboards_path}:ro" in volumes
    assert "./deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro" in volumes
    source = yaml.safe_load((ROOT / "deploy/compose/grafana-datasource.yml").read_text())["datasources"][0]
    reference = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["uid"] == reference["datasources"][0]["uid"]
    assert source["url"] == "http://prometheus:9090"


def test_promtool_accepts_the_compose_prometheus_config_and_its_rules():
    if shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing; run scripts/install-system-packages.sh")
        pytest.skip("promtool is not installed (`make test` installs it: scripts/install-system-packages.sh)")
    result = subprocess.run(
        ["promtool", "check", "config", "deploy/compose/prometheus.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
