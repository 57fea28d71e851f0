"""`circulate bench` at a tiny size: every part runs and writes its figures (never judged here)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shared.topology import delete_vhost
from tests.fixtures.services import BASE_AMQP_URL, BASE_DATABASE_URL
from workers.harness.bench import consume
from workers.harness.bench.cli import bench
from workers.harness.bench.env import BenchEnv

PUBLISHED = {
    "raw-classic",
    "raw-framed-classic",
    "relay-classic",
    "raw-quorum",
    "raw-framed-quorum",
    "relay-quorum",
}


@pytest.fixture
def bench_env(monkeypatch: pytest.MonkeyPatch):
    """The bench's database and vhosts under the test names (the database is kept: migrated once)."""
    monkeypatch.setenv("CIRCULATE_BENCH_DATABASE_URL", BASE_DATABASE_URL + "_bench")
    monkeypatch.setenv("CIRCULATE_BENCH_AMQP_URL", BASE_AMQP_URL + "_bench")
    env = BenchEnv.from_environment()
    yield env
    for settings in (env.quorum, env.classic, env.celery):
        delete_vhost(settings)


def test_the_bench_writes_its_figures_and_the_core_drains_a_backlog(bench_env, tmp_path):
    # When the publish section runs once at a tiny size
    report = tmp_path / "bench.json"
    args = ["--runs", "1", "--messages", "50", "--sections", "publish", "--json", str(report)]
    result = CliRunner().invoke(bench, args)
    # Then it prints the table and the ratios, and writes every figure with its CPU
    assert result.exit_code == 0, result.output
    assert "outbox relay (quorum)" in result.output
    assert "relay / raw publish (quorum)" in result.output
    assert "relay / raw framed (quorum)" in result.output
    document = json.loads(report.read_text())
    assert {r["key"] for r in document["results"]} == PUBLISHED
    assert all(r["median"] > 0 and r["cpu_s_per_1k"] is not None for r in document["results"])
    # And the core contender's workers drain a backlog into rows
    figure = consume.measure(bench_env, "core", 60)
    assert figure.rate > 0 and figure.cpu_s_per_1k is not None
    assert bench_env.rows() == 60
