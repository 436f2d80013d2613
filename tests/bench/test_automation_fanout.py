"""bench.automation_fanout at toy size: every participant gets its event, and the figures are reported."""

from __future__ import annotations

from bench import automation_fanout


def test_tiny_fan_out_reports_client_latency_and_pace() -> None:
    result = automation_fanout.main(
        ["--participants", "300", "--clients", "2", "--baseline-s", "0.2", "--batch", "50", "--no-sync", "--json"]
    )
    assert result["events_created"] >= 300  # the members, and the clients (participants of the program too)
    assert result["client_during_p99_ms"] is not None and result["client_baseline_p99_ms"] is not None
