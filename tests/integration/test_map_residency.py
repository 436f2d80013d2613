"""LMDB map residency: a trim really lowers this process's file-backed RSS, and nothing reads differently after it.

Real LMDB, real /proc: these tests run on Linux only (elsewhere the feature is a logged no-op).
"""

from __future__ import annotations

import inspect
import sys
import threading
from pathlib import Path

import lmdb
import msgspec
import pytest
import trio

from scrip_actor import open_engine
from scrip_actor._residency import MapResidency, file_resident_bytes
from scrip_actor.config import StorageSettings, load_config
from scrip_actor.store import Store, Writer, WriterFailed, be64
from tests.conftest import small_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc are Linux's")

MIB = 1024**2
VALUE_BYTES = 4000  # one overflow page each: 10 values ≈ 40 KiB of map
STORE_MB = 40


def _filled_store(path: Path) -> Store:
    store = Store(path, map_size_bytes=1 << 30, sync=False, max_readers=16)
    values = [[("journal", be64(n), n.to_bytes(4, "big") * (VALUE_BYTES // 4))] for n in range(STORE_MB * MIB // 4096)]
    store.write(values)
    return store


def _read_all(store: Store) -> int:
    """Touch every page of the journal; check every value; return how many."""
    count = 0
    for key, value in store.scan("journal"):
        assert value == key[4:] * (VALUE_BYTES // 4)
        count += 1
    return count


def _residency_threads() -> int:
    return sum(thread.name == "scrip-map-residency" for thread in threading.enumerate())


def _file_mb() -> float:
    resident = file_resident_bytes()
    assert resident is not None
    return resident / MIB


def test_a_trim_drops_the_pages_read_from_rss_and_they_read_back_the_same(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "data")
    try:
        entries = _read_all(store)
        read_mb = _file_mb()
        residency = MapResidency(store.env, resident_max_bytes=1 * MIB, check_interval_s=0)
        assert residency.enabled
        assert residency.maybe_trim(0.0)
        trimmed_mb = _file_mb()
        assert read_mb - trimmed_mb >= STORE_MB * 0.75, (read_mb, trimmed_mb)
        assert _read_all(store) == entries  # faulted back in from the page cache, same bytes
        assert _file_mb() - trimmed_mb >= STORE_MB * 0.75
        statistics = residency.statistics()
        assert statistics.trims == 1 and statistics.checks == 1
        assert statistics.file_resident_bytes_last >= read_mb * MIB * 0.99
    finally:
        store.close()


def test_under_budget_nothing_happens_and_checks_are_spaced(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", map_size_bytes=1 << 30, sync=False, max_readers=16)
    try:
        residency = MapResidency(store.env, resident_max_bytes=1 << 40, check_interval_s=10.0)
        assert not residency.maybe_trim(100.0)
        assert not residency.maybe_trim(105.0)  # within the interval: not even a check
        statistics = residency.statistics()
        assert (statistics.checks, statistics.trims) == (1, 0)
        assert statistics.file_resident_bytes_last > 0
        assert not residency.maybe_trim(110.0)
        assert residency.statistics().checks == 2
    finally:
        store.close()


def test_zero_disables_it(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "data")
    try:
        _read_all(store)
        residency = MapResidency(store.env, resident_max_bytes=0, check_interval_s=0)
        assert not residency.enabled
        read_mb = _file_mb()
        assert not residency.maybe_trim(0.0)
        assert residency.statistics().checks == 0
        assert _file_mb() >= read_mb - 1
    finally:
        store.close()


def test_a_writable_map_is_refused(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path / "writemap"), map_size=1 << 20, writemap=True)
    try:
        with pytest.raises(AssertionError, match="writemap"):
            MapResidency(env, resident_max_bytes=MIB)
    finally:
        env.close()


async def test_the_writer_trims_when_over_budget_and_commits_still_land(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "data")
    try:
        entries = _read_all(store)
        read_mb = _file_mb()
        writer = Writer(store, batch_records_max=100, map_resident_max_mb=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            ticket = writer.append([("journal", be64(entries), b"after the trim")])
            await writer.wait_durable(ticket)
            writer.close()
        assert writer.statistics().map_trims >= 1
        assert _file_mb() < read_mb - STORE_MB * 0.5
        assert store.get_raw("journal", be64(entries)) == b"after the trim"
        assert store.get_raw("journal", be64(7)) == (7).to_bytes(4, "big") * (VALUE_BYTES // 4)
    finally:
        store.close()


async def test_the_writer_trims_between_commits_too(tmp_path: Path) -> None:
    """Reads map pages while no commit ends (so do a long commit's puts): the residency thread still trims."""
    store = _filled_store(tmp_path / "data")
    try:
        writer = Writer(store, batch_records_max=100, map_resident_max_mb=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            trims = writer.statistics().map_trims
            trimmed_mb = _file_mb()  # it trimmed as it started
            _read_all(store)  # maps ~STORE_MB more, unless a check comes in the middle of it
            for _ in range(150):  # it looks every 20 ms after activity, every second otherwise
                if writer.statistics().map_trims > trims and _file_mb() < trimmed_mb + STORE_MB * 0.5:
                    break
                await trio.sleep(0.02)
            assert writer.statistics().map_trims > trims
            assert _file_mb() < trimmed_mb + STORE_MB * 0.5
            writer.close()
    finally:
        store.close()


async def test_the_writer_stops_cleanly_when_cancelled_and_fails_unwrapped(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", map_size_bytes=1 << 20, sync=False, max_readers=16)
    try:
        writer = Writer(store, batch_records_max=100, map_resident_max_mb=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await trio.sleep(0.15)  # the residency thread has checked a few times
            assert _residency_threads() == 1
            nursery.cancel_scope.cancel()
        assert _residency_threads() == 0  # stopped before run() returned, so before the store can close
        writer = Writer(store, batch_records_max=100, map_resident_max_mb=1)
        writer.append([("journal", be64(1), b"x" * (2 << 20))])  # more than the 1 MiB map holds
        with pytest.raises(WriterFailed):
            await writer.run()
        assert _residency_threads() == 0
    finally:
        store.close()


async def test_the_writer_does_nothing_when_disabled(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "data")
    try:
        writer = Writer(store, batch_records_max=100, map_resident_max_mb=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.wait_durable(writer.append([("meta", b"k", b"v")]))
            writer.close()
        assert writer.statistics().map_trims == 0
    finally:
        store.close()


def test_the_setting_refuses_negatives_and_its_default_is_the_writers() -> None:
    assert load_config(None, {"SCRIP_STORAGE_LMDB_MAP_RESIDENT_MAX_MB": "0"}).storage.lmdb_map_resident_max_mb == 0
    assert load_config(None, {"SCRIP_STORAGE_LMDB_MAP_RESIDENT_MAX_MB": "512"}).storage.lmdb_map_resident_max_mb == 512
    with pytest.raises(ValueError, match="lmdb_map_resident_max_mb"):
        load_config(None, {"SCRIP_STORAGE_LMDB_MAP_RESIDENT_MAX_MB": "-1"})
    default = inspect.signature(Writer).parameters["map_resident_max_mb"].default
    assert default == StorageSettings().lmdb_map_resident_max_mb


async def test_the_engine_applies_the_setting(tmp_path: Path) -> None:
    trims = {}
    for budget_mb in (1, 0):
        config = small_config(tmp_path / str(budget_mb))
        storage = msgspec.structs.replace(config.storage, lmdb_map_resident_max_mb=budget_mb)
        config = msgspec.structs.replace(config, storage=storage)
        async with open_engine(config=config) as engine:
            trims[budget_mb] = engine._writer.statistics().map_trims  # the writer checks once before it starts
    assert trims[1] >= 1 and trims[0] == 0, trims
