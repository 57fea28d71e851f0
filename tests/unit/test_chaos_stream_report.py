"""The report of a chaos run in one stream: the stream's audit in a line, a row per segment."""

from __future__ import annotations

from workers.harness.chaos import report


def test_each_segment_has_its_own_row_and_the_audit_is_the_streams() -> None:
    segment = {
        "scenario": "broker_node_loss",
        "orders_final_at_start": 550,
        "fault_fired": True,
        "redeliveries": None,  # the node restarts reset RabbitMQ's counters
        "faults": [
            {"resumed_s": 1.1, "recovery_s": 74.3, "orders_per_s_before": 1.83, "orders_per_s_during": 0.94},
            {"resumed_s": 13.7, "recovery_s": None, "orders_per_s_before": 1.8, "orders_per_s_during": 0.0},
        ],
    }
    stream = {
        "orders": 1000,
        "ok": True,
        "elapsed_s": 900.0,
        "orders_per_s": 1.11,
        "invariants": {"all_orders_final": True, "ledger_balanced": True},
        "unplanned_dead_letters": 0,
        "redeliveries": 1529,
        "duplicates_suppressed": {"total": 119},
        "segments": [segment],
        "segments_not_reached": [],
    }
    table = report.markdown_stream(report.build_stream(stream))
    assert table.startswith("1000 orders in 900.0 s (1.11 orders/s); invariants 2/2 hold;")
    assert "duplicates suppressed 119" in table
    assert "| broker_node_loss | 550 | yes | n/a | 2 (1) | 13.7 s | 74.3 s | 1.83 → 0.94 |" in table
