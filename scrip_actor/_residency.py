"""Keep this process's resident share of LMDB's memory map bounded (Linux; elsewhere a logged no-op).

Why RSS grows. LMDB maps its whole data file into the process (read-only, ``MAP_SHARED``, because the store opens
it with ``writemap=False``). Every page a read touches, and every page a write transaction reads on its way (the
rightmost leaf of an append-keyed database, branch pages, free-list pages), stays mapped in this process's page
tables. Over a long run that is the whole file: measured at 1M participants, 4.35 GB of RSS of which only ~330 MB
was the process's own (anonymous) memory; the rest were clean pages of the page cache counted in our RSS because
they are mapped here. Readahead made no difference.

What a trim does. ``madvise(start, length, MADV_DONTNEED)`` on that mapping removes its page-table entries, nothing
else. For a shared file mapping the pages are the page cache's, not ours: they stay in memory (the kernel keeps or
evicts them as it would any cached file data), and the next access faults them back in from the cache, with no
I/O while they are cached (madvise(2): "subsequent accesses ... repopulating the memory contents from the
up-to-date contents of the underlying mapped file"). Nothing is lost or changed, so it is safe at any moment, even
while a read transaction or the writer thread is using the pages: they simply fault back.

When it would NOT be safe, and the guards. On a private mapping, or on anonymous memory, ``MADV_DONTNEED`` discards
the contents (later reads see zeros or the original file). So: :class:`MapResidency` refuses an environment opened
with ``writemap`` (assert); when it is created, right after the environment is opened, it records the one mapping
``/proc/self/maps`` shows as ``r--s`` (readable, not writable, shared) of our data file (same path and inode, offset
0), and it advises only that range, after checking it is still listed the same way. LMDB 0.9 does not report where
its map is (``Environment.info()["map_addr"]`` is 0 unless the map is at a fixed address), hence the lookup. Its
thread runs only between :meth:`MapResidency.start` and :meth:`MapResidency.stop`, which the writer calls at the
start and end of its run, and the store is closed only after that: the map cannot be unmapped (and its addresses
reused by other memory) while a trim runs.

Why a thread, and how often. Linux maps up to 16 neighbouring pages already in the page cache on every read fault
of a file mapping ("fault-around", 64 KiB; ``MADV_RANDOM``, i.e. LMDB's ``readahead=False``, does not change it).
So after a trim each random B-tree leaf a lookup or a put touches maps ~50 KB, not 4 KiB (measured: 50 KB per
random ``get`` on a 128 MB store), and at 1M participants the map grew back at 0.5-1 GB/s, with bursts of 350 MB
in 50 ms while the engine's thread admitted a batch of 1000 events. Measured at 1M participants with a 256 MB
budget, the file-backed RSS reached ~790 MB when checked as each commit ended (~0.6 s apart there), ~580 MB
with a trio task every 0.1 s (it cannot run while the engine's thread is busy), ~315 MB with this thread (2 s
samples). So the check runs on its own thread, every ``check_interval_s`` (20 ms) while the writer has work and
every ``idle_check_interval_s`` (1 s) otherwise.

What it costs (2-core dev machine): reading ``/proc/self/statm`` ~30 µs (50 a second: ~0.2 % of a core, plus
taking the GIL that often); a trim ~0.3 ms to read ``/proc/self/maps`` plus ``madvise``, proportional to the
pages resident (~2-3 ms for 200 MB; 1.7 ms on a 32 GiB map with 200 MB resident, so not to the map's size). The
real cost is after it: the pages fault back at ~2 µs each, and when the store is much larger than the budget
almost every random B-tree access faults. Measured on 2 shared cores against ``0``: −13 % ± 10 % events/s at
200k participants, −36 % at 1M (docs/operations.md). A larger budget keeps more hot pages mapped: fewer faults.

What it does not do. It does not shrink the page cache (the kernel owns it; it is reclaimable and, in a cgroup,
charged as page cache, not as this process's RSS), and it bounds *this process's* file-backed RSS only at each
check: in between, reads can map a check interval's worth of pages more. The measure is statm's ``shared`` field
(resident file-backed and shmem pages of the whole process), so the Python binary and libraries (~15-40 MB) count
against the budget too.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any

import msgspec

__all__ = ["MapResidency", "MapResidencyStatistics", "file_resident_bytes"]

_log = logging.getLogger("scrip_actor.residency")
_PAGE_BYTES = mmap.PAGESIZE
_STATM = Path("/proc/self/statm")
_MAPS = Path("/proc/self/maps")


class MapResidencyStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one :class:`MapResidency`."""

    checks: int
    trims: int
    trim_seconds_total: float
    file_resident_bytes_last: int  # at the last check (before its trim, if any); 0 before the first


