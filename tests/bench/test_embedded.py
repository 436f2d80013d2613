"""bench.embedded end to end at toy size: every phase runs, the summary has the documented keys."""

from __future__ import annotations

from bench import embedded


def test_tiny_run_reports_engine_baseline_and_ratio() -> None:
    # A plain (sync) test: main() calls trio.run itself.
    argv = [
        "--in-process",
        "--json",
        "--no-sync",
        "--participants",
        "30",
        "--events",
        "120",
        "--baseline-events",
        "12",
        "--concurrency",
        "16",
        "--batch-size",
        "20",
        "--batch-tasks",
        "2",
        "--rate",
        "2000",
        "--verify",
    ]
    summary = embedded.main(argv)
    assert summary is not None
    for key in ("events_per_s", "baseline_events_per_s", "ratio", "p50_ms", "p99_ms", "rss_mb"):
        assert isinstance(summary[key], float), key
    engine = summary["engine"]
    assert set(engine["phases"]) == {"submit", "batch", "paced"}
    assert engine["verify_ok"] is True
    for phase in engine["phases"].values():
        assert phase["latency_samples"] == phase["events"]
        assert phase["events_failed"] == 0
    assert set(summary["baseline"]["phases"]) == {"submit", "batch"}
    assert summary["baseline"]["phases"]["batch"]["events"] == 12


def test_mechanics_variant_runs_beside_the_plain_one_and_skips_nothing() -> None:
    argv = ["--in-process", "--json", "--no-sync", "--participants", "20", "--events", "60", "--baseline", "none"]
    summary = embedded.main([*argv, "--concurrency", "8", "--batch-size", "20", "--batch-tasks", "2", "--mechanics"])
    assert summary is not None
    assert summary["engine"]["mechanics"] is False
    assert summary["mechanics"]["mechanics"] is True
    for mode in ("submit", "batch"):
        assert isinstance(summary[f"mechanics_{mode}_events_per_s"], float)
        assert summary["mechanics"]["phases"][mode]["events_failed"] == 0


def test_events_are_deterministic_and_realistic() -> None:
    first = embedded.make_events("p", 10, 50, seed=1, key_prefix="x")
    again = embedded.make_events("p", 10, 50, seed=1, key_prefix="x")
    assert first == again
    assert {event.event_data["type"] for event in first} >= {"purchase", "visit"}
    assert len({event.idempotency_key for event in first}) == 50
