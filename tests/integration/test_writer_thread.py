"""The group-commit writer's thread: records land in order, failures stop it loudly, and the trio thread keeps
working while a commit (the fsync) is in progress."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from scrip_actor.store import Store, Writer, WriterFailed, be64


def _store(path: Path) -> Store:
    return Store(path, map_size_bytes=64 << 20, sync=False, max_readers=16)


async def test_records_are_durable_in_append_order(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        writer = Writer(store, batch_records_max=7)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            tickets = [writer.append([("events", be64(n), f"v{n}".encode())]) for n in range(1, 51)]
            await writer.wait_durable(tickets[-1])
            writer.close()
        assert writer.durable == 50
        # The thread is gone before run() returns, so the store can be closed right after.
        assert "scrip-lmdb-writer" not in {thread.name for thread in threading.enumerate()}
        assert writer.statistics().commits >= 50 // 7
        assert [key for key, _ in store.scan("events")] == [be64(n) for n in range(1, 51)]
    finally:
        store.close()


async def test_the_trio_thread_runs_while_a_commit_is_held(tmp_path: Path) -> None:
    store = _store(tmp_path)
    release = threading.Event()
    original = store.commit_write

    def slow_commit(txn: Any) -> None:
        release.wait(timeout=10)
        original(txn)

    store.commit_write = slow_commit  # type: ignore[method-assign]
    try:
        writer = Writer(store, batch_records_max=100)
        ticks = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            ticket = writer.append([("events", be64(1), b"x")])
            for _ in range(20):  # the commit is held, yet this task keeps being scheduled
                await trio.sleep(0.005)
                ticks += 1
            assert writer.durable == 0
            release.set()
            await writer.wait_durable(ticket)
            writer.close()
        assert ticks == 20 and writer.durable == 1
    finally:
        store.close()


@pytest.mark.parametrize("stage", ["fill", "commit"])
async def test_a_failed_batch_fails_the_writer_and_its_waiters(tmp_path: Path, stage: str) -> None:
    store = _store(tmp_path)

    def broken(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    setattr(store, "fill" if stage == "fill" else "commit_write", broken)
    try:
        writer = Writer(store, batch_records_max=100)
        ticket = writer.append([("events", be64(1), b"x")])

        async def run_and_wait() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await writer.wait_durable(ticket)

        with pytest.raises(BaseExceptionGroup) as raised:
            await run_and_wait()
        failed, other = raised.value.split(WriterFailed)  # the writer task and the waiter both say so
        assert failed is not None and other is None
        with pytest.raises(WriterFailed):
            writer.append([("events", be64(2), b"y")])
        assert writer.durable == 0
    finally:
        store.close()
    reopened = _store(tmp_path)
    try:
        assert list(reopened.scan("events")) == []  # nothing of the failed batch reached the disk
    finally:
        reopened.close()


async def test_a_batch_puts_the_last_value_of_a_key_written_by_many_records(tmp_path: Path) -> None:
    """Whole-value databases (accounts, participants, meta) coalesce within a batch; the last record wins."""
    store = _store(tmp_path)
    try:
        writer = Writer(store, batch_records_max=100)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            for n in range(1, 21):
                writer.append([("accounts", b"SYSTEM:ISSUANCE", str(n).encode()), ("events", be64(n), b"e")])
            ticket = writer.append([("meta", b"journal_head", b"[20]"), ("accounts", b"other", b"7")])
            await writer.wait_durable(ticket)
            writer.close()
        assert store.get_raw("accounts", b"SYSTEM:ISSUANCE") == b"20"
        assert store.get_raw("accounts", b"other") == b"7"
        assert store.get_raw("meta", b"journal_head") == b"[20]"
        assert len(list(store.scan("events"))) == 20
    finally:
        store.close()
