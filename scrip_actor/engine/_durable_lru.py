"""A bounded map of records that memory may hold ahead of the disk (redemptions, reward counts).

Memory is always at least as new as the store: a record changed by a step is written by the writer record that
step appends, and is durable only later. So an entry may leave memory only once the writer record that stored
it is durable; after that, reading it back from the store gives the same value. :class:`DurableLru` keeps at
most ``entries_max`` entries, evicting the least recently used *durable* ones (an entry still in flight stays,
however old: at most the writer's in-flight records' worth).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from scrip_actor.store import Writer

__all__ = ["DurableLru"]

K = TypeVar("K")
V = TypeVar("V")


class DurableLru(Generic[K, V]):
    """See the module docstring."""

    def __init__(self, writer: Writer, entries_max: int) -> None:
        assert entries_max >= 1
        self._writer = writer
        self._entries_max = entries_max
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()  # key -> (value, ticket that stores it)

    def get(self, key: K) -> V | None:
        """The value held for ``key`` (made the most recently used), or None: read it from the store then."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def loaded(self, key: K, value: V) -> None:
        """``value`` was just read from the store: durable already."""
        self._entries[key] = (value, 0)
        self._trim()

    def written(self, key: K, value: V) -> None:
        """``value`` goes to the store in the very next writer record (appended by the step that changed it)."""
        self._entries[key] = (value, self._writer.next_ticket)
        self._entries.move_to_end(key)
        self._trim()

    def __len__(self) -> int:
        return len(self._entries)

    def _trim(self) -> None:
        """Evict least recently used durable entries until within bounds (skipping those still in flight, which
        are few: at most the writer's pending records)."""
        if len(self._entries) <= self._entries_max:
            return
        durable = self._writer.durable
        excess = len(self._entries) - self._entries_max
        evict = []
        for key, (_, ticket) in self._entries.items():  # oldest first; stops as soon as enough are found
            if ticket <= durable:
                evict.append(key)
                if len(evict) == excess:
                    break
        for key in evict:
            del self._entries[key]
