"""Applying one partition's records in offset order: events, transfers, and effects from other partitions.

A record's kind is its ``scrip-kind`` header (``_kafka.KIND_HEADER``; none: an event, as a stock producer writes):

* **event** — an ``EventSubmit`` as JSON. Consecutive events are admitted together with
  :func:`~scrip_actor.engine.admit_consumed` (each one's offset in its own admission record) and processed in
  the background, as on the embedded server.
* **transfer** — a ``TransferCreate`` as JSON, produced to the source's partition (the front's
  ``POST /v1/transfers``). Applied with :func:`~scrip_actor.engine.send_transfer`: its entry, the offset and one
  outbox record per recipient on another partition go in one LMDB record.
* **effect** — an :class:`~scrip_actor.partitioned._outbox.OutboxRecord` (msgpack) whose payload is a
  :class:`~scrip_actor.engine.TransitCredit`, produced by another partition's relay (:mod:`._relay`). Applied once
  with :func:`~scrip_actor.engine.receive_credit`: the outbox's applied marker for (origin partition, origin
  offset, ordinal) goes in the credit's own record, so a re-relayed copy at a later offset is passed over.

A transfer or an effect is applied alone and awaited until durable before the next record: the duplicate check of
an effect reads committed markers, and a later event's admission record must not commit before the transfer's
(it would carry a later offset). Their cost is one commit each, on their partition only; events stay batched.

Each record's result is a :class:`Applied` line for the caller to log; a refused transfer or credit is also kept as
the record's outcome (``meta`` key ``log_outcome:<topic>/<n>/<offset>``) so the client holding the front's 202
(which names the offset) can learn what became of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import trio

from scrip_actor.engine import (
    Engine,
    TransitCredit,
    admit_consumed,
    offset_op,
    receive_credit,
    send_transfer,
)
from scrip_actor.errors import Overloaded, ScripError, ValidationFailed
from scrip_actor.http.errors import decode_json
from scrip_actor.model import EventSubmit, TransferCreate
from scrip_actor.partitioned._kafka import LogRecord
from scrip_actor.partitioned._outbox import Outbox, OutboxRecord
from scrip_actor.partitioned._routing import KIND_EFFECT, KIND_TRANSFER, partition_for
from scrip_actor.store import Op, be64

__all__ = ["PartitionApplier", "log_outcome"]

Decoded = EventSubmit | TransferCreate | OutboxRecord | ScripError

_event_decoder = msgspec.json.Decoder(EventSubmit)
_transfer_decoder = msgspec.json.Decoder(TransferCreate)
_effect_decoder = msgspec.msgpack.Decoder(OutboxRecord)
_credit_decoder = msgspec.msgpack.Decoder(TransitCredit)
_credit_encoder = msgspec.msgpack.Encoder()
_outcome_encoder = msgspec.json.Encoder()


def _decoded(record: LogRecord) -> tuple[int, Decoded]:
    """The record's command, or why it is not one (a bad record must not stop its partition)."""
    offset, _key, value, kind = record
    if value is None:  # a tombstone: nothing to apply
        return offset, ValidationFailed(f"record at offset {offset} has no value", {"offset": offset})
    try:
        if kind is None or kind == "event":
            return offset, decode_json(_event_decoder, value)
        if kind == KIND_TRANSFER:
            return offset, decode_json(_transfer_decoder, value)
        if kind == KIND_EFFECT:
            return offset, _effect_decoder.decode(value)
    except (ValidationFailed, msgspec.DecodeError) as error:
        message = error.message if isinstance(error, ValidationFailed) else str(error)
        return offset, ValidationFailed(f"record at offset {offset} is not a {kind or 'event'}: {message}", {})
    return offset, ValidationFailed(f"record at offset {offset} has an unknown kind {kind!r}", {"kind": kind})


def _outcome_key(log: str, offset: int) -> bytes:
    return b"log_outcome:" + log.encode() + b"/" + be64(offset)


def log_outcome(engine: Engine, log: str, offset: int) -> dict[str, object] | None:
    """What became of the transfer or effect at ``offset`` if it was refused (None: applied, or not such a record)."""
    raw = engine._store.get_raw("meta", _outcome_key(log, offset))
    return None if raw is None else msgspec.json.decode(raw)


@dataclass
class PartitionApplier:
    """One owned partition's engine and what applying its records needs (the relay shares ``wake``)."""

    engine: Engine
    topic: str
    partition: int
    partitions: int  # the topic's partition count: part of the routing rule
    log: str
    wake: trio.Event = field(default_factory=trio.Event)  # set when a record appended to the outbox

    def __post_init__(self) -> None:
        self.engine._store.open_side_database("outbox")
        self.outbox = Outbox(self.engine._store.env)

    def partition_of(self, external_id: str) -> int:
        return partition_for(external_id, self.partitions)

    async def apply(self, batch: list[LogRecord]) -> int | None:
        """Apply ``batch`` in order; None when all of it is applied, else the offset to read again (overload)."""
        records = [_decoded(record) for record in batch]
        start = 0
        for index, (offset, command) in enumerate([*records, (-1, None)]):
            if isinstance(command, EventSubmit | ScripError):
                continue  # events (and refusals) are admitted together
            if index > start:
                results = await admit_consumed(self.engine, self.log, records[start:index])  # type: ignore[arg-type]
                if results and isinstance(results[-1], Overloaded):
                    return records[start + len(results) - 1][0]
            if command is None:
                break
            try:
                await self._apply_one(offset, command)
            except Overloaded:
                return offset
            start = index + 1
        return None

    async def _apply_one(self, offset: int, command: TransferCreate | OutboxRecord) -> None:
        engine, position = self.engine, offset_op(self.log, offset + 1)

        def ops_for(credits: list[tuple[int, TransitCredit]], extra: list[Op] | None = None) -> list[Op]:
            ops = [position, *(extra or [])]
            for ordinal, (destination, credit) in enumerate(credits):
                record = OutboxRecord(
                    origin_partition=self.partition,
                    origin_offset=offset,
                    ordinal=ordinal,
                    destination_partition=destination,
                    payload=_credit_encoder.encode(credit),
                )
                ops.append(Outbox.append_op(record))
            if credits:
                self.wake.set()
            return ops

        try:
            if isinstance(command, TransferCreate):
                await send_transfer(
                    engine, command, partition=self.partition, partition_of=self.partition_of, ops_for=ops_for
                )
                return
            applied = self._applied_op(command)
            if applied is None:  # a re-relayed copy of an effect already applied
                engine._writer.append([position])
                await engine._caught_up()
                return
            credit = _credit_decoder.decode(command.payload)
            outcome = await receive_credit(
                engine, credit, partition=self.partition, ops_for=lambda back: ops_for(back, [applied])
            )
            if isinstance(outcome, ScripError):  # sent back (durable already); keep why
                engine._writer.append([self._outcome_op(offset, outcome)])
                await engine._caught_up()
        except Overloaded:
            raise
        except ScripError as error:  # refused: only the position moves, and the refusal is kept
            engine._writer.append([position, self._outcome_op(offset, error)])
            await engine._caught_up()

    def _applied_op(self, record: OutboxRecord) -> Op | None:
        if record.destination_partition != self.partition:
            raise ValidationFailed(
                f"an effect for partition {record.destination_partition} reached partition {self.partition}", {}
            )
        with self.engine._store.env.begin() as txn:
            return self.outbox.applied_op(txn, record)

    def _outcome_op(self, offset: int, error: ScripError) -> Op:
        body = {"code": error.code, "message": error.message, "details": error.details}
        return ("meta", _outcome_key(self.log, offset), _outcome_encoder.encode(body))
