"""Crash points: armed by the environment, they SIGKILL the process on the Nth pass, else cost nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from shared import crash_points

_SCRIPT = (
    "from shared import crash_points\n"
    "for n in range(1, 6):\n"
    "    print(n, flush=True)\n"
    "    crash_points.reach('worker.after_commit')\n"
)


def _run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != crash_points.ENV_VAR}
    if spec is not None:
        env[crash_points.ENV_VAR] = spec
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_armed_point_kills_the_process_on_its_nth_pass_and_says_so() -> None:
    result = _run("worker.after_commit=3")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["1", "2", "3"]
    assert "crash point worker.after_commit reached: SIGKILL" in result.stderr


def test_an_unarmed_point_lets_the_process_pass_every_time() -> None:
    result = _run("relay.after_publish=1")
    assert result.returncode == 0
    assert result.stdout.split() == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("spec", ["worker.after_comit", "worker.after_commit=0", "relay.after_publish=x"])
def test_a_misspelt_or_bad_spec_is_refused_rather_than_ignored(spec: str) -> None:
    with pytest.raises(crash_points.UnknownCrashPoint):
        crash_points.parse(spec)


def test_several_points_and_a_bare_name() -> None:
    assert crash_points.parse("relay.after_publish, worker.after_commit=40") == {
        "relay.after_publish": 1,
        "worker.after_commit": 40,
    }
