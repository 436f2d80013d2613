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


def _produce_all(producer: RecordProducer, topic: str, records: list[OutboxRecord]) -> list[str]:
    """Produce ``records`` and wait for their reports (a worker thread); the errors, empty when all were stored."""
    errors: list[str] = []
    answered = [0]

    def on_acked(error: str | None, _partition: int, _offset: int) -> None:
        answered[0] += 1
        if error is not None:
            errors.append(error)

    for record in records:
        key = f"effect/{record.origin_partition}/{record.origin_offset}/{record.ordinal}".encode()
        value = _encoder.encode(record)
        producer.produce(topic, key, value, on_acked, partition=record.destination_partition, kind=KIND_EFFECT)
    unanswered = producer.flush(_DELIVERY_WAIT_S)
    if unanswered or answered[0] < len(records):
        errors.append(f"{len(records) - answered[0]} records unanswered after {_DELIVERY_WAIT_S} s")
    return errors


async def relay_pending(applier: PartitionApplier, producer: RecordProducer) -> int:
    """Relay what is pending now, batch by batch; returns how many were relayed (stops at the first broker error)."""
    engine, relayed = applier.engine, 0
    while True:
        with engine._store.env.begin() as txn:
            records = applier.outbox.pending(txn, _RELAY_BATCH_MAX)
        if not records:
            return relayed
        errors = await trio.to_thread.run_sync(_produce_all, producer, applier.topic, records)
        if errors:
            print(f"scrip: relay of partition {applier.partition}: {errors[0]} (retrying)", file=sys.stderr)
            return relayed
        engine._writer.append(Outbox.relayed_ops(records))
        await engine._caught_up()
        relayed += len(records)


async def relay_until_cancelled(applier: PartitionApplier, producer: RecordProducer) -> None:
    """Relay whenever the applier appends to the outbox, and every ``_IDLE_CHECK_S`` anyway (a broker error is
    retried then, and what a previous owner left pending is picked up)."""
    while True:
        with trio.move_on_after(_IDLE_CHECK_S):
            await applier.wake.wait()
        applier.wake = trio.Event()
        await relay_pending(applier, producer)
