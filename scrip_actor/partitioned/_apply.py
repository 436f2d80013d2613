"""Applying one partition's records in offset order: events, transfers, and effects from other partitions.

A record's kind is its ``scrip-kind`` header (``_kafka.KIND_HEADER``; none: an event, as a stock producer writes):

* **event** — an ``EventSubmit`` as JSON. Consecutive events are admitted together with
  :func:`~scrip_actor.engine.admit_consumed` (each one's offset in its own admission record) and processed in
  the background, as on the embedded server. With idempotency claims on (the default, :mod:`._claiming`), an
  event whose key another partition owns is parked until that partition has claimed the key for it.
* **transfer** — a ``TransferCreate`` as JSON, produced to the source's partition (the front's
  ``POST /v1/transfers``). Applied with :func:`~scrip_actor.engine.send_transfer`: its entry, the offset and one
  outbox record per recipient on another partition go in one LMDB record.
* **operation** — a :class:`~._operation_records.ParticipantOperation` (the front's ``POST …/balances/{operation}``),
  at the partition its ``participant_id`` names. Applied like a transfer (after every earlier record is processed;
  parked behind its participant's waiting events, or until its idempotency key is claimed) with
  :func:`~scrip_actor.engine.run_operation`: its entry, the offset and its answer, kept under its position, in one
  LMDB record.
* **effect** — an :class:`~scrip_actor.partitioned._outbox.OutboxRecord` (msgpack) from another partition's relay
  (:mod:`._relay`); its payload is a :class:`~scrip_actor.engine.TransitCredit` (applied with
  :func:`~scrip_actor.engine.receive_credit`), a :class:`~._claims.ClaimRequest` or a :class:`~._claims.ClaimAnswer`.
  The outbox's applied marker for (origin partition, origin offset, ordinal) goes in the effect's own record, so a
  re-relayed copy at a later offset is passed over.

Events, refusals and claim requests (ops in this partition's own store, judged against what the batch has written
so far) are handed to ``admit_consumed`` together. A transfer, a credit and a claim answer are applied alone and
awaited until durable before the next record: a transfer or a credit runs in a participant's mailbox after every
earlier record is processed, and a claim answer releases the parked events it unblocks *before* the next record
is looked at. So what a partition does depends on its log alone, never on where a batch happened to end: a replay
from offset 0 reproduces the store. For the same reason, parked events that cannot be released (the admission is
overloaded) hold the partition: nothing after them is applied until they are. A refused transfer, credit or event
is kept as its record's outcome (:mod:`._outcomes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import lmdb
import msgspec
import trio

from scrip_actor.engine import (
    Engine,
    TransitCredit,
    Verdict,
    admit_consumed,
    consumed_offset,
    offset_op,
    receive_credit,
    redemption_owner,
    reward_credit,
    run_operation,
    run_redemption,
    run_reversal,
    send_transfer,
)
from scrip_actor.errors import NotFound, Overloaded, ScripError, ValidationFailed
from scrip_actor.http.errors import decode_json
from scrip_actor.ledger import RemoteCredit
from scrip_actor.model import Event, EventSubmit, TransferCreate
from scrip_actor.partitioned._budget_leases import SharedBudgets
from scrip_actor.partitioned._budget_messages import BudgetAnswer, BudgetAsk, BudgetRecall, BudgetReturn
from scrip_actor.partitioned._claiming import KeyClaims
from scrip_actor.partitioned._claims import ClaimAnswer, ClaimRequest
from scrip_actor.partitioned._effects import Effect, Payload, effect_from, encode_payload
from scrip_actor.partitioned._kafka import LogRecord
from scrip_actor.partitioned._operation_records import REVERSAL, UPSERT, ParticipantOperation
from scrip_actor.partitioned._outbox import Outbox, OutboxRecord
from scrip_actor.partitioned._outcomes import log_outcome, outcome_op, reply_op, result_op
from scrip_actor.partitioned._parking import Parked, parked_db
from scrip_actor.partitioned._reward_stock import SharedStock, StockAnswer, StockAsk, StockReturn
from scrip_actor.partitioned._routing import KIND_EFFECT, KIND_FUND, KIND_OPERATION, KIND_TRANSFER, partition_for
from scrip_actor.partitioned._state_writes import write_state
from scrip_actor.partitioned._wallet_leases import WalletLeases, refuse_copied_funding, wait_quiet
from scrip_actor.partitioned._wallet_messages import LeaseAnswer, LeaseAsk, LeaseRecall, LeaseReturn, WalletFund
from scrip_actor.partitioned._wallet_owner import WalletOwner
from scrip_actor.store import Op
from scrip_actor.values import external_id as canonical_external_id

__all__ = ["PartitionApplier", "log_outcome"]

Decoded = EventSubmit | TransferCreate | ParticipantOperation | WalletFund | Effect | ScripError

_event_decoder = msgspec.json.Decoder(EventSubmit)
_transfer_decoder = msgspec.json.Decoder(TransferCreate)
_credit_decoder = msgspec.json.Decoder(TransitCredit)
_fund_decoder = msgspec.json.Decoder(WalletFund)
_operation_decoder = msgspec.json.Decoder(ParticipantOperation)
_stock_answer_decoder = msgspec.json.Decoder(StockAnswer)
_json_encoder = msgspec.json.Encoder()
_EXTERNAL_ID_MAX = 255
# The outbox records an event's step sends (a rule's credit to another partition's participant) are keyed by the
# event's sequence above this base: apart from log offsets (below it) and wallet/budget asks (1 << 62 and up), and
# the same on a replay, which admits the same events in the same order (the destination passes over a re-send).
_EVENT_ORIGIN_BASE = 1 << 61


def _decoded(record: LogRecord, partition: int, partitions: int) -> tuple[int, Decoded]:
    """The record's command, or why it is not one (a bad record must not stop its partition)."""
    offset, _key, value, kind = record
    if value is None:  # a tombstone: nothing to apply
        return offset, ValidationFailed(f"record at offset {offset} has no value", {"offset": offset})
    if kind == KIND_EFFECT:
        return offset, effect_from(value, offset, partition, partitions)
    try:
        if kind is None or kind == "event":
            return offset, decode_json(_event_decoder, value)
        if kind == KIND_TRANSFER:
            return offset, decode_json(_transfer_decoder, value)
        if kind == KIND_FUND:
            return offset, decode_json(_fund_decoder, value)
        if kind == KIND_OPERATION:
            return offset, decode_json(_operation_decoder, value)
    except ValidationFailed as error:
        return offset, ValidationFailed(f"record at offset {offset} is not a {kind or 'event'}: {error.message}", {})
    return offset, ValidationFailed(f"record at offset {offset} has an unknown kind {kind!r}", {"kind": kind})


