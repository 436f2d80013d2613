"""bench.scale at toy size: builds, measures and reopens a store."""

from __future__ import annotations

from bench import scale


def test_tiny_scale_run_reports_memory_disk_and_reopen() -> None:
    figures = scale.main(["--in-process", "--json", "--no-sync", "--participants", "300", "--batch-size", "50"])
    assert figures is not None
    assert figures["journal_entries"] == 300 and figures["events_failed"] == 0
    assert figures["participants_cached"] == 300
    for key in ("rss_mb", "rss_peak_mb", "data_mb", "reopen_s", "create_events_per_s"):
        assert figures[key] > 0, key
    assert figures["map_trims"] >= 0


def test_signup_chunks_cover_every_participant_once() -> None:
    chunks = list(scale.signup_chunks("p", 25, 10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert len({event.external_id for chunk in chunks for event in chunk}) == 25
