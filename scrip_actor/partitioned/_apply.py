"""Applying one partition's records in offset order: events, transfers, and effects from other partitions.

A record's kind is its ``scrip-kind`` header (``_kafka.KIND_HEADER``; none: an event, as a stock producer writes):

* **event** — an ``EventSubmit`` as JSON. Consecutive events are admitted together with
  :func:`~scrip_actor.engine.admit_consumed` (each one's offset in its own admission record) and processed in
  the background, as on the embedded server. With idempotency claims on (the default, :mod:`._claiming`), an
  event whose key another partition owns is parked until that partition has claimed the key for it.
* **transfer** — a ``TransferCreate`` as JSON, produced to the source's partition (the front's
  ``POST /v1/transfers``). Applied with :func:`~scrip_actor.engine.send_transfer`: its entry, the offset and one
  outbox record per recipient on another partition go in one LMDB record.
* **effect** — an :class:`~scrip_actor.partitioned._outbox.OutboxRecord` (msgpack) from another partition's relay
  (:mod:`._relay`); its payload is a :class:`~scrip_actor.engine.TransitCredit` (applied with
  :func:`~scrip_actor.engine.receive_credit`), a :class:`~._claims.ClaimRequest` or a :class:`~._claims.ClaimAnswer`.
  The outbox's applied marker for (origin partition, origin offset, ordinal) goes in the effect's own record, so a
  re-relayed copy at a later offset is passed over.

A transfer or an effect is applied alone and awaited until durable before the next record: the duplicate check of
an effect reads committed markers, and a later event's admission record must not commit before the transfer's
(it would carry a later offset). Their cost is one commit each, on their partition only; events stay batched.
A refused transfer, credit or event is kept as its record's outcome (:mod:`._outcomes`).
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
from scrip_actor.partitioned._claiming import KeyClaims
from scrip_actor.partitioned._claims import ClaimAnswer, ClaimRequest
from scrip_actor.partitioned._kafka import LogRecord
from scrip_actor.partitioned._outbox import Outbox, OutboxRecord
from scrip_actor.partitioned._outcomes import log_outcome, outcome_op
from scrip_actor.partitioned._routing import KIND_EFFECT, KIND_TRANSFER, partition_for
from scrip_actor.store import Op
from scrip_actor.values import external_id as canonical_external_id

__all__ = ["PartitionApplier", "log_outcome"]

Decoded = EventSubmit | TransferCreate | OutboxRecord | ScripError

_event_decoder = msgspec.json.Decoder(EventSubmit)
_transfer_decoder = msgspec.json.Decoder(TransferCreate)
_effect_decoder = msgspec.msgpack.Decoder(OutboxRecord)
_payload_decoder = msgspec.msgpack.Decoder(TransitCredit | ClaimRequest | ClaimAnswer)
_payload_encoder = msgspec.msgpack.Encoder()
_EXTERNAL_ID_MAX = 255


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


@dataclass
class PartitionApplier:
    """One owned partition's engine and what applying its records needs (the relay shares ``wake``)."""

    engine: Engine
    topic: str
    partition: int
    partitions: int  # the topic's partition count: part of the routing rule
    log: str
    wake: trio.Event = field(default_factory=trio.Event)  # set when a record appended to the outbox
    claims_on: bool = True  # idempotency keys claimed across partitions (--idempotency-scope program)

    def __post_init__(self) -> None:
        self.engine._store.open_side_database("outbox")
        self.outbox = Outbox(self.engine._store.env)
        self.claims: KeyClaims | None = None
        if self.claims_on:
            self.claims = KeyClaims(
                self.engine, self.log, self.partition, self.partitions, self.send_ops, self._transfer
            )

    def partition_of(self, external_id: str) -> int:
        return partition_for(external_id, self.partitions)

    def send_ops(self, offset: int, payloads: list[tuple[int, msgspec.Struct]]) -> list[Op]:
        """The outbox ops for effects on other partitions caused by the record at ``offset`` (the relay wakes)."""
        ops = []
        for ordinal, (destination, payload) in enumerate(payloads):
            record = OutboxRecord(
                origin_partition=self.partition,
                origin_offset=offset,
                ordinal=ordinal,
                destination_partition=destination,
                payload=_payload_encoder.encode(payload),
            )
            ops.append(Outbox.append_op(record))
        if payloads:
            self.wake.set()
        return ops

    async def apply(self, batch: list[LogRecord]) -> int | None:
        """Apply ``batch`` in order; None when all of it is applied, else the offset to read again (overload)."""
        records = [_decoded(record) for record in batch]
        decide = None if self.claims is None else self.claims.decide
        start = 0
        for index, (offset, command) in enumerate([*records, (-1, None)]):
            if isinstance(command, EventSubmit | ScripError):
                continue  # events (and refusals) are admitted together
            if index > start:
                run = records[start:index]
                results = await admit_consumed(self.engine, self.log, run, decide)  # type: ignore[arg-type]
                if results and isinstance(results[-1], Overloaded):
                    return records[start + len(results) - 1][0]
            if command is None:
                break
            try:
                await self._apply_one(offset, command)
            except Overloaded:
                return offset
            start = index + 1
        await self.release_parked()
        return None

    async def release_parked(self) -> None:
        """Admit or refuse the parked events that can be judged now (called after each batch and each poll)."""
        if self.claims is not None:
            await self.claims.release_ready()

    async def _apply_one(self, offset: int, command: TransferCreate | OutboxRecord) -> None:
        position = offset_op(self.log, offset + 1)
        if isinstance(command, TransferCreate):
            parked = self._parked_transfer(offset, command)
            if parked is not None:  # behind its source's waiting events
                self.engine._writer.append([position, *parked])
                await self.engine._caught_up()
                return
            await self._transfer(offset, command, [position])
            return
        try:
            await self._apply_effect(offset, command, position)
        except Overloaded:
            raise
        except ScripError as error:  # refused: only the position moves, and the refusal is kept
            self.engine._writer.append([position, outcome_op(self.log, offset, error)])
            await self.engine._caught_up()

    def _parked_transfer(self, offset: int, request: TransferCreate) -> list[Op] | None:
        if self.claims is None or request.source_external_id is None:
            return None
        try:
            source = canonical_external_id(request.source_external_id, _EXTERNAL_ID_MAX, "source_external_id")
        except ScripError:
            return None  # send_transfer refuses it, with the same error
        return self.claims.park_transfer(offset, source, request)

    async def _transfer(self, offset: int, request: TransferCreate, first_ops: list[Op]) -> None:
        """Apply a transfer; ``first_ops`` (its position, or its release from parking) join its record."""
        engine = self.engine

        def transfer_ops(credits: list[tuple[int, TransitCredit]]) -> list[Op]:
            return [*first_ops, *self.send_ops(offset, credits)]  # type: ignore[arg-type]

        # The records before it are processed first: its source (and a local recipient) may be made by the event
        # just before it, and its debit must see every earlier credit — the log's order, on replay too.
        await engine.wait_idle()
        try:
            await send_transfer(
                engine, request, partition=self.partition, partition_of=self.partition_of, ops_for=transfer_ops
            )
        except Overloaded:
            raise
        except ScripError as error:  # refused: nothing moves, and the refusal is kept
            engine._writer.append([*first_ops, outcome_op(self.log, offset, error)])
            await engine._caught_up()

    async def _apply_effect(self, offset: int, record: OutboxRecord, position: Op) -> None:
        """Apply an effect from another partition once (a copy already applied only moves the position)."""
        engine = self.engine
        applied = self._applied_op(record)
        payload = None if applied is None else _payload_decoder.decode(record.payload)
        if isinstance(payload, TransitCredit):

            def credit_ops(back: list[tuple[int, TransitCredit]]) -> list[Op]:
                return [position, applied, *self.send_ops(offset, back)]  # type: ignore[list-item, arg-type]

            await engine.wait_idle()  # as for a transfer: the recipient may be made by the event just before it
            outcome = await receive_credit(engine, payload, partition=self.partition, ops_for=credit_ops)
            if isinstance(outcome, ScripError):  # sent back (durable already); keep why
                engine._writer.append([outcome_op(self.log, offset, outcome)])
                await engine._caught_up()
            return
        ops = [position] if applied is None else [position, applied]
        if isinstance(payload, ClaimRequest | ClaimAnswer):
            if self.claims is None:
                raise ValidationFailed("a claim reached a partition whose idempotency scope is participant", {})
            ops += self.claims.on_request(offset, payload) if isinstance(payload, ClaimRequest) else []
            ops += self.claims.on_answer(payload) if isinstance(payload, ClaimAnswer) else []
        engine._writer.append(ops)
        await engine._caught_up()
        if isinstance(payload, ClaimAnswer):
            await self.release_parked()

    def _applied_op(self, record: OutboxRecord) -> Op | None:
        if record.destination_partition != self.partition:
            raise ValidationFailed(
                f"an effect for partition {record.destination_partition} reached partition {self.partition}", {}
            )
        with self.engine._store.env.begin() as txn:
            return self.outbox.applied_op(txn, record)
