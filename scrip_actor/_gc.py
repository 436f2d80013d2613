"""Garbage-collector settings for a long-lived server heap.

CPython's cyclic collector runs a generation-0 pass every 700 net allocations and re-scans every object that
survived earlier passes in its older generations. A server's heap after recovery (compiled rules, cached
participants, modules) is large and lives for the process's life, and each event allocates dozens of short-lived
objects, so at the default thresholds the collector walks that heap over and over for nothing. Freezing what
exists after recovery moves it to a permanent generation the collector never scans, and a generation-0 threshold
of 50,000 makes young collections rare; reference counting still frees almost everything at once (DESIGN.md §3:
+27 % on the lean prototype when added back; docs/benchmarks.md for the server).
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_for_long_lived_heap"]

GEN0_THRESHOLD = 50_000


def tune_for_long_lived_heap() -> None:
    """Collect once, freeze every surviving object, and make young collections rare. Call after recovery."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 1000)
