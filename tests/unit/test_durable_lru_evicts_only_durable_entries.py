"""DurableLru: bounded, least recently used first, and never drops an entry whose writer record is not durable."""

from __future__ import annotations

from pathlib import Path

from scrip_actor.engine._durable_lru import DurableLru
from scrip_actor.store import Store, Writer


def test_it_keeps_what_is_not_durable_and_evicts_the_oldest_durable(tmp_path: Path) -> None:
    store = Store(tmp_path / "d", map_size_bytes=1 << 24, sync=False, max_readers=8)
    try:
        writer = Writer(store, batch_records_max=10)
        cache: DurableLru[str, int] = DurableLru(writer, entries_max=2)
        cache.loaded("a", 1)
        cache.loaded("b", 2)
        assert cache.get("a") == 1  # "b" is now the least recently used
        cache.loaded("c", 3)
        assert (cache.get("b"), cache.get("a"), cache.get("c"), len(cache)) == (None, 1, 3, 2)
        cache.written("w", 4)  # stored by the next writer record, which is not durable (no writer task runs)
        writer.append([("meta", b"x", b"1")])
        cache.loaded("d", 5)
        cache.loaded("e", 6)
        assert cache.get("w") == 4  # every durable entry older than it went first; it stays while in flight
        assert len(cache) == 2
    finally:
        store.close()
