"""The engine role: one partition of the events topic, applied in offset order to that partition's own store.

Each partition is a whole embedded engine (its own LMDB store, journal and hash chain) in
``<partitions_dir>/partition-<n>``. The loop reads a batch from the stored offset on and applies it with
:class:`~scrip_actor.partitioned._apply.PartitionApplier` (events admitted with
:func:`scrip_actor.engine.admit_consumed`, transfers and effects from other partitions one by one), which writes
each record's offset in the LMDB record of the effects it produced; the partition's outbox relay
(:mod:`._relay`) runs beside it. A restart, a SIGKILL or a new
owner therefore resumes exactly after the last record applied: nothing is ever committed to the broker.

Fencing: the partition's store is a data directory, and a data directory belongs to one process at a time (an
exclusive ``flock``, scrip_actor/_data_dir.py). A new owner waits for it (:func:`_with_store`); a stopped
(SIGSTOP) or zombie owner keeps it, so it can never write beside its successor. Production needs the broker-side
half too (the group generation checked before each write, or the lock's holder killed on revocation): see
docs/partitioned.md.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from scrip_actor.config import Config
from scrip_actor.engine import Engine, consumed_offset, open_engine
from scrip_actor.errors import DataDirInUse, ValidationFailed
from scrip_actor.partitioned._apply import PartitionApplier
from scrip_actor.partitioned._engine_reads import serving_reads
from scrip_actor.partitioned._kafka import LogRecord, PartitionReader, RecordProducer
from scrip_actor.partitioned._partition_ids import claim_partition_ids
from scrip_actor.partitioned._relay import relay_pending, relay_until_cancelled
from scrip_actor.partitioned._wallet_leases import hold_until_applier, wait_quiet

__all__ = ["partition_data_dir", "run_partition"]

_BATCH_RECORDS_MAX = 500
_POLL_TIMEOUT_S = 0.2
_LOCK_RETRY_S = 0.1
_METADATA_WAIT_S = 10.0


def partition_data_dir(partitions_dir: str | Path, partition: int) -> Path:
    """Where partition ``partition``'s store lives (one data directory per partition)."""
    return Path(partitions_dir) / f"partition-{partition}"


def log_name(topic: str, partition: int) -> str:
    """The name a partition's offset is stored under: a store moved to another partition starts from 0."""
    return f"{topic}/{partition}"


def claiming(config: Config, topic: str, partition: int) -> Callable[[], None]:
    """What runs before the partition's store is opened: make it mint ids that name the partition."""
    return functools.partial(claim_partition_ids, config.storage, topic, partition)


async def _with_store(
    config: Config,
    wait_s: float,
    body: Callable[[Engine], Awaitable[int]],
    prepare: Callable[[], None] | None = None,
    *,
    partition_of: tuple[int, int],
) -> int:
    """Run ``body`` on the partition's engine, waiting (up to ``wait_s``) while a previous owner holds the store.

    ``partition_of``: (this partition, the topic's count), for the shared wallets' and budgets' owners.
    ``prepare`` runs first, on each attempt, with the store not yet open by this process (the partition's id
    prefix is claimed there: _partition_ids.claim_partition_ids); it may raise DataDirInUse like the open."""
    deadline = time.monotonic() + wait_s
    while True:
        opened = False
        try:
            if prepare is not None:
                prepare()
            async with open_engine(config=config) as engine:
                hold_until_applier(
                    engine, *partition_of
                )  # before the first checkpoint: no recovered event has stepped yet
                opened = True
                return await body(engine)
        except DataDirInUse:
            if opened or time.monotonic() > deadline:
                raise
        await trio.sleep(_LOCK_RETRY_S)


async def _topic_partitions(producer: RecordProducer, topic: str) -> int:
    """The topic's partition count (part of the routing rule for cross-partition effects); refuses a missing one."""
    partitions = await trio.to_thread.run_sync(producer.partition_count, topic, _METADATA_WAIT_S)
    if partitions is None:
        raise ValidationFailed(f"topic {topic!r} does not exist", {"topic": topic})
    return partitions


async def run_partition(
    config: Config,
    bootstrap: str,
    topic: str,
    partition: int,
    *,
    until_offset: int | None = None,
    lock_wait_s: float = 60.0,
    on_ready: Callable[[int], None] | None = None,
    idempotency_scope: str = "program",
    read_host: str | None = None,
) -> int:
    """Apply partition ``partition`` of ``topic`` to ``config.storage.data_dir`` until cancelled.

    ``until_offset`` (tests, catch-up jobs): return once every record below it is applied and processed.
    ``idempotency_scope``: ``program`` (a key is claimed across partitions, scrip_actor/partitioned/_claiming.py)
    or ``participant`` (checked on the participant's partition only); every engine of a topic must use the same.
    ``read_host``: also serve the partition's GET routes there while the store is open (_engine_reads.py).
    Returns the offset after the last record applied.
    """
    log = log_name(topic, partition)
    producer = RecordProducer(bootstrap)  # the outbox relay's
    partitions = await _topic_partitions(producer, topic)

    async def body(engine: Engine) -> int:
        applier = PartitionApplier(engine, topic, partition, partitions, log, claims_on=_claims_on(idempotency_scope))
        next_offset = consumed_offset(engine, log)
        reader = await trio.to_thread.run_sync(PartitionReader, bootstrap, topic, partition, next_offset)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(relay_until_cancelled, applier, producer)
                if on_ready is not None:
                    on_ready(next_offset)
                while until_offset is None or next_offset < until_offset:
                    batch = await trio.to_thread.run_sync(reader.read, _BATCH_RECORDS_MAX, _POLL_TIMEOUT_S)
                    if batch:
                        next_offset = await _applied(applier, reader, batch)
                    else:
                        await applier.release_and_flush()  # what an overload held back
                await wait_quiet(engine)  # held steps stay admitted, for the next run (they wait for later records)
                nursery.cancel_scope.cancel()
            await relay_pending(applier, producer)  # what the last records sent, before the store is let go
        finally:
            await trio.to_thread.run_sync(reader.close)
        return next_offset

    reading = serving_reads(body, config, topic, partition, read_host)
    prepare = claiming(config, topic, partition)
    return await _with_store(config, lock_wait_s, reading, prepare, partition_of=(partition, partitions))


def _claims_on(idempotency_scope: str) -> bool:
    if idempotency_scope not in ("program", "participant"):
        raise ValueError(f"idempotency scope must be program or participant, not {idempotency_scope!r}")
    return idempotency_scope == "program"


async def _applied(applier: PartitionApplier, reader: PartitionReader, batch: list[LogRecord]) -> int:
    """Apply one batch; returns the offset to read next (the overloaded record's, to read it again)."""
    retry_at = await applier.apply(batch)
    if retry_at is None:
        return batch[-1][0] + 1
    reader.seek(retry_at)
    await trio.sleep(0.05)
    return retry_at
