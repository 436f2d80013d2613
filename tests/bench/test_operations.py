"""bench.operations at toy size: both modes and both assets run, every operation lands in the journal once, and
the store verifies; with wrk installed, its Lua script keeps each connection's credit → hold → release in order."""

from __future__ import annotations

import shutil

import pytest

from bench import operations

TINY = ["--json", "--no-sync", "--no-tune-gc", "--participants", "30", "--cycles", "45", "--concurrency", "8"]
TINY_HTTP = ["--http-participants", "12", "--http-connections", "4", "--duration-s", "1"]


def test_tiny_run_reports_both_modes_and_both_assets() -> None:
    # A plain (sync) test: main() calls trio.run itself, and starts the server in a subprocess.
    summary = operations.main([*TINY, *TINY_HTTP, "--loader", "python", "--verify"])
    embedded = summary["embedded"]
    assert embedded["verify_ok"] is True
    for asset in operations.ASSETS:
        phase = embedded["phases"][asset]
        assert phase["operations"] == phase["journal_entries"] == 45 * len(operations.OPERATIONS)
        for kind in operations.OPERATIONS:
            assert phase[f"{kind}_p99_ms"] > 0, kind
        http = summary["http"]["phases"][asset]
        assert http["requests_ok"] > 0 and http["requests_other"] == 0, http["non_2xx_samples"]
        assert http["journal_entries"] == http["requests_ok"]  # the python loader waits for every answer
        for mode in ("embedded", "http"):
            for figure in ("operations_per_s", "p50_ms", "p99_ms"):
                assert summary[f"{mode}_{asset}_{figure}"] > 0, (mode, asset, figure)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_keeps_every_cycle_in_order() -> None:
    summary = operations.main([*TINY, *TINY_HTTP, "--modes", "http", "--loader", "wrk"])
    for phase in summary["http"]["phases"].values():
        # A hold before its credit, or a release before its hold, would be a 422 here.
        assert phase["requests_ok"] > 0 and phase["requests_other"] == 0, phase["non_2xx_samples"]
        assert phase["errors"] == 0


def test_a_cycle_has_four_requests_with_distinct_keys() -> None:
    cycle = operations.make_cycle("program", "asset", "simple", 7)
    keys = {
        cycle.adjust.idempotency_key,
        cycle.hold.idempotency_key,
        cycle.release.idempotency_key,
        cycle.redeem.idempotency_key,
    }
    assert len(keys) == 4
    assert cycle.hold.reference_id == cycle.release.reference_id == "simple-7"
    assert cycle.hold.amount == cycle.release.amount == operations.HOLD_AMOUNT
