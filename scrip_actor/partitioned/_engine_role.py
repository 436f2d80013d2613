"""The engine role: one partition of the events topic, applied in offset order to that partition's own store.

Each partition is a whole embedded engine (its own LMDB store, journal and hash chain) in
``<partitions_dir>/partition-<n>``. The loop reads a batch from the stored offset on, decodes each record as an
:class:`~scrip_actor.model.EventSubmit` and admits the batch with :func:`scrip_actor.engine.admit_consumed`,
which writes each record's offset in the LMDB record of the event it produced. A restart, a SIGKILL or a new
owner therefore resumes exactly after the last record applied: nothing is ever committed to the broker.

Fencing: the partition's store is a data directory, and a data directory belongs to one process at a time (an
exclusive ``flock``, scrip_actor/_data_dir.py). A new owner waits for it (:func:`_with_store`); a stopped
(SIGSTOP) or zombie owner keeps it, so it can never write beside its successor. Production needs the broker-side
half too (the group generation checked before each write, or the lock's holder killed on revocation): see
docs/partitioned.md. Hooks for the wallet/budget leases and the cross-partition outbox (``_leases.py``,
``_outbox.py``, being built on branch i16-leases) go where :func:`_apply` admits a batch.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import trio

from scrip_actor.config import Config
from scrip_actor.engine import Engine, admit_consumed, consumed_offset, open_engine
from scrip_actor.errors import DataDirInUse, Overloaded, ScripError, ValidationFailed
from scrip_actor.http.errors import decode_json
from scrip_actor.model import EventSubmit
from scrip_actor.partitioned._engine_reads import serving_reads
from scrip_actor.partitioned._kafka import LogRecord, PartitionReader
from scrip_actor.partitioned._partition_ids import claim_partition_ids

__all__ = ["partition_data_dir", "run_partition"]

_decoder = msgspec.json.Decoder(EventSubmit)
_BATCH_RECORDS_MAX = 500
_POLL_TIMEOUT_S = 0.2
_LOCK_RETRY_S = 0.1


def partition_data_dir(partitions_dir: str | Path, partition: int) -> Path:
    """Where partition ``partition``'s store lives (one data directory per partition)."""
    return Path(partitions_dir) / f"partition-{partition}"


def log_name(topic: str, partition: int) -> str:
    """The name a partition's offset is stored under: a store moved to another partition starts from 0."""
    return f"{topic}/{partition}"


def claiming(config: Config, topic: str, partition: int) -> Callable[[], None]:
    """What runs before the partition's store is opened: make it mint ids that name the partition."""
    return functools.partial(claim_partition_ids, config.storage, topic, partition)


def _decoded(record: LogRecord) -> tuple[int, EventSubmit | ScripError]:
    offset, _key, value = record
    if value is None:  # a tombstone: nothing to apply, and it must not stop the partition
        return offset, ValidationFailed(f"record at offset {offset} has no value", {"offset": offset})
    try:
        return offset, decode_json(_decoder, value)
    except ValidationFailed as error:  # the front validates; a bad record must not stop the partition
        return offset, ValidationFailed(f"record at offset {offset} is not an event: {error.message}", error.details)


async def _with_store(
    config: Config, wait_s: float, body: Callable[[Engine], Awaitable[int]], prepare: Callable[[], None] | None = None
) -> int:
    """Run ``body`` on the partition's engine, waiting (up to ``wait_s``) while a previous owner holds the store.

    ``prepare`` runs first, on each attempt, with the store not yet open by this process (the partition's id
    prefix is claimed there: _partition_ids.claim_partition_ids); it may raise DataDirInUse like the open."""
    deadline = time.monotonic() + wait_s
    while True:
        opened = False
        try:
            if prepare is not None:
                prepare()
            async with open_engine(config=config) as engine:
                opened = True
                return await body(engine)
        except DataDirInUse:
            if opened or time.monotonic() > deadline:
                raise
        await trio.sleep(_LOCK_RETRY_S)


async def _apply(engine: Engine, reader: PartitionReader, log: str, batch: list[LogRecord]) -> int:
    """Admit one batch; returns the offset to read next (the overloaded record's, to read it again)."""
    records = [_decoded(record) for record in batch]
    results = await admit_consumed(engine, log, records)
    if results and isinstance(results[-1], Overloaded):
        retry_at = records[len(results) - 1][0]
        reader.seek(retry_at)
        await trio.sleep(0.05)
        return retry_at
    return batch[-1][0] + 1


async def run_partition(
    config: Config,
    bootstrap: str,
    topic: str,
    partition: int,
    *,
    until_offset: int | None = None,
    lock_wait_s: float = 60.0,
    on_ready: Callable[[int], None] | None = None,
    read_host: str | None = None,
) -> int:
    """Apply partition ``partition`` of ``topic`` to ``config.storage.data_dir`` until cancelled.

    ``until_offset`` (tests, catch-up jobs): return once every record below it is applied and processed.
    ``read_host``: also serve the partition's GET routes there while the store is open (_engine_reads.py).
    Returns the offset after the last record applied.
    """
    log = log_name(topic, partition)

    async def body(engine: Engine) -> int:
        next_offset = consumed_offset(engine, log)
        reader = await trio.to_thread.run_sync(PartitionReader, bootstrap, topic, partition, next_offset)
        try:
            if on_ready is not None:
                on_ready(next_offset)
            while until_offset is None or next_offset < until_offset:
                batch = await trio.to_thread.run_sync(reader.read, _BATCH_RECORDS_MAX, _POLL_TIMEOUT_S)
                if batch:
                    next_offset = await _apply(engine, reader, log, batch)
            await engine.wait_idle()
        finally:
            await trio.to_thread.run_sync(reader.close)
        return next_offset

    reading = serving_reads(body, config, topic, partition, read_host)
    return await _with_store(config, lock_wait_s, reading, claiming(config, topic, partition))
