"""The heartbeat of the relay, the sweeper and the exporter (shared.heartbeat.LoopHeartbeat).

The clock is moved by hand, so "five minutes later" takes no time.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.heartbeat import LoopHeartbeat, liveness_problems, main, read_beats, role_directory, write_beat

START = 1_700_000_000.0
MAX_AGE_S = 180.0


class HandClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def written(directory: Path) -> float | None:
    return read_beats(directory).get(f"{os.getpid()}.beat")


def test_a_loop_that_keeps_progressing_stays_alive_and_one_that_stops_goes_stale(tmp_path: Path):
    clock = HandClock()
    beat = LoopHeartbeat(tmp_path, clock=clock)
    for _ in range(10):
        clock.now += 60
        beat.progressed()
    assert liveness_problems(tmp_path, max_age_s=MAX_AGE_S, now=clock.now) == []

    clock.now += 300  # the loop is stuck: nothing calls progressed
    assert liveness_problems(tmp_path, max_age_s=MAX_AGE_S, now=clock.now) == [
        f"{os.getpid()}.beat: no progress for 300 s (limit 180 s)"
    ]


def test_one_wedged_loop_is_enough_however_busy_the_others_are(tmp_path: Path):
    clock = HandClock()
    beat = LoopHeartbeat(tmp_path, loops=2, clock=clock)
    lane_0, lane_1 = beat.loop(0), beat.loop(1)
    lane_1()
    for _ in range(300):
        clock.now += 1
        lane_0()
    assert written(tmp_path) == START
    lane_1()
    clock.now += 1
    lane_0()
    assert written(tmp_path) == START + 300


def test_a_loop_that_never_completed_a_step_counts_from_the_start(tmp_path: Path):
    clock = HandClock()
    beat = LoopHeartbeat(tmp_path, loops=2, clock=clock)
    clock.now += 200
    beat.progressed(0)
    assert written(tmp_path) == START


def test_writes_are_at_most_one_per_interval_of_the_clock(tmp_path: Path):
    clock = HandClock()
    beat = LoopHeartbeat(tmp_path, every_s=1.0, clock=clock)
    beat.progressed()
    clock.now += 0.5
    beat.progressed()
    assert written(tmp_path) == START
    clock.now += 0.5
    beat.progressed()
    assert written(tmp_path) == START + 1.0


def test_a_progress_time_given_by_the_loop_is_the_one_written(tmp_path: Path):
    clock = HandClock()
    beat = LoopHeartbeat(tmp_path, clock=clock)
    clock.now += 600
    beat.progressed(at=START + 100)  # e.g. when a scrape still in progress began
    assert written(tmp_path) == START + 100


def test_a_role_starts_with_a_fresh_beat_and_none_of_an_earlier_start(tmp_path: Path):
    directory = role_directory(str(tmp_path), "relay")
    assert directory == tmp_path / "relay"
    write_beat(directory, 99999, 0.0)  # left by a process of an earlier start

    LoopHeartbeat.for_role(str(tmp_path), "relay")

    assert list(read_beats(directory)) == [f"{os.getpid()}.beat"]
    assert main([str(directory), "--max-age", "60"]) == 0


def test_without_a_directory_nothing_is_written(tmp_path: Path):
    assert role_directory(None, "relay") is None
    beat = LoopHeartbeat.for_role(None, "relay")
    beat.progressed()
    assert list(tmp_path.iterdir()) == []


def test_the_check_reads_every_beat_below_its_directory(tmp_path: Path):
    write_beat(tmp_path / "exporter", 21, START)
    write_beat(tmp_path / "relay", 22, START - 400)
    assert liveness_problems(tmp_path, max_age_s=MAX_AGE_S, now=START) == [
        "relay/22.beat: no progress for 400 s (limit 180 s)"
    ]
