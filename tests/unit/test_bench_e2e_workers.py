"""The e2e section runs the workers in the shape it is given, one process of 8 threads by default."""

from __future__ import annotations

import pytest

from shared.config import Settings
from workers.harness.bench import e2e


def _bench_settings() -> Settings:
    return Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/circulate_bench",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/circulate_bench",
        worker_processes=2,
        worker_threads=8,
    )


def test_by_default_the_workers_are_one_process_of_eight_threads() -> None:
    settings = e2e.e2e_settings(_bench_settings())
    assert (settings.worker_processes, settings.worker_threads) == (1, 8)


def test_the_section_keeps_a_database_and_vhost_of_its_own() -> None:
    settings = e2e.e2e_settings(_bench_settings(), workers="2x4")
    assert settings.database_url.endswith("/circulate_bench_e2e")
    assert settings.amqp_url.endswith("/circulate_bench_e2e")
    assert (settings.worker_processes, settings.worker_threads) == (2, 4)


@pytest.mark.parametrize(("text", "shape"), [("1x8", (1, 8)), ("2X16", (2, 16)), (" 3 x 4 ", (3, 4))])
def test_a_shape_reads_as_processes_x_threads(text: str, shape: tuple[int, int]) -> None:
    assert e2e.worker_shape(text) == shape


@pytest.mark.parametrize("text", ["8", "x8", "1x", "0x8", "1x0", "one x eight", "1x8x2", "-1x8"])
def test_a_shape_that_is_not_processes_x_threads_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="BENCH_E2E_WORKERS"):
        e2e.worker_shape(text)
