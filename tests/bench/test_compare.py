"""bench.compare at toy size: a worktree of the revision and the working tree both run, ratios come back, and
the worktree is gone afterwards."""

from __future__ import annotations

import subprocess

import pytest

from bench import compare

TINY = ["--no-sync", "--participants", "20", "--events", "60", "--concurrency", "8", "--batch-size", "10"]


def test_compare_interleaves_both_trees_and_reports_ratios() -> None:
    report = compare.compare("HEAD", 1, TINY)
    for metric in ("batch_events_per_s", "submit_events_per_s"):
        figures = report["metrics"][metric]
        assert len(figures["old"]) == len(figures["new"]) == 1
        assert figures["ratio_median"] is not None
        assert figures["ratio_median"] > 0
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=compare.REPO, capture_output=True, text=True).stdout
    assert "scrip-compare-" not in worktrees


def test_compare_refuses_an_unknown_revision() -> None:
    with pytest.raises(SystemExit, match="not a revision"):
        compare.compare("no-such-revision-anywhere", 1, TINY)
