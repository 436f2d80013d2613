"""The outbox relay of one owned partition: pending cross-partition effects produced to their destinations.

:class:`~scrip_actor.partitioned._apply.PartitionApplier` writes each effect for another partition into the
partition's outbox, in the LMDB record of the effects that caused it. The relay then, in a loop: reads what is
pending (in (origin offset, ordinal) order), produces each record to its destination partition of the same
topic (``scrip-kind: effect``, keyed ``effect/<origin>/<offset>/<ordinal>``, the idempotent acks=all producer),
waits for every delivery report, and only then deletes them from the outbox (:meth:`Outbox.relayed_ops`, one
more record).

A crash, a broker error or a revocation between the produce and the delete leaves them pending, and the next
relay (this owner's after a retry, or the next owner's, which reads the same store) produces them again: the
destination's applied markers pass the copies over. So every effect is applied at least once by construction and
at most once by the markers: exactly once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import msgspec
import trio

from scrip_actor.partitioned._apply import PartitionApplier
from scrip_actor.partitioned._kafka import RecordProducer
from scrip_actor.partitioned._outbox import Outbox, OutboxRecord
from scrip_actor.partitioned._routing import KIND_EFFECT

__all__ = ["relay_pending", "relay_until_cancelled"]

_RELAY_BATCH_MAX = 500
_IDLE_CHECK_S = 1.0  # also relays what a previous owner left pending, without a wake-up
_DELIVERY_WAIT_S = 30.0

_encoder = msgspec.msgpack.Encoder()


def _produce_all(producer: RecordProducer, topic: str, records: list[OutboxRecord]) -> tuple[list[int], list[str]]:
    """Produce ``records`` and wait for their reports (a worker thread): the indexes stored, and the errors."""
    stored: list[int] = []
    errors: list[str] = []

    def on_acked_for(index: int) -> Callable[[str | None, int, int], None]:
        def on_acked(error: str | None, _partition: int, _offset: int) -> None:
            if error is None:
                stored.append(index)
            else:
                errors.append(error)

        return on_acked

    for index, record in enumerate(records):
        key = f"effect/{record.origin_partition}/{record.origin_offset}/{record.ordinal}".encode()
        value = _encoder.encode(record)
        destination = record.destination_partition
        producer.produce(topic, key, value, on_acked_for(index), partition=destination, kind=KIND_EFFECT)
    if producer.flush(_DELIVERY_WAIT_S):
        errors.append(f"{len(records) - len(stored)} records unanswered after {_DELIVERY_WAIT_S} s")
    return stored, errors


async def relay_pending(applier: PartitionApplier, producer: RecordProducer) -> int:
    """Relay what is pending now, batch by batch; returns how many were relayed. A record the broker did not store
    stays pending (retried on the next run) without holding back the others: the destination's applied markers
    make the order of delivery irrelevant."""
    engine, relayed = applier.engine, 0
    while True:
        # What an earlier run marked relayed is committed before pending is read again: a run cancelled between
        # appending its marks and their commit (a revocation, an exit) would otherwise produce them twice.
        await engine._caught_up()
        with engine._store.env.begin() as txn:
            records = applier.outbox.pending(txn, _RELAY_BATCH_MAX)
        if not records:
            return relayed
        stored, errors = await trio.to_thread.run_sync(_produce_all, producer, applier.topic, records)
        if stored:
            engine._writer.append(Outbox.relayed_ops([records[index] for index in sorted(stored)]))
            await engine._caught_up()
            relayed += len(stored)
        if errors:
            print(f"scrip: relay of partition {applier.partition}: {errors[0]} (retrying)", file=sys.stderr)
            return relayed


async def relay_until_cancelled(applier: PartitionApplier, producer: RecordProducer) -> None:
    """Relay whenever the applier appends to the outbox, and every ``_IDLE_CHECK_S`` anyway (a broker error is
    retried then, and what a previous owner left pending is picked up)."""
    while True:
        with trio.move_on_after(_IDLE_CHECK_S):
            await applier.wake.wait()
        applier.wake = trio.Event()
        await relay_pending(applier, producer)
