"""The engine role as a consumer-group member: the broker decides which partitions this process applies.

:func:`run_group` joins group ``group`` on ``topic`` (classic protocol, ``cooperative-sticky`` by default) and
reads whatever is assigned to it. Each assigned partition is a whole embedded engine on its own store
(:func:`~scrip_actor.partitioned._engine_role.partition_data_dir`), opened on assignment and resumed at the
offset stored in that store — never at a broker-committed offset, which this code neither reads nor writes.

The rebalance callbacks run inside the consumer's ``consume``/``close``, which run in a worker thread
(``trio.to_thread``); they hand each change to the trio thread with ``trio.from_thread.run`` and block until it
is done. Meanwhile the trio loop is waiting for that very ``consume`` call, so no batch is ever being applied
while partitions move. A revocation returns only once the partition's engine has applied and processed
everything it admitted and closed its store (releasing the lock the next owner waits for): the new owner can
only start reading after that, at the offset the old one stored last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import trio

from scrip_actor.config import Config
from scrip_actor.engine import Engine, consumed_offset
from scrip_actor.partitioned._apply import PartitionApplier
from scrip_actor.partitioned._engine_reads import serving_reads
from scrip_actor.partitioned._engine_role import (
    _BATCH_RECORDS_MAX,
    _POLL_TIMEOUT_S,
    _claims_on,
    _topic_partitions,
    _with_store,
    claiming,
    log_name,
)
from scrip_actor.partitioned._kafka import GroupReader, GroupRecord, RecordProducer
from scrip_actor.partitioned._relay import relay_pending, relay_until_cancelled
from scrip_actor.partitioned._wallet_leases import wait_quiet

__all__ = ["GroupSettings", "run_group"]


class GroupSettings(msgspec.Struct, frozen=True):
    """How a member joins: the group, the assignment strategy and the session timeout (a dead member's partitions
    move after it; small in tests) and where to serve each owned partition's reads (None: nowhere)."""

    group: str
    strategy: str = "cooperative-sticky"
    session_timeout_ms: int = 6000
    lock_wait_s: float = 60.0
    idempotency_scope: str = "program"  # see run_partition; every engine of a topic must use the same
    read_host: str | None = None


@dataclass
class _Owned:
    """One assigned partition: its open engine (in its applier) and the offset to apply next."""

    applier: PartitionApplier
    next_offset: int
    release: trio.Event = field(default_factory=trio.Event)


