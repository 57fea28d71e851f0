"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked instead."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from workers.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_defines_the_services_the_makefile_starts():
    services = _compose()["services"]
    assert {"rabbitmq", "postgres"} <= set(services)
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.10")
    assert services["postgres"]["image"] == "postgres:15"


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """`circulate`'s group callback configures the root logger; give the next tests theirs back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_every_circulate_service_runs_a_real_circulate_command(logging_restored):
    runner = CliRunner()
    for name, service in _compose()["services"].items():
        if "build" not in service:
            continue
        command = service["command"]
        result = runner.invoke(main, [*command[:1], "--help"])
        assert result.exit_code == 0, f"service {name}: `circulate {command[0]}` is not a command"


def test_the_image_builds_from_the_project_files():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert {"pyproject.toml", "shared", "tasks", "workers"} <= copied
    assert all((ROOT / path).exists() for path in copied)
    assert 'ENTRYPOINT ["circulate"]' in dockerfile
