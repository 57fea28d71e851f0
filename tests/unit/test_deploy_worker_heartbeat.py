"""The liveness check of worker pods (shared.heartbeat): what it reads and when it fails."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings
from shared.heartbeat import ThreadState, last_progress, liveness_problems, main, write_beat
from shared.middleware.heartbeat import Heartbeat
from workers.worker import build_worker_broker

NOW = 1_700_000_000.0


def test_progress_is_now_while_any_thread_waits_for_work():
    states = [ThreadState(alive=True, busy_since=NOW - 900), ThreadState(alive=True, busy_since=None)]
    assert last_progress(NOW, states, consumers_alive=True) == NOW


def test_progress_stops_at_the_newest_message_when_every_thread_is_busy():
    states = [ThreadState(alive=True, busy_since=NOW - 900), ThreadState(alive=True, busy_since=NOW - 300)]
    assert last_progress(NOW, states, consumers_alive=True) == NOW - 300


def test_dead_threads_and_dead_consumers_make_no_progress():
    assert last_progress(NOW, [ThreadState(alive=False, busy_since=None)], consumers_alive=True) is None
    assert last_progress(NOW, [ThreadState(alive=True, busy_since=None)], consumers_alive=False) is None
    assert last_progress(NOW, [], consumers_alive=True) is None


def test_every_process_must_have_beaten_recently(tmp_path: Path):
    write_beat(tmp_path, 11, NOW - 10)
    assert liveness_problems(tmp_path, max_age_s=60, now=NOW) == []
    write_beat(tmp_path, 12, NOW - 61)
    assert liveness_problems(tmp_path, max_age_s=60, now=NOW) == [
        "12.beat: no progress for 61 s (limit 60 s)"
    ]


def test_no_beat_or_an_unreadable_one_is_not_alive(tmp_path: Path):
    assert "no heartbeat" in liveness_problems(tmp_path / "missing", max_age_s=60, now=NOW)[0]
    (tmp_path / "13.beat").write_text("garbage")
    assert liveness_problems(tmp_path, max_age_s=60, now=NOW) == ["13.beat: unreadable"]


def test_the_probe_command_exits_1_with_the_reason(tmp_path: Path, capsys):
    assert main([str(tmp_path), "--max-age", "60"]) == 1
    assert "no heartbeat" in capsys.readouterr().err
    write_beat(tmp_path, 14, 4_000_000_000.0)  # in the future: fresh whatever the clock says
    assert main([str(tmp_path), "--max-age", "60"]) == 0


def test_the_worker_broker_writes_a_heartbeat_only_where_a_directory_is_set(tmp_path: Path):
    with_dir, _ = build_worker_broker(Settings(heartbeat_dir=str(tmp_path)))
    without, _ = build_worker_broker(Settings())
    assert [m.directory for m in with_dir.middleware if isinstance(m, Heartbeat)] == [tmp_path]
    assert not any(isinstance(m, Heartbeat) for m in without.middleware)
