"""bench.backtest_latency at toy size: the backtest completes and both latency figures are reported."""

from __future__ import annotations

from bench import backtest_latency


def test_tiny_backtest_beside_live_clients_reports_both_latencies() -> None:
    result = backtest_latency.main(
        ["--events", "300", "--participants", "20", "--clients", "2", "--baseline-s", "0.2", "--no-sync", "--json"]
    )
    assert result["backtest_status"] == "COMPLETED"
    assert result["backtest_events_replayed"] == 300
    assert result["client_baseline_p99_ms"] is not None
