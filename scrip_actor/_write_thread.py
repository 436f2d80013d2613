"""The thread that owns LMDB's write transactions, and the hand-off that keeps it fed despite the GIL.

Why not ``trio.to_thread.run_sync(store.write, records)``: py-lmdb releases the GIL around every ``put``. While
the trio thread is busy (it is, under load: it evaluates rules), a writer thread that gives the GIL up for a
one-microsecond ``put`` gets it back only when CPython forces a switch, after ``sys.getswitchinterval()`` (5 ms).
Measured on the benchmark machine: 640k puts/s with an idle main thread, 2-3k puts/s with a busy one (a 14-put
event record then takes ~25 ms of wall time to write). The writer starved until the trio thread went idle, so its
work ran *after* the rules instead of beside them, and commit latency grew with load.

The cure is a hand-off in two halves:

1. **Puts, with the trio thread parked.** :meth:`WriteThread.write` gives the batch to the thread and blocks the
   trio thread on a plain lock until every ``put`` is done. A blocked thread does not want the GIL, so each
   ``put`` gets it back at once: the batch is copied into LMDB at full speed (~1-2 µs a put).
2. **Commit, with the trio thread free.** The thread then commits (the fsync, which releases the GIL for
   milliseconds) while the trio thread goes back to work; :meth:`WriteThread.write` returns a trio awaitable
   that completes when the commit has.

One thread begins, fills and commits every write transaction, as LMDB requires (its writer mutex belongs to the
thread that took it). The trio thread's cost is the puts themselves, which it paid anyway while the writer could not
run. Fail-stop: an error in either half is raised to the caller and the thread stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import outcome
import trio

__all__ = ["WriteThread"]


class WriteThread:
    """A dedicated thread running ``begin()``, ``fill(txn, records)`` and ``commit(txn)``, one batch at a time."""

    def __init__(
        self,
        begin: Callable[[], Any],
        fill: Callable[[Any, list[Any]], None],
        commit: Callable[[Any], None],
    ) -> None:
        self._begin = begin
        self._fill = fill
        self._commit = commit
        self._job_ready = threading.Semaphore(0)
        self._filled = threading.Semaphore(0)
        self._job: tuple[list[Any], trio.lowlevel.TrioToken, Callable[[outcome.Outcome[None]], None]] | None = None
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="scrip-lmdb-writer", daemon=True)
        self._thread.start()

    async def write(self, records: list[Any]) -> None:
        """Put ``records`` in one transaction and commit it. Blocks the calling (trio) thread during the puts only.

        Raises whatever the puts or the commit raised; the thread has then stopped.
        """
        assert not self._busy, "one batch at a time"
        assert not self._stopping
        self._busy = True
        try:
            done: trio.Event = trio.Event()
            result: list[outcome.Outcome[None]] = []

            def finished(value: outcome.Outcome[None]) -> None:
                result.append(value)
                done.set()

            self._job = (records, trio.lowlevel.current_trio_token(), finished)
            self._job_ready.release()
            self._filled.acquire()  # park the trio thread: the puts run without GIL contention
            # The commit (fsync) runs while other tasks go on. Shielded: a commit cannot be called back, and the
            # next batch must not start before this one has ended.
            with trio.CancelScope(shield=True):
                await done.wait()
            result[0].unwrap()
        finally:
            self._busy = False

    def stop(self, *, join_timeout_s: float = 60.0) -> None:
        """End the thread after the batch in hand, if any, and wait for it (bounded). Idempotent.

        Waiting matters: the store is closed next, and LMDB must not lose its environment under a transaction
        still being committed (possible when the writer task was interrupted, e.g. by KeyboardInterrupt, while
        the thread was mid-batch).
        """
        if not self._stopping:
            self._stopping = True
            self._job_ready.release()
        self._thread.join(timeout=join_timeout_s)
        assert not self._thread.is_alive(), "the LMDB writer thread did not stop"

    def _run(self) -> None:
        while True:
            self._job_ready.acquire()
            job, self._job = self._job, None
            if job is None:
                assert self._stopping
                return
            records, token, finished = job
            try:
                txn = self._begin()
            except BaseException as error:
                self._filled.release()
                token.run_sync_soon(finished, outcome.Error(error))
                return
            try:
                self._fill(txn, records)
            except BaseException as error:
                txn.abort()
                self._filled.release()
                token.run_sync_soon(finished, outcome.Error(error))
                return
            self._filled.release()
            try:
                self._commit(txn)
            except BaseException as error:
                txn.abort()  # a no-op when LMDB already ended it; otherwise it would hold the writer lock
                token.run_sync_soon(finished, outcome.Error(error))
                return
            token.run_sync_soon(finished, outcome.Value(None))
