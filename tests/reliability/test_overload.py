"""Issue 6, overload: at three times the sustainable rate the server sheds load (429 with Retry-After, batch items
``too_many_requests``) instead of growing; RSS stays under a bound; nothing accepted is lost; everything accepted
completes once the load stops. ``python -m bench.overload --seconds 10`` is the long run."""

from __future__ import annotations

from pathlib import Path

from bench.overload import INFLIGHT_MAX, overload_run

# The documented bound (docs/reliability.md): the server's RSS under overload, with inflight_events_max = 200.
RSS_BOUND_MB = 250.0


async def test_three_times_the_sustainable_rate_is_shed_not_queued(tmp_path: Path) -> None:
    result = await overload_run(tmp_path, seconds=2.0, flood_s=1.0)
    assert result.sustainable_per_s > 0
    assert result.offered_per_s >= 2.5 * result.sustainable_per_s, result
    assert result.refused > 0 and result.single_429_with_retry_after >= 1, result
    assert result.inflight_peak <= INFLIGHT_MAX, result
    assert result.rss_peak_mb <= RSS_BOUND_MB, result
    assert result.completed == result.accepted, result  # and check_exactly_once: each accepted one, once