def file_resident_bytes() -> int | None:
    """Resident file-backed (and shmem) memory of this process, from ``/proc/self/statm``; None if unreadable.

    statm's third field ("shared") is RssFile + RssShmem in pages: cheap to read (one small read, no parsing of
    ``/proc/self/status``).
    """
    try:
        return int(_STATM.read_bytes().split()[2]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


def _madvise() -> Any:
    """libc's ``madvise`` through ctypes, or a string saying why it is unavailable."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if not hasattr(mmap, "MADV_DONTNEED"):
        return "mmap.MADV_DONTNEED is not defined"
    if file_resident_bytes() is None:
        return f"{_STATM} is not readable"
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError) as error:
        return f"libc madvise not found ({error})"
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _shared_read_only_mappings(data_file: str, inode: int) -> list[tuple[int, int]]:
    """``(start, end)`` of every ``r--s`` mapping of ``data_file`` from offset 0 (LMDB's) in this process.

    Matched by path and inode, so no other mapping can be advised by mistake.
    """
    found = []
    with _MAPS.open() as maps:
        for line in maps:
            # address perms offset dev inode pathname (the path may contain spaces: split at most 5 times)
            fields = line.rstrip("\n").split(None, 5)
            if len(fields) != 6 or fields[1] != "r--s" or fields[5] != data_file:
                continue
            if int(fields[4]) == inode and int(fields[2], 16) == 0:
                start, _, end = fields[0].partition("-")
                found.append((int(start, 16), int(end, 16)))
    return found


class MapResidency:
    """Bounds this process's file-backed resident memory by dropping its mapping of LMDB's map when over budget.

    :meth:`start` runs the checks on a thread until :meth:`stop`; :meth:`maybe_trim` is one check (it does nothing
    until ``check_interval_s`` has passed since the last one, then reads the resident size and trims when it
    exceeds ``resident_max_bytes``). ``resident_max_bytes=0`` disables it. Create it right after opening ``env``,
    and stop it before closing ``env`` (see the module docstring for why).
    """

    def __init__(
        self,
        env: Any,
        *,
        resident_max_bytes: int,
        check_interval_s: float = 0.02,
        idle_check_interval_s: float = 1.0,
    ) -> None:
        assert resident_max_bytes >= 0
        assert check_interval_s >= 0
        assert idle_check_interval_s >= 0
        flags = env.flags()
        # A writable shared mapping is where LMDB writes with writemap: never advise it (see the module docstring).
        assert not flags["writemap"], "MADV_DONTNEED is only safe on LMDB's read-only map (writemap=False)"
        path = env.path()
        self._data_file = os.path.realpath(os.path.join(path, "data.mdb") if flags["subdir"] else path)
        self._inode = os.stat(self._data_file).st_ino
        self._resident_max_bytes = resident_max_bytes
        self._check_interval_s = check_interval_s
        self._idle_check_interval_s = idle_check_interval_s
        self._next_check_s = float("-inf")
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._checks = 0
        self._trims = 0
        self._trim_s_total = 0.0
        self._resident_last = 0
        self._madvise: Any = None
        self._mapping = (0, 0)
        if resident_max_bytes:
            madvise = _madvise()
            mappings = [] if isinstance(madvise, str) else _shared_read_only_mappings(self._data_file, self._inode)
            if isinstance(madvise, str):
                _log.info("LMDB map residency is not bounded: %s", madvise)
            elif len(mappings) != 1:
                _log.warning("LMDB map residency is not bounded: %d r--s maps of %s", len(mappings), self._data_file)
            else:
                self._madvise, self._mapping = madvise, mappings[0]

    @property
    def enabled(self) -> bool:
        """True when a budget is set and ``madvise`` is available."""
        return self._madvise is not None

    def start(self, busy: Callable[[], bool]) -> None:
        """Check on a thread from now on: every ``check_interval_s`` while ``busy()``, else every idle interval."""
        assert self._thread is None, "started twice"
        if self._madvise is None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(busy,), name="scrip-map-residency", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a trim in progress: a few milliseconds). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def _run(self, busy: Callable[[], bool]) -> None:
        while not self._stopping.wait(self._check_interval_s if busy() else self._idle_check_interval_s):
            self.maybe_trim(monotonic())

    def maybe_trim(self, now_s: float) -> bool:
        """Check the resident size if ``check_interval_s`` has passed since the last check; trim when over budget.

        ``now_s`` is ``time.monotonic()`` (the thread's clock). One caller at a time. Returns True when it trimmed.
        """
        if self._madvise is None or now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + self._check_interval_s
        self._checks += 1
        resident = file_resident_bytes()
        if resident is None:
            return False
        self._resident_last = resident
        if resident <= self._resident_max_bytes:
            return False
        self.trim()
        return True

    def trim(self) -> None:
        """Drop this process's page-table entries for LMDB's map now (the pages stay in the page cache)."""
        assert self._madvise is not None, "trim() needs a budget and madvise (see enabled)"
        started_s = perf_counter()
        size = os.stat(self._data_file).st_size
        start, end = self._mapping
        if self._mapping not in _shared_read_only_mappings(self._data_file, self._inode):
            # Only if the environment was closed or remapped under us: a bug. Never advise a range we cannot vouch for.
            _log.warning("LMDB map residency stopped: the map of %s is no longer where it was", self._data_file)
            self._madvise = None
            return
        assert start % _PAGE_BYTES == 0, start  # madvise needs a page-aligned address
        assert end % _PAGE_BYTES == 0, end
        # Pages past the end of the file cannot be resident: advise only the file's part of the map.
        length = min(end - start, -(-size // _PAGE_BYTES) * _PAGE_BYTES)
        if self._madvise(start, length, mmap.MADV_DONTNEED) != 0:
            _log.warning("madvise(MADV_DONTNEED) on the LMDB map failed: %s", os.strerror(ctypes.get_errno()))
        self._trims += 1
        self._trim_s_total += perf_counter() - started_s

    def statistics(self) -> MapResidencyStatistics:
        """A snapshot of the counters."""
        return MapResidencyStatistics(
            checks=self._checks,
            trims=self._trims,
            trim_seconds_total=self._trim_s_total,
            file_resident_bytes_last=self._resident_last,
        )
