"""Helpers shared by the engine benchmarks (``bench.embedded``, ``bench.scale``).

What lives here is what every benchmark measures the same way:

- :func:`tune_gc`: the cyclic-GC settings DESIGN.md section 3 measured (freeze start-up objects, collect rarely);
- :class:`LatencyRecorder`: submit → processed latency per event, hooked on ``Engine.on_event_processed``;
- :func:`percentile_ms`, :func:`peak_rss_mb`, :func:`current_rss_mb`, :func:`rss_breakdown_mb`,
  :func:`directory_size_mb`;
- :class:`Progress`: a one-line progress bar on stderr, drawn only when stderr is a terminal;
- :func:`bench_config`: the engine settings of a benchmark run (fsync on unless asked otherwise).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from scrip_actor import Config, Engine, Event
from scrip_actor._gc import tune_for_long_lived_heap
from scrip_actor.config import EngineSettings, load_config

__all__ = [
    "LatencyRecorder",
    "Progress",
    "bench_config",
    "current_rss_mb",
    "directory_size_mb",
    "peak_rss_mb",
    "percentile_ms",
    "rss_breakdown_mb",
    "tune_gc",
]


def tune_gc() -> None:
    """Freeze everything allocated so far out of the cyclic GC and make collections rare (DESIGN.md §3).

    Call it once set-up is done (modules imported, program and rules created): the frozen objects are never
    scanned again, and a generation-0 threshold of 50k allocations instead of 700 stops the collector from
    walking the young event objects thousands of times a second. Measured on the prototype: 8.5k → 13k ev/s.
    """
    tune_for_long_lived_heap()  # the same settings `scrip serve` applies after recovery


def bench_config(data_dir: Path, *, cel_backend: str = "compiled", sync: bool = True, **engine: Any) -> Config:
    """Settings for a benchmark engine: fsync'd group commit by default, a map big enough for a million participants."""
    base = load_config()  # SCRIP_* variables still apply, e.g. SCRIP_STORAGE_SYNC=false for an A/B run
    storage = msgspec.structs.replace(base.storage, data_dir=str(data_dir), sync=sync, lmdb_map_size_bytes=32 * 1024**3)
    settings = {**msgspec.structs.asdict(base.engine), "cel_backend": cel_backend, **engine}
    return Config(server=base.server, storage=storage, engine=EngineSettings(**settings), limits=base.limits)


class LatencyRecorder:
    """Time from "about to submit" to "outcome durable" for every event it is told about.

    Events are matched by idempotency key, because an event can be processed (and even durable) before ``submit``
    returns its id: processing starts as soon as the event is accepted, and the outcome rides in the same commit.
    Install it with :meth:`attach`; it chains any ``on_event_processed`` hook already set.
    """

    def __init__(self) -> None:
        self._started_s: dict[str, float] = {}
        self.latencies_s: list[float] = []
        self.processed = 0

    def attach(self, engine: Engine) -> None:
        """Chain :meth:`finish` onto ``engine.on_event_processed``."""
        previous: Callable[[Event], None] | None = engine.on_event_processed

        if previous is None:
            engine.on_event_processed = self.finish
        else:

            def both(event: Event) -> None:
                previous(event)
                self.finish(event)

            engine.on_event_processed = both

    def start(self, idempotency_key: str) -> None:
        """Note the submit time of one event (call just before ``submit``)."""
        self._started_s[idempotency_key] = time.perf_counter()

    def finish(self, event: Event) -> None:
        """The engine's hook: the event's outcome is durable."""
        self.processed += 1
        started_s = self._started_s.pop(event.idempotency_key, None)
        if started_s is not None:
            self.latencies_s.append(time.perf_counter() - started_s)

    def reset(self) -> None:
        """Forget everything measured so far (between phases)."""
        self._started_s.clear()
        self.latencies_s = []
        self.processed = 0


def percentile_ms(samples_s: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``samples_s`` (seconds), in milliseconds; None when there are no samples."""
    if not samples_s:
        return None
    ordered = sorted(samples_s)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] * 1000.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (from /proc; falls back to the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def rss_breakdown_mb() -> dict[str, float]:
    """Resident memory split as Linux reports it: ``anon`` (the Python heap, malloc arenas) and ``file`` (mapped
    files: for us mostly LMDB's memory map, whose clean pages the kernel can drop at will), in MiB.

    An LMDB reader maps the whole data file, so every page a lookup touches counts in RSS as ``file``; only
    ``anon`` is memory the process really owns. Empty outside Linux.
    """
    breakdown: dict[str, float] = {}
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return breakdown
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "RssShmem"):
            breakdown[name[3:].lower()] = round(int(value.split()[0]) / 1024, 1)
    return breakdown


def directory_size_mb(path: Path) -> float:
    """Bytes actually allocated on disk under ``path`` (LMDB files are sparse: st_blocks, not st_size), in MiB."""
    total = 0
    for file in path.rglob("*"):
        if file.is_file():
            total += file.stat().st_blocks * 512
    return total / 1024**2


class Progress:
    """A one-line progress bar on stderr, redrawn a few times a second; silent unless stderr is a terminal.

    Use it as ``async with Progress("engine/submit", total, lambda: recorder.processed):`` inside a trio task.
    """

    def __init__(self, label: str, total: int, done: Callable[[], int], *, interval_s: float = 0.25) -> None:
        self._label = label
        self._total = max(1, total)
        self._done = done
        self._interval_s = interval_s
        self._enabled = sys.stderr.isatty()
        self._cancel: trio.CancelScope | None = None
        self._nursery_manager: Any = None

    async def __aenter__(self) -> Progress:
        if self._enabled:
            self._nursery_manager = trio.open_nursery()
            nursery = await self._nursery_manager.__aenter__()
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self._draw_forever)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._nursery_manager is not None:
            assert self._cancel is not None
            self._cancel.cancel()
            await self._nursery_manager.__aexit__(*exc_info)
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
            sys.stderr.flush()

    async def _draw_forever(self) -> None:
        started_s = time.perf_counter()
        self._started_s = started_s
        while True:
            self._draw(time.perf_counter())
            await trio.sleep(self._interval_s)

    def _draw(self, now_s: float) -> None:
        done = self._done()
        fraction = min(1.0, done / self._total)
        elapsed_s = max(1e-9, now_s - getattr(self, "_started_s", now_s))
        bar = "#" * int(fraction * 30)
        sys.stderr.write(f"\r{self._label:<18} [{bar:<30}] {fraction:6.1%} {done / elapsed_s:>9,.0f} ev/s")
        sys.stderr.flush()
