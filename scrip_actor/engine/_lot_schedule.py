"""When lots come due: the schedule of expiries and maturities, and the sweeper task that acts on it.

A lot with an ``expires_at`` (or a ``matures_at`` while DEFERRED) has a ``schedule`` record keyed by its due time;
here they are a heap in memory. The sweeper wakes every ``engine.sweep_interval_s`` (or as soon as a new due time
is added) and hands the due participants to the engine, which sends each a sweep message through its mailbox, so
a sweep is serialised with the participant's events like any other step.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

import trio

from scrip_actor import _records
from scrip_actor.store import Store

__all__ = ["LotSchedule"]


class LotSchedule:
    """The due lots as a heap of ``(due_ms, participant_id, schedule key)``."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str, bytes]] = []
        self._wakeup = trio.Event()

    def load(self, store: Store) -> None:
        """Read the schedule (at open)."""
        self._heap = _records.load_schedule(store)

    def add(self, due: datetime, lot_id: str, participant_id: str) -> None:
        """A lot of ``participant_id`` is due at ``due`` (its record is written by the step that opened it)."""
        key = _records.schedule_key(due, lot_id)
        heapq.heappush(self._heap, (int.from_bytes(key[:8], "big"), participant_id, key))
        self._wakeup.set()

    def pop_due(self, now_ms: int) -> dict[str, list[bytes]]:
        """Take every entry due by ``now_ms``: the schedule keys of each participant."""
        due: dict[str, list[bytes]] = {}
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            _, participant_id, key = heapq.heappop(heap)
            due.setdefault(participant_id, []).append(key)
        return due

    async def run(self, sweep_due: Callable[[], int], interval_s: float) -> None:
        """The sweeper: ``sweep_due()`` every ``interval_s``, or sooner when a lot is scheduled."""
        while True:
            sweep_due()
            self._wakeup = trio.Event()
            with trio.move_on_after(interval_s):
                await self._wakeup.wait()
