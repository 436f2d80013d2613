"""bench.costs: a tiny run reports every stage's cost, and leaves the engine consistent (the writer commits
the records the harness filled and aborted)."""

from __future__ import annotations

import trio

from bench.costs import measure


def test_tiny_run_reports_each_stage() -> None:
    result = trio.run(measure, 200, 2)
    for key in ("admission_us", "step_us", "fill_us"):
        assert result[key] > 0, key
    assert len(result["per_round"]) == 2
    # Each event writes at least its inbox record, its outcome, and the inbox entry's put and delete.
    assert result["store_ops_per_event"] >= 4
    assert result["store_bytes_per_event"] > 500