@dataclass
class PartitionApplier:
    """One owned partition's engine and what applying its records needs (the relay shares ``wake``)."""

    engine: Engine
    topic: str
    partition: int
    partitions: int  # the topic's partition count: part of the routing rule
    log: str
    wake: trio.Event = field(default_factory=trio.Event)  # set once a record that appended to the outbox is durable
    claims_on: bool = True  # idempotency keys claimed across partitions (--idempotency-scope program)

    def __post_init__(self) -> None:
        store = self.engine._store
        store.open_side_database("outbox")
        self.outbox = Outbox(store.env)
        self._recent_markers: set[bytes] = set()  # applied markers appended, perhaps not durable yet
        self._relay_due = False  # outbox records appended since the last durable point
        self.claims: KeyClaims | None = None
        if self.claims_on:
            self.claims = KeyClaims(
                self.engine, self.log, self.partition, self.partitions, self.send_ops, self._released
            )
        elif _has_parked(store.env):
            raise ValueError(
                "this partition has events parked for their idempotency claims: run it with "
                "--idempotency-scope program until they are released"
            )
        if consumed_offset(self.engine, self.log) == 0:  # a fresh copy of the template store
            refuse_copied_funding(self.engine, self.partition, self.partitions)
        # Shared PREFUNDED wallets (_wallet_leases.py): a credit short of this partition's lease waits for more.
        self.leases = WalletLeases(
            self.engine, self.partition, self.partitions, self.send_ops, self.wake.set, holds=self.claims_on
        )
        self.wallets = WalletOwner(self.engine, self.partition, self.partitions, self.send_ops, self.leases)
        # Shared rule budgets (_budget_leases.py): a match short of this partition's lease waits for more, likewise.
        self.budgets = SharedBudgets(self.engine, self.partition, self.partitions, self.send_ops, self.leases)
        # Limited catalog rewards (_reward_stock.py): units reserved at the reward's owner before a redemption runs.
        self.stock = SharedStock(self.engine, self.partition, self.partitions, self.send_ops)
        if self.claims is not None:  # a held participant's transfers and credits park behind it
            self.claims.held = self.leases.is_held
            self.claims.refund_ops = lambda parked: self.stock.refund_ops(parked.offset, _stock_answer(parked))
        # A rule's target on another partition gets its CREDIT through the outbox (engine/_cross_partition.py).
        self.engine._step_limits = msgspec.structs.replace(self.engine._step_limits, remote_partition=self._elsewhere)
        self.engine._publisher.remote_credit_ops = self._reward_ops

    def partition_of(self, external_id: str) -> int:
        return partition_for(external_id, self.partitions)

    def _elsewhere(self, external_id: str) -> int | None:
        home = partition_for(external_id, self.partitions)
        return None if home == self.partition else home

    def _reward_ops(self, event: Event, credits: list[RemoteCredit]) -> tuple[list[Op], Callable[[], None]]:
        """The outbox ops of an event's credits to other partitions, for its outcome's record, and the relay's
        wake-up once that record is durable (events are processed in the background, after apply returned)."""
        assert event.sequence < _EVENT_ORIGIN_BASE
        payloads = [(credit.target.partition, reward_credit(credit, self.partition, event.id)) for credit in credits]
        return self.send_ops(_EVENT_ORIGIN_BASE | event.sequence, payloads), self.wake.set

    def send_ops(self, offset: int, payloads: list[tuple[int, Payload]], first_ordinal: int = 0) -> list[Op]:
        """The outbox ops for effects on other partitions caused by the record at ``offset`` (the relay is woken
        once they are durable). ``first_ordinal``: a record that sends twice (a parked transfer's claim request,
        then its credits) keeps its sends apart, since (origin, offset, ordinal) is what the destination dedupes."""
        ops = []
        for ordinal, (destination, payload) in enumerate(payloads, start=first_ordinal):
            record = OutboxRecord(
                origin_partition=self.partition,
                origin_offset=offset,
                ordinal=ordinal,
                destination_partition=destination,
                payload=encode_payload(payload),
            )
            ops.append(Outbox.append_op(record))
        self._relay_due = self._relay_due or bool(payloads)
        return ops

    def _durable(self) -> None:
        """Everything this applier appended so far is durable (called right after each durable point)."""
        self._recent_markers.clear()
        if self.claims is not None:
            self.claims.forget_recent()
        if self._relay_due:  # only now: the relay reads committed state
            self._relay_due = False
            self.wake.set()

    async def apply(self, batch: list[LogRecord]) -> int | None:
        """Apply ``batch`` in order; None when all of it is applied, else the offset to read again (overload)."""
        records = [_decoded(record, self.partition, self.partitions) for record in batch]
        if not await self.release_parked():
            return records[0][0]  # parked events that could not be released hold everything after them
        start = 0
        for index, (offset, command) in enumerate([*records, (-1, None)]):
            if isinstance(command, EventSubmit | ScripError) or self._inline(command):
                continue
            if index > start:
                admitted = None if self.claims is None else self.claims.confirm
                results = await admit_consumed(self.engine, self.log, records[start:index], self._decide, admitted)
                self._durable()
                if results and isinstance(results[-1], Overloaded):
                    self.leases.refuse_if_stuck()  # held credits fill the in-flight bound: they fail, it goes on
                    return records[start + len(results) - 1][0]
            if command is None:
                break
            try:
                await self._apply_one(offset, command)  # type: ignore[arg-type]
            except Overloaded:
                return offset
            if not await self.release_parked():
                return offset + 1
            start = index + 1
        released = await self.release_parked()
        await self.engine._caught_up()  # claim answers and releases are appended, not awaited one by one
        self._durable()
        return None if released else batch[-1][0] + 1

    def _inline(self, command: object) -> bool:
        """A claim request: only ops in this store, judged against what this batch wrote before it."""
        return isinstance(command, Effect) and self.claims is not None and isinstance(command.payload, ClaimRequest)

    def _decide(self, offset: int, command: EventSubmit | Effect) -> Verdict:
        """``admit_consumed``'s hook: an event's claim (or parking), or a claim request's ops."""
        if isinstance(command, EventSubmit):
            return ("admit", [], None) if self.claims is None else self.claims.decide(offset, command)
        assert self.claims is not None
        assert isinstance(command.payload, ClaimRequest), command
        applied = self._applied_op(command.record)
        if applied is None:  # a re-relayed copy
            return ("consume", [], None)
        return ("consume", [applied, *self.claims.on_request(offset, command.payload)], None)

    async def release_and_flush(self) -> None:
        """:meth:`release_parked` from an idle poll, then a durable point (the relay is woken for what it sent)."""
        await self.release_parked()
        await self.engine._caught_up()
        self._durable()

    async def release_parked(self) -> bool:
        """Admit or refuse the parked events that can be judged now; False if some could not be (overload).
        What it appends is durable at the caller's next durable point (:meth:`apply` ends with one)."""
        released = True if self.claims is None else await self.claims.release_ready()
        if not released:
            self.leases.refuse_if_stuck()  # as in apply: held credits must not hold the partition for good
        return released

    async def _apply_one(
        self, offset: int, command: TransferCreate | ParticipantOperation | WalletFund | Effect
    ) -> None:
        position = offset_op(self.log, offset + 1)
        if isinstance(command, WalletFund):
            try:
                await self.wallets.on_fund(offset, command, [position])
            except ScripError as error:  # refused: only the position moves, and the refusal is kept
                self.engine._writer.append([position, outcome_op(self.log, offset, error)])
                await self.engine._caught_up()
            return
        if isinstance(command, TransferCreate):
            await wait_quiet(self.engine)  # its verdict must see whether its participants are held
            verdict, ops, _ = self._transfer_verdict(offset, command)
            if verdict == "admit":  # ops: its key's claim, if it has one and this partition owns it
                await self._transfer(offset, command, [position], ops)
            else:  # parked (behind its source's events, or for its key's claim), or refused (its key was taken)
                self.engine._writer.append([position, *ops])
                await self.engine._caught_up()
            self._durable()
            return
        if isinstance(command, ParticipantOperation):
            await wait_quiet(self.engine)  # as for a transfer: its verdict must see whether the participant is held
            if command.operation == REVERSAL:
                resolved = self._reversal_of_a_redemption_here(command)
                if resolved is None:  # no such redemption here: the embedded 404, and only the position moves
                    error = NotFound("redemption", command.redemption_id or "")
                    self.engine._writer.append([position, outcome_op(self.log, offset, error)])
                    await self.engine._caught_up()
                    self._durable()
                    return
                command = resolved
            verdict, ops, _ = self._operation_verdict(offset, command)
            if verdict == "admit":
                await self._operate(offset, command, [position], ops)
            else:
                self.engine._writer.append([position, *ops])
                await self.engine._caught_up()
            self._durable()
            return
        try:
            await self._apply_effect(offset, command, position)
        except Overloaded:
            raise
        except ScripError as error:  # refused: only the position moves, and the refusal is kept
            self.engine._writer.append([position, outcome_op(self.log, offset, error)])
            await self.engine._caught_up()
            self._durable()

    def _transfer_verdict(self, offset: int, request: TransferCreate) -> Verdict:
        if self.claims is None or request.source_external_id is None:
            return ("admit", [], None)
        try:
            source = canonical_external_id(request.source_external_id, _EXTERNAL_ID_MAX, "source_external_id")
        except ScripError:
            return ("admit", [], None)  # send_transfer refuses it, with the same error
        return self.claims.transfer_verdict(offset, source, request)

    def _reversal_of_a_redemption_here(self, command: ParticipantOperation) -> ParticipantOperation | None:
        """A reversal's record with its redemption's participant and program filled in (found in this partition's
        store: the same on a replay), so it parks behind that participant's events and claims its key in that
        program; None if the redemption is not here."""
        assert command.redemption_id is not None
        owner = redemption_owner(self.engine, command.redemption_id)
        if owner is None:
            return None
        participant_id, program_id = owner
        return msgspec.structs.replace(command, participant_id=participant_id, program_id=program_id)

    def _operation_verdict(self, offset: int, command: ParticipantOperation) -> Verdict:
        if self.claims is None:
            return ("admit", [], None)
        if command.operation == UPSERT:  # behind the waiting events of its external id, which may create it
            assert command.state is not None
            assert command.state.create is not None
            try:
                external_id = canonical_external_id(command.state.create.external_id, _EXTERNAL_ID_MAX)
            except ScripError:
                return ("admit", [], None)  # the upsert refuses it, with the same error
            return self.claims.operation_verdict(offset, external_id, command)
        state = self.engine._cache.get(command.participant_id)
        if state is None:
            return ("admit", [], None)  # run_operation refuses an unknown participant itself (404)
        stock = None if command.item is None else self.stock.ask_for(offset, command.item)
        return self.claims.operation_verdict(offset, state.external_id, command, stock)

    async def _operate(
        self,
        offset: int,
        command: ParticipantOperation,
        first_ops: list[Op],
        claim_ops: list[Op] | None = None,
        parked: Parked | None = None,
    ) -> None:
        """Run a balance operation or a state write; ``first_ops`` (its position, or its release from parking) and
        its answer join its record, and ``claim_ops`` (its key's claim) too if it is applied; a refusal is kept
        instead. ``parked``: the record it waited as (a catalog redemption's reserved units are on it: they go
        back if it is refused, or is a replay of its key, which sells nothing)."""
        grant = None if parked is None else _stock_answer(parked)
        refund = self.stock.refund_ops(offset, grant)
        write = self._operation_write(offset, command, [*first_ops, *(claim_ops or [])], refund)
        self.stock.writing(offset, grant)  # what the write sends for a reward's units is keyed by this record
        try:
            await self._claimed_write(offset, first_ops, write, refund)
        finally:
            self.stock.written()

    def _operation_write(
        self, offset: int, command: ParticipantOperation, before: list[Op], refund: list[Op]
    ) -> Callable[[], Awaitable[object]]:
        """The embedded write an operation record runs, with ``before`` and its answer in its own LMDB record."""
        if command.is_balance:

            def record_ops(answer: object) -> list[Op]:
                return [*before, result_op(self.log, offset, answer)]

            return partial(
                run_operation,
                self.engine,
                command.operation,
                command.participant_id,
                command.request,
                record_ops=record_ops,
            )
        if command.reversal is not None:  # as a redemption: 201, or 200 for a replayed key
            assert command.redemption_id is not None
            assert command.reversal_id is not None
            return partial(
                run_reversal,
                self.engine,
                command.redemption_id,
                command.reversal,
                command.reversal_id,
                record_ops=lambda reversal: [*before, reply_op(self.log, offset, 201, reversal)],
                replay_ops=lambda reversal: [*before, reply_op(self.log, offset, 200, reversal)],
            )
        if command.redemption is not None or command.item is not None:  # the embedded 201, or 200 for a replay
            assert command.redemption_id is not None
            return partial(
                run_redemption,
                self.engine,
                command.participant_id,
                command.redemption or command.item,  # type: ignore[arg-type]
                command.redemption_id,
                record_ops=lambda redemption: [*before, reply_op(self.log, offset, 201, redemption)],
                replay_ops=lambda redemption: [*before, *refund, reply_op(self.log, offset, 200, redemption)],
            )
        # a state write: its answer is the embedded route's reply, status and all (_state_writes.py)
        return partial(write_state, self.engine, self.log, offset, command, before)

    async def _released(self, parked: Parked, first_ops: list[Op], claim_ops: list[Op]) -> None:
        """Apply a transfer, an operation or a credit that waited behind its participant's parked events."""
        if parked.kind == "transfer":
            await self._transfer(parked.offset, _transfer_decoder.decode(parked.event), first_ops, claim_ops)
        elif parked.kind == "operation":
            command = _operation_decoder.decode(parked.event)
            await self._operate(parked.offset, command, first_ops, claim_ops, parked)
        else:
            assert parked.kind == "credit", parked
            assert not claim_ops, parked
            await self._receive(parked.offset, _credit_decoder.decode(parked.event), first_ops)

    async def _receive(self, offset: int, credit: TransitCredit, first_ops: list[Op]) -> None:
        """Apply a credit from another partition; ``first_ops`` (position and applied marker, or the release from
        parking) join its record, or the record that sends it back."""
        engine = self.engine

        def credit_ops(back: list[tuple[int, TransitCredit]]) -> list[Op]:
            return [*first_ops, *self.send_ops(offset, back)]  # type: ignore[arg-type]

        await wait_quiet(engine)  # as for a transfer: the recipient may be made by the event just before it
        outcome = await receive_credit(engine, credit, partition=self.partition, ops_for=credit_ops)
        if isinstance(outcome, ScripError):  # sent back (durable already); keep why
            engine._writer.append([outcome_op(self.log, offset, outcome)])
            await engine._caught_up()

    async def _transfer(
        self, offset: int, request: TransferCreate, first_ops: list[Op], claim_ops: list[Op] | None = None
    ) -> None:
        """Apply a transfer; ``first_ops`` (its position, or its release from parking) join its record, and
        ``claim_ops`` (its key's claim) too if it is applied: a refused transfer uses up no key, as on one process."""

        def transfer_ops(credits: list[tuple[int, TransitCredit]]) -> list[Op]:
            return [*first_ops, *(claim_ops or []), *self.send_ops(offset, credits)]  # type: ignore[arg-type]

        # The records before it are processed first: its source (and a local recipient) may be made by the event
        # just before it, and its debit must see every earlier credit — the log's order, on replay too.
        await self._claimed_write(
            offset,
            first_ops,
            lambda: send_transfer(
                self.engine, request, partition=self.partition, partition_of=self.partition_of, ops_for=transfer_ops
            ),
        )

    async def _claimed_write(
        self,
        offset: int,
        first_ops: list[Op],
        write: Callable[[], Awaitable[object]],
        refused_ops: Sequence[Op] = (),
    ) -> None:
        """Run a transfer's or an operation's ``write`` once every earlier record is processed (the log's order, on
        replay too). Refused: nothing moved, its key's claim is dropped and the refusal is kept with ``first_ops``
        and ``refused_ops`` (units reserved for it going back); applied: the claim its record carried is
        confirmed."""
        engine, claims = self.engine, self.claims
        await wait_quiet(engine)
        try:
            await write()
        except Overloaded:
            raise
        except ScripError as error:
            if claims is not None:
                claims.drop(offset)
            engine._writer.append([*first_ops, *refused_ops, outcome_op(self.log, offset, error)])
            await engine._caught_up()
            return
        if claims is not None:
            claims.confirm(offset)

    async def _apply_effect(self, offset: int, effect: Effect, position: Op) -> None:
        """Apply an effect from another partition once (a copy already applied only moves the position)."""
        engine, payload = self.engine, effect.payload
        applied = self._applied_op(effect.record)
        if applied is None:
            engine._writer.append([position])  # a copy of an effect already applied
            await engine._caught_up()
            self._durable()
            return
        if isinstance(payload, LeaseAsk | LeaseAnswer | LeaseRecall | LeaseReturn):
            await self._apply_lease(offset, effect, [position, applied])
            return
        if isinstance(payload, BudgetAsk | BudgetAnswer | BudgetRecall | BudgetReturn):
            await self._apply_budget(offset, effect, [position, applied])
            return
        if isinstance(payload, StockAsk | StockAnswer | StockReturn):
            await self._apply_stock(offset, payload, [position, applied])
            return
        if isinstance(payload, TransitCredit):
            await wait_quiet(engine)  # whether its recipient is held (then it parks behind) needs the steps run
            parked = None
            if (
                self.claims is not None and payload.purpose != "REWARD_RETURN"
            ):  # behind its recipient's parked events, or its step held for a wallet (a
                # RETURN too: applying it would wait in the held participant's mailbox, and hold the partition)
                body = _json_encoder.encode(payload)
                parked = self.claims.park_behind(offset, payload.external_id, "credit", body)
            if parked is not None:
                engine._writer.append([position, applied, *parked])
                await engine._caught_up()
                return
            await self._receive(offset, payload, [position, applied])
            return
        if self.claims is None:
            raise ValidationFailed(f"a {type(payload).__name__} reached a partition that does not claim keys", {})
        assert isinstance(payload, ClaimAnswer), payload  # claim requests are applied inline
        # Appended, not awaited: its marker is in _recent_markers and the releases it causes come right after it,
        # in the writer's order; apply's next durable point covers them all (consecutive answers share a commit).
        engine._writer.append([position, applied, *self.claims.on_answer(payload)])

    async def _apply_lease(self, offset: int, effect: Effect, first_ops: list[Op]) -> None:
        """A shared wallet's message (_wallet_messages.py): the owner's side or this lease's."""
        payload, origin = effect.payload, effect.record.origin_partition
        if isinstance(payload, LeaseAsk):
            await self.wallets.on_ask(offset, origin, payload, first_ops)
        elif isinstance(payload, LeaseReturn):
            await self.wallets.on_return(offset, origin, payload, first_ops)
        elif isinstance(payload, LeaseAnswer):
            await self.leases.on_answer(offset, origin, payload, first_ops)
        else:
            assert isinstance(payload, LeaseRecall), payload
            await self.leases.on_recall(offset, origin, payload, first_ops)

    async def _apply_budget(self, offset: int, effect: Effect, first_ops: list[Op]) -> None:
        """A shared rule budget's message (_budget_messages.py): the owner's side or this lease's."""
        payload, origin = effect.payload, effect.record.origin_partition
        if isinstance(payload, BudgetAsk):
            await self.budgets.on_ask(offset, origin, payload, first_ops)
        elif isinstance(payload, BudgetReturn):
            await self.budgets.on_return(offset, origin, payload, first_ops)
        elif isinstance(payload, BudgetAnswer):
            await self.budgets.on_answer(offset, origin, payload, first_ops)
        else:
            assert isinstance(payload, BudgetRecall), payload
            await self.budgets.on_recall(offset, origin, payload, first_ops)

    async def _apply_stock(
        self, offset: int, payload: StockAsk | StockAnswer | StockReturn, first_ops: list[Op]
    ) -> None:
        """A reward stock's message (_reward_stock.py): the owner reserves or takes back units; an answer is recorded
        on the redemption parked for it, which the next release runs."""
        if isinstance(payload, StockAsk):
            ops = self.stock.on_ask(offset, payload)
        elif isinstance(payload, StockReturn):
            ops = self.stock.on_return(payload)
        elif self.claims is None:
            raise ValidationFailed("a stock answer reached a partition that parks nothing", {})
        else:
            answered = self.claims.parked.answer_stock(payload.parked_offset, _json_encoder.encode(payload))
            ops = [] if answered is None else [answered]
        self.engine._writer.append([*first_ops, *ops])
        await self.engine._caught_up()
        self._durable()

    def _applied_op(self, record: OutboxRecord) -> Op | None:
        with self.engine._store.env.begin() as txn:
            applied = self.outbox.applied_op(txn, record)
        if applied is None or applied[1] in self._recent_markers:
            return None
        self._recent_markers.add(applied[1])
        return applied


def _has_parked(env: lmdb.Environment) -> bool:
    """Whether the store has a ``parked`` database with anything in it."""
    db = parked_db(env)
    if db is None:
        return False
    with env.begin() as txn:
        return txn.stat(db)["entries"] > 0


def _stock_answer(parked: Parked) -> StockAnswer | None:
    """The reward stock's answer a parked catalog redemption waited for (None: it asked for none)."""
    return None if parked.stock is None else _stock_answer_decoder.decode(parked.stock)
