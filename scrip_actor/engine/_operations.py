"""Balance operations an operator runs (adjust, hold, release, forfeit, void-hold), synchronous and idempotent.

An operation is checked here (program, asset, amounts, what the asset's mode allows), then sent to the
participant's mailbox as an :class:`~scrip_actor.engine._messages.Operate` message, so it runs in turn with the
participant's events, never between two steps of one of them. Its step (:meth:`Operations.step`) settles the
participant's due lots, runs the pure operation of scrip_actor.balance_ops on one ledger transaction and publishes
the result through the same sink as events; the caller gets its answer only when that record is durable.

Idempotency (docs/money-out.md): with an ``idempotency_key`` the answer is stored in the same record as the
journal entry, under ``(program_id, key)`` in ``operation_keys``. The same key and the same request (operation,
participant and body) answer the stored result again; a different request is a 409 ``idempotency_conflict``; a
second call while the first is still running waits for it. A refused operation (422, 409 …) stores nothing, so
it may be retried with the same key once the balance allows it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import trio

from scrip_actor import balance_ops
from scrip_actor.amounts import format_minor, parse_decimal, to_minor
from scrip_actor.balance_ops import LotSelection
from scrip_actor.durations import utc
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._messages import Operate
from scrip_actor.engine._participant_cache import ParticipantCache
from scrip_actor.engine._publish import Publisher
from scrip_actor.engine._validation import new_id, positive_minor, validated
from scrip_actor.errors import Conflict, IdempotencyConflict, NotFound, ScripError, ValidationFailed
from scrip_actor.ledger import ActionFailed, LedgerTx, ParticipantState, World
from scrip_actor.model import (
    AdjustResult,
    Asset,
    Balance,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    JournalEntry,
    LotProcessed,
)
from scrip_actor.store import Op, Store

__all__ = ["Operations"]

_log = logging.getLogger("scrip_actor.engine")

# Which operations a participant that is not ACTIVE may still undergo (the hosted API: forfeit and void-hold).
_ALLOWED_WHEN_INACTIVE = frozenset({"FORFEIT", "VOID_HOLD"})
# More ops for an operation's own record, given its answer (Operations.submit).
RecordOps = Callable[[Any], list[Op]]


class _StoredOperation(msgspec.Struct, array_like=True):
    """An ``operation_keys`` record: what was asked (its hash) and what was answered."""

    operation: str
    request_hash: str
    result: msgspec.Raw


class _Reply:
    """The caller's side of an :class:`Operate` message: set once, by the step or by durability."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def succeed(self, result: Any) -> None:
        self.result = result
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class Operations:
    """Adjust, hold, release, forfeit and void-hold (see the module docstring).

    Args:
        catalog: programs and assets (NotFound otherwise).
        world: the ledger's shared state.
        cache: participant states.
        store: to read stored idempotency records.
        publisher: the one sink to the writer.
        deliver: puts a message in an actor's mailbox (by external id).
        clock: wall-clock source.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        world: World,
        cache: ParticipantCache,
        store: Store,
        publisher: Publisher,
        deliver: Callable[[str, Any], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._world = world
        self._cache = cache
        self._store = store
        self._publisher = publisher
        self._deliver = deliver
        self._clock = clock
        self._pending: dict[bytes, tuple[str, _Reply]] = {}  # idempotency key -> (request hash, reply) in flight

    # --- the operations ---------------------------------------------------------------------------------------

    async def adjust(
        self, participant_id: str, request: BalanceAdjust, record_ops: RecordOps | None = None
    ) -> AdjustResult:
        """CREDIT or DEBIT one bucket of a participant's balance (journal action type ADJUST); ``record_ops``:
        :meth:`submit`'s."""
        request = validated(request)
        asset = self._linked_asset(request.program_id, request.asset_id, require_active_program=True)
        amount_minor = positive_minor(request.amount, asset.scale, "amount")
        _check_transaction_cap(asset, amount_minor)
        if request.type == "CREDIT" and request.allow_negative:
            raise ValidationFailed.field("allow_negative", "invalid", "allow_negative applies to DEBIT only")

        def work(tx: LedgerTx, state: ParticipantState) -> None:
            _check_status(state, "ADJUST")
            balance_ops.adjust(
                tx,
                state,
                asset,
                program_id=request.program_id,
                kind=request.type,
                amount_minor=amount_minor,
                bucket=request.bucket,
                allow_negative=request.allow_negative,
                description=request.description,
            )

        def answer(_: None, entry: JournalEntry, state: ParticipantState) -> tuple[AdjustResult, list[Op]]:
            amount = format_minor(amount_minor, asset.scale)
            verb = "Credited" if request.type == "CREDIT" else "Debited"
            return AdjustResult(
                amount=amount,
                asset_id=asset.id,
                balance=_balance(state, asset),
                bucket=request.bucket,
                journal_entry_id=entry.id,
                message=f"{verb} {amount} {asset.symbol} ({request.bucket})",
                program_id=request.program_id,
                type=request.type,
            ), []

        result, _ = await self.submit(
            "ADJUST", participant_id, request, work, answer, AdjustResult, record_ops=record_ops
        )
        return result  # type: ignore[no-any-return]

    async def balance_operation(
        self, operation: str, participant_id: str, request: BalanceOperation, record_ops: RecordOps | None = None
    ) -> BalanceOperationResult:
        """HOLD, RELEASE, FORFEIT or VOID_HOLD (``…/balances/hold`` and its siblings); ``record_ops``:
        :meth:`submit`'s."""
        assert operation in ("HOLD", "RELEASE", "FORFEIT", "VOID_HOLD")
        request = validated(request)
        asset = self._linked_asset(
            request.program_id, request.asset_id, require_active_program=operation not in _ALLOWED_WHEN_INACTIVE
        )
        amount_minor, selection = _checked_operation(operation, request, asset)
        run = _operation_runner(operation, request, asset, amount_minor, selection)

        def work(tx: LedgerTx, state: ParticipantState) -> tuple[int, list[tuple[str, int]] | None]:
            _check_status(state, operation)
            return run(tx, state)

        def answer(
            done: tuple[int, list[tuple[str, int]] | None], entry: JournalEntry, state: ParticipantState
        ) -> tuple[BalanceOperationResult, list[Op]]:
            processed, taken = done
            amount = format_minor(processed, asset.scale)
            return BalanceOperationResult(
                amount_processed=amount,
                asset_id=asset.id,
                balance=_balance(state, asset),
                journal_entry_id=entry.id,
                lots_processed=None
                if taken is None
                else [LotProcessed(id=lot_id, amount=format_minor(value, asset.scale)) for lot_id, value in taken],
                message=f"Processed {amount} {asset.symbol}",
                operation=operation,  # type: ignore[arg-type]
                program_id=request.program_id,
                reference_id=entry.reference_id,
            ), []

        result, _ = await self.submit(
            operation, participant_id, request, work, answer, BalanceOperationResult, record_ops=record_ops
        )
        return result  # type: ignore[no-any-return]

    # --- the request side -------------------------------------------------------------------------------------

    def _linked_asset(self, program_id: str, asset_id: str, *, require_active_program: bool) -> Asset:
        program = self._catalog.program(program_id)
        asset = self._catalog.asset(asset_id)
        if program_id not in asset.program_ids:
            raise ValidationFailed.field("asset_id", "not_linked", f"asset {asset.symbol} is not linked to the program")
        if require_active_program and program.status != "ACTIVE":
            raise Conflict(f"program {program_id} is {program.status}")
        if asset.status != "ACTIVE" and require_active_program:
            raise Conflict(f"asset {asset.symbol} is {asset.status}")
        return asset

    async def submit(
        self,
        operation: str,
        participant_id: str,
        request: Any,
        work: Callable[[LedgerTx, ParticipantState], Any],
        answer: Callable[[Any, JournalEntry, ParticipantState], tuple[Any, list[Op]]],
        result_type: type,
        *,
        program_id: str | None = None,
        subject: str | None = None,
        record_ops: RecordOps | None = None,
        replay_ops: RecordOps | None = None,
    ) -> tuple[Any, bool]:
        """Deliver an operation to the participant's mailbox and wait for its durable answer: ``(answer,
        replayed)``, replayed True when an earlier call with the same idempotency key answered it.

        ``request`` is the body (a Struct with ``idempotency_key``; its ``program_id`` scopes the key unless
        ``program_id`` is given; ``subject`` names what the path addresses besides the participant, e.g. the
        redemption a reversal reverses, and is part of "the same request"). ``work(tx, state)`` runs in the
        step; ``answer(work's value, its entry, the state after)`` builds the answer and the extra store ops
        written in the same record (e.g. a redemption).

        ``record_ops(answer)`` (partitioned mode: the log offset the operation's record consumed, and what to keep
        under its position) gives more ops for the operation's own record; when the answer is a replay of an
        earlier call's, they are written in a record of their own, awaited until durable, before returning
        (``replay_ops(answer)`` instead, if given: an answer kept with the status of a replay).
        """
        state = self._cache.get(participant_id)
        if state is None:
            raise NotFound("participant", participant_id)
        program_id = program_id or request.program_id
        idempotency = None
        if request.idempotency_key is not None:
            key = _operation_key(program_id, request.idempotency_key)
            request_hash = _request_hash(operation, participant_id, request, subject)
            replayed = await self._replay(key, request_hash, request.idempotency_key, result_type)
            if replayed is not None:
                kept = replay_ops or record_ops
                if kept is not None:
                    await self._publisher.write(kept(replayed))
                return replayed, True
            idempotency = (key, request_hash, operation)
        reply = _Reply()
        if idempotency is not None:
            self._pending[idempotency[0]] = (idempotency[1], reply)
        try:
            operate = Operate(participant_id, program_id, work, answer, reply, idempotency, record_ops)
            self._deliver(state.external_id, operate)
            await reply.done.wait()
        finally:
            if idempotency is not None:
                self._pending.pop(idempotency[0], None)
        if reply.error is not None:
            raise reply.error
        return reply.result, False

    async def _replay(self, key: bytes, request_hash: str, idempotency_key: str, result_type: type) -> Any:
        """The stored (or in-flight) answer of an earlier call with this key; None if there was none."""
        pending = self._pending.get(key)
        if pending is not None:
            if pending[0] != request_hash:
                raise _conflict(idempotency_key)
            await pending[1].done.wait()
            if pending[1].error is None:
                return pending[1].result
            return None  # the first call was refused (nothing stored): this one runs again
        raw = self._store.get_raw("operation_keys", key)
        if raw is None:
            return None
        stored = msgspec.json.decode(raw, type=_StoredOperation)
        if stored.request_hash != request_hash:
            raise _conflict(idempotency_key)
        return msgspec.json.decode(stored.result, type=result_type)

    # --- the step (inside the participant's mailbox) ----------------------------------------------------------

    def step(self, message: Operate) -> None:
        """Run ``message``'s operation; synchronous, like an event's step."""
        state = self._cache.get(message.participant_id)
        assert state is not None, "participants are never deleted"
        now = self._clock()
        tx = LedgerTx(self._world, now=now, id_seed=f"operation/{new_id()}", program_id=message.program_id)
        settled_entries = tx.settle_lots(state, now)  # due lots first: nothing expired is held, spent or released
        settled = tx.savepoint()
        try:
            done = message.work(tx, tx.touched(state.id) or state)
            tx.check()  # a bound that would break refuses the operation, not the engine
        except Exception as error:
            tx.rollback(settled)
            if not tx.is_empty():
                self._publisher.publish(tx.commit(now), [])  # the settlement happened, whatever the operation says
            message.reply.fail(_refusal(error))
            return
        changes = tx.commit(now)
        entry = changes.entries[settled_entries]  # the operation's own (a reversal may expire lots after it)
        result, ops = message.answer(done, entry, tx.touched(state.id) or state)
        if message.idempotency is not None:
            key, request_hash, operation = message.idempotency
            stored = _StoredOperation(operation, request_hash, msgspec.Raw(msgspec.json.encode(result)))
            ops.append(("operation_keys", key, msgspec.json.encode(stored)))
        if message.record_ops is not None:
            ops.extend(message.record_ops(result))
        self._publisher.publish(changes, ops, lambda: message.reply.succeed(result))


