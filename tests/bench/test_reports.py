"""bench.reports at toy size: the store is built through the event path, every report is timed, and the totals
the reports give agree with the naive scan's."""

from __future__ import annotations

from pathlib import Path

from bench import reports


def test_tiny_run_times_every_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    summary = reports.main(["--entries", "2000", "--data-dir", str(data_dir), "--calls", "2", "--no-sync", "--json"])
    assert summary["journal_entries"] >= 1900
    assert set(summary["reports"]) == {
        "ledger_summary",
        "ledger_summary_period",
        "expiration_schedule_day",
        "expiration_schedule_month",
        "program_activity",
        "program_activity_period",
    }
    for timing in summary["reports"].values():
        assert set(timing) == {"cold_ms", "p50_ms", "max_ms"}
    again = reports.main(["--entries", "2000", "--data-dir", str(data_dir), "--calls", "1", "--json"])
    assert again["reused"] is True
    assert again["summary"] == summary["summary"]
