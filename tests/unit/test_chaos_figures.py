"""The chaos report's figures from a synthetic timeline: recovery, throughput, the Markdown row."""

from __future__ import annotations

from workers.harness.chaos import report
from workers.harness.chaos.monitor import Fault, Monitor, Sample


def _timeline() -> Monitor:
    """Ten orders/s and 100 messages/s until t=10, nothing while down (10-14), then both again
    from work that began at t=15."""
    monitor = Monitor(conninfo="unused")
    for t in range(0, 21):
        if t <= 10:
            final, handled, commit, publish = 10 * t, 100 * t, t, t
        elif t <= 14:
            final, handled, commit, publish = 100, 1000, 10, 10
        else:
            final, handled, commit, publish = 100 + 10 * (t - 14), 1000 + 100 * (t - 14), t, t
        monitor.samples.append(Sample(1000.0 + t, final, handled, 1000.0 + commit, 1000.0 + publish))
    return monitor


def test_recovery_runs_from_the_fault_until_work_begun_after_it_was_lifted_has_committed() -> None:
    monitor = _timeline()
    fault = Fault("node killed", started=1010.0, lifted=1013.5)
    figures = monitor.figures(fault)
    # The first sample whose last commit and last publish are both later than the lift is t=15.
    assert figures["recovery_s"] == 5.0
    assert figures["orders_per_s_before"] == 10.0
    assert figures["messages_per_s_before"] == 100.0
    assert figures["orders_per_s_during"] == 2.0  # 10 orders in the 5 s until recovery


def test_resume_is_work_begun_after_the_fault_started_even_before_the_broken_part_is_back() -> None:
    # A node dies at t=5 and serves again at t=18 (its boot), but the clients carried on through
    # the surviving nodes: work begun at t=7 had committed by t=8.
    monitor = Monitor(conninfo="unused")
    for t in range(0, 25):
        work = t if t < 5 or t >= 7 else 5
        monitor.samples.append(Sample(1000.0 + t, t, 10 * t, 1000.0 + work, 1000.0 + work))
    figures = monitor.figures(Fault("queue leader killed", started=1005.0, lifted=1018.0))
    assert figures["resumed_s"] == 2.0
    assert figures["down_s"] == 13.0
    assert figures["recovery_s"] == 14.0  # the first commit begun after the node was back


def test_a_fault_never_lifted_has_no_recovery() -> None:
    figures = _timeline().figures(Fault("process killed, never replaced", started=1010.0))
    assert figures["recovery_s"] is None


def test_the_markdown_row_shows_the_worst_recovery_and_the_first_faults_throughput() -> None:
    result = {
        "scenario": "database_restarts",
        "ok": True,
        "orders": 40,
        "invariants": {"all_orders_final": True, "ledger_balanced": True},
        "fault_fired": True,
        "unplanned_dead_letters": 0,
        "redeliveries": 3,
        "duplicates_suppressed": {"total": 7},
        "faults": [
            {"resumed_s": 1.0, "recovery_s": 1.5, "orders_per_s_before": 4.0, "orders_per_s_during": 1.0},
            {"resumed_s": 2.5, "recovery_s": 6.5, "orders_per_s_before": 3.0, "orders_per_s_during": 0.0},
        ],
    }
    table = report.markdown(report.build([result], orders=40))
    assert (
        "| database_restarts | 40 | 2/2 hold | yes | 0 | 3 | 7 | 2 (2) | 2.5 s | 6.5 s | 4.0 → 1.0 |" in table
    )