def _refusal(error: Exception) -> BaseException:
    if isinstance(error, ScripError):
        return error
    if isinstance(error, ActionFailed):  # a ledger bound: the amount would leave the supported range
        return ValidationFailed.field("amount", "out_of_range", str(error))
    _log.error("internal error in a balance operation", exc_info=error)
    return error


def _conflict(idempotency_key: str) -> IdempotencyConflict:
    return IdempotencyConflict(f"idempotency_key {idempotency_key!r} was used with a different request")


def _operation_key(program_id: str, idempotency_key: str) -> bytes:
    """The ``operation_keys`` key: a digest, as for events (a key's UTF-8 can exceed LMDB's 511-byte keys)."""
    return program_id.encode() + b"\0" + hashlib.sha256(idempotency_key.encode()).digest()


def _request_hash(operation: str, participant_id: str, request: Any, subject: str | None) -> str:
    """What makes two calls "the same request": the operation, whom and what it addresses, and the body."""
    body = msgspec.structs.replace(request, idempotency_key=None)
    canonical = msgspec.json.encode([operation, participant_id, subject, body], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _check_status(state: ParticipantState, operation: str) -> None:
    if state.status != "ACTIVE" and operation not in _ALLOWED_WHEN_INACTIVE:
        raise Conflict(f"participant {state.external_id!r} is {state.status}; {operation} needs an ACTIVE one")


def _check_transaction_cap(asset: Asset, amount_minor: int) -> None:
    if asset.max_transaction_amount is None:
        return
    cap = to_minor(parse_decimal(asset.max_transaction_amount), asset.scale)
    if amount_minor > cap:
        raise ValidationFailed.field(
            "amount",
            "out_of_range",
            f"amount exceeds the asset's max_transaction_amount {asset.max_transaction_amount}",
        )


def _balance(state: ParticipantState, asset: Asset) -> Balance:
    available, held, deferred = state.balances.get(asset.id, [0, 0, 0])
    scale = asset.scale
    return Balance(
        asset_id=asset.id,
        available=format_minor(available, scale),
        held=format_minor(held, scale),
        deferred=format_minor(deferred, scale),
    )


def _checked_operation(operation: str, request: BalanceOperation, asset: Asset) -> tuple[int | None, LotSelection]:
    """The request's amount in minor units (None: everything) and its lot selection; 400 for what does not apply."""
    lot_mode = asset.inventory_mode == "LOT"
    narrowing = request.lot_ids is not None or request.earned_from is not None or request.earned_to is not None
    if operation == "VOID_HOLD":
        if not lot_mode:
            raise ValidationFailed.field(
                "asset_id", "invalid", f"void-hold needs a LOT asset; {asset.symbol} is SIMPLE"
            )
        if request.reference_id is None:
            raise ValidationFailed.field("reference_id", "required", "void-hold needs the hold's reference_id")
        if narrowing or request.amount is not None or request.bucket is not None:
            raise ValidationFailed.field("amount", "invalid", "void-hold takes only reference_id (it voids it all)")
    if (operation == "FORFEIT") != (request.bucket is not None):
        field_reason = "required" if operation == "FORFEIT" else "invalid"
        raise ValidationFailed.field(
            "bucket", field_reason, "bucket (AVAILABLE or HELD) is forfeit's, and required there"
        )
    if narrowing and not lot_mode:
        raise ValidationFailed.field("lot_ids", "invalid", f"lot selection needs a LOT asset; {asset.symbol} is SIMPLE")
    earned_from = _moment(request.earned_from, "earned_from")
    earned_to = _moment(request.earned_to, "earned_to")
    if earned_from is not None and earned_to is not None and earned_from >= earned_to:
        raise ValidationFailed.field("earned_to", "invalid", "earned_to must be after earned_from")
    amount = None if request.amount is None else positive_minor(request.amount, asset.scale, "amount")
    # RELEASE and FORFEIT narrow to the lots a reference stamped (and name it on their entry); a SIMPLE asset
    # keeps no amounts per reference, so there the reference is only recorded.
    reference = request.reference_id if operation in ("RELEASE", "FORFEIT") else None
    selection = LotSelection(
        lot_ids=frozenset(request.lot_ids) if request.lot_ids is not None else None,
        earned_from=earned_from,
        earned_to=earned_to,
        reference_id=reference,
    )
    return amount, selection


def _moment(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(value)
    except ValueError as error:
        raise ValidationFailed.field(field, "invalid", str(error)) from None


def _operation_runner(
    operation: str, request: BalanceOperation, asset: Asset, amount_minor: int | None, selection: LotSelection
) -> Callable[[LedgerTx, ParticipantState], tuple[int, list[tuple[str, int]] | None]]:
    """The pure operation of balance_ops that ``operation`` names, with the request's arguments bound."""
    description = request.description

    def run(tx: LedgerTx, state: ParticipantState) -> tuple[int, list[tuple[str, int]] | None]:
        if selection.lot_ids is not None:
            _check_lot_ids(state, asset, selection.lot_ids)
        if operation == "HOLD":
            return balance_ops.hold(
                tx,
                state,
                asset,
                amount_minor=amount_minor,
                selection=selection,
                reference_id=request.reference_id,
                description=description,
            )
        if operation == "RELEASE":
            return balance_ops.release(
                tx, state, asset, amount_minor=amount_minor, selection=selection, description=description
            )
        if operation == "FORFEIT":
            assert request.bucket is not None
            return balance_ops.forfeit(
                tx,
                state,
                asset,
                bucket=request.bucket,
                amount_minor=amount_minor,
                selection=selection,
                description=description,
            )
        assert request.reference_id is not None
        return balance_ops.void_hold(tx, state, asset, reference_id=request.reference_id, description=description)

    return run


def _check_lot_ids(state: ParticipantState, asset: Asset, lot_ids: frozenset[str]) -> None:
    """Every lot named must be one of the participant's open lots of the asset (else 400 naming them)."""
    open_ids = {lot.id for lot in state.lots.get(asset.id, ())}
    unknown = sorted(lot_ids - open_ids)
    if unknown:
        raise ValidationFailed.field(
            "lot_ids", "not_found", f"not open lots of this participant and asset: {', '.join(unknown[:5])}"
        )