class _Member:
    """The partitions this process owns right now, opened on assignment and closed on revocation."""

    def __init__(
        self,
        nursery: trio.Nursery,
        topic: str,
        config_for: Callable[[int], Config],
        settings: GroupSettings,
        relay: tuple[RecordProducer, int],
    ) -> None:
        self._nursery, self._topic, self._config_for, self._settings = nursery, topic, config_for, settings
        self._producer, self._partitions = relay  # the outbox relays' producer, and the topic's partition count
        self.owned: dict[int, _Owned] = {}
        self._closed: dict[int, trio.Event] = {}
        self.on_change: Callable[[str, int, int], None] = lambda _what, _partition, _offset: None

    async def _own(self, partition: int, *, task_status: trio.TaskStatus[_Owned] = trio.TASK_STATUS_IGNORED) -> None:
        closed = self._closed[partition] = trio.Event()

        async def body(engine: Engine) -> int:
            log = log_name(self._topic, partition)
            claims_on = _claims_on(self._settings.idempotency_scope)
            applier = PartitionApplier(engine, self._topic, partition, self._partitions, log, claims_on=claims_on)
            owned = _Owned(applier, consumed_offset(engine, log))
            async with trio.open_nursery() as relays:
                relays.start_soon(relay_until_cancelled, applier, self._producer)
                task_status.started(owned)
                await owned.release.wait()
                await wait_quiet(engine)  # every admitted event processed before the store is let go (held ones
                # excepted: their lease's answer is a later record, for the next owner, which processes them again)
                relays.cancel_scope.cancel()
            await relay_pending(applier, self._producer)  # whatever is left is the next owner's to relay
            return owned.next_offset

        try:
            # Shielded: a store is closed by its revocation only (run_group revokes all on the way out, cancelled
            # or not), so that what it admitted is processed first and the lock is released at a known point.
            with trio.CancelScope(shield=True):
                config = self._config_for(partition)
                reading = serving_reads(body, config, self._topic, partition, self._settings.read_host)
                prepare = claiming(config, self._topic, partition)
                shares = (partition, self._partitions)
                await _with_store(config, self._settings.lock_wait_s, reading, prepare, partition_of=shares)
        finally:
            closed.set()

    async def assign(self, partitions: list[int]) -> dict[int, int]:
        """Open each partition's engine (waiting for a previous owner's lock); returns where each resumes."""
        for partition in partitions:
            if partition not in self.owned:
                self.owned[partition] = await self._nursery.start(self._own, partition)
                self.on_change("ASSIGNED", partition, self.owned[partition].next_offset)
        return {partition: self.owned[partition].next_offset for partition in partitions}

    async def revoke(self, partitions: list[int]) -> None:
        """Stop applying each partition and close its engine; returns once its store lock is released."""
        for partition in partitions:
            owned = self.owned.pop(partition, None)
            if owned is not None:
                owned.release.set()
                await self._closed[partition].wait()
                self.on_change("REVOKED", partition, owned.next_offset)

    async def apply(self, reader: GroupReader, batch: list[GroupRecord]) -> None:
        """Admit a batch partition by partition, in offset order; a record of a partition no longer owned, or
        below the stored offset (fetched before a seek), is dropped: its owner reads it itself."""
        by_partition: dict[int, list[GroupRecord]] = {}
        for record in batch:
            by_partition.setdefault(record[0], []).append(record)
        for partition, records in by_partition.items():
            owned = self.owned.get(partition)
            if owned is None:
                continue
            fresh = [record[1:] for record in records if record[1] >= owned.next_offset]
            if not fresh:
                continue
            retry_at = await owned.applier.apply(fresh)
            if retry_at is None:
                owned.next_offset = fresh[-1][0] + 1
            else:
                owned.next_offset = retry_at
                reader.seek(partition, owned.next_offset)
                await trio.sleep(0.05)
        for partition, owned in list(self.owned.items()):
            if partition not in by_partition:  # answers that arrived before, or an overload that held them back
                await owned.applier.release_and_flush()

    def reached(self, until_offsets: list[int] | None) -> bool:
        """Whether this member owns every partition and has applied each below ``until_offsets[n]``."""
        if until_offsets is None:
            return False
        owned = self.owned
        return all(n in owned and owned[n].next_offset >= end for n, end in enumerate(until_offsets))


async def run_group(
    config_for: Callable[[int], Config],
    bootstrap: str,
    topic: str,
    settings: GroupSettings,
    *,
    until_offsets: list[int] | None = None,
    on_change: Callable[[str, int, int], None] | None = None,
) -> None:
    """Be a member of ``settings.group`` on ``topic`` until cancelled, applying each assigned partition to its store.

    ``config_for(n)``: partition ``n``'s engine settings (its data directory). ``until_offsets`` (tests): return
    once this member owns partition ``n`` for every ``n`` and has applied every record below ``until_offsets[n]``.
    ``on_change(what, partition, offset)`` is told ``ASSIGNED`` (resuming at offset) and ``REVOKED`` (closed).
    """
    producer = RecordProducer(bootstrap)
    partitions = await _topic_partitions(producer, topic)
    async with trio.open_nursery() as nursery:
        member = _Member(nursery, topic, config_for, settings, (producer, partitions))
        if on_change is not None:
            member.on_change = on_change

        def assigned(partitions: list[int]) -> dict[int, int]:
            return trio.from_thread.run(member.assign, partitions)

        def revoked(partitions: list[int]) -> None:
            trio.from_thread.run(member.revoke, partitions)

        reader = await trio.to_thread.run_sync(
            lambda: GroupReader(
                bootstrap,
                topic,
                settings.group,
                assigned,
                revoked,
                strategy=settings.strategy,
                session_timeout_ms=settings.session_timeout_ms,
            )
        )
        try:
            while not member.reached(until_offsets):
                batch = await trio.to_thread.run_sync(reader.read, _BATCH_RECORDS_MAX, _POLL_TIMEOUT_S)
                await member.apply(reader, batch)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(reader.close)  # leaving the group revokes (closes) every partition
                await member.revoke(list(member.owned))  # anything the client did not revoke (already lost)
