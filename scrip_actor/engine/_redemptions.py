"""Redemptions (spend an amount of an asset) and their reversals, as balance operations (engine/_operations).

A redemption is one REDEMPTION entry (AVAILABLE → SYSTEM_REDEMPTION, lots FIFO) and one ``redemptions`` record
written in the same LMDB record as the entry; a reversal is one REDEMPTION_REVERSAL entry (plus an EXPIRATION
entry for each restored lot already past its expiry) and the updated redemption record. Both run in the
participant's mailbox, so the check "this much is left to reverse" and the update happen in one step: several
partial reversals, however concurrent, never give back more than was spent.

Records are kept in memory once read, at most ``_RECORDS_RESIDENT_MAX`` of them (a redemption changes only in its
participant's steps, so memory is the truth, as for participant states; one leaves memory only once durable),
and listed per participant from the ``redemptions_by_participant`` index, newest first. At most
``REVERSALS_PER_REDEMPTION_MAX`` reversals per redemption (docs/limits.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from scrip_actor import balance_ops
from scrip_actor.amounts import format_minor
from scrip_actor.balance_ops import RedeemedLot
from scrip_actor.cursors import decode as decode_cursor
from scrip_actor.cursors import encode as encode_cursor
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._durable_lru import DurableLru
from scrip_actor.engine._operations import Operations, RecordOps
from scrip_actor.engine._rewards import Rewards
from scrip_actor.engine._validation import new_id, positive_minor, validated
from scrip_actor.errors import Conflict, LimitExceeded, NotFound, ValidationFailed
from scrip_actor.ledger import LedgerTx, ParticipantState
from scrip_actor.model import (
    Asset,
    ItemRedemptionCreate,
    JournalEntry,
    LotProcessed,
    Page,
    Redemption,
    RedemptionCreate,
    Reversal,
    ReversalCreate,
)
from scrip_actor.store import Op, Store, Writer, be64

__all__ = ["REVERSALS_PER_REDEMPTION_MAX", "Redemptions"]

REVERSALS_PER_REDEMPTION_MAX = 100
_RECORDS_RESIDENT_MAX = 50_000  # redemptions kept in memory (docs/limits.md); the rest are read back on use
_PAGE_MAX = 200  # as every list of the API


class _Item(msgspec.Struct, array_like=True, frozen=True):
    """A catalog redemption: its reward, units, and the unit cost it paid (UNIT_BASED; None: AMOUNT_BASED)."""

    reward_id: str
    units: int
    unit_cost_minor: int | None


class _StoredRedemption(msgspec.Struct, kw_only=True):
    """A ``redemptions`` record: the answer, what it spent (for reversals), and its reversals so far."""

    redemption: Redemption
    amount_minor: int
    reversed_minor: int = 0
    spent: list[RedeemedLot] | None
    reversals: list[Reversal] = []
    item: _Item | None = None


def _reversal(reversal_id: str, redemption_id: str, reason: str, entry: JournalEntry, amount: str) -> Reversal:
    """A reversal's answer, its entry made (``lots_restored`` filled in for a LOT asset)."""
    return Reversal(
        id=reversal_id,
        redemption_id=redemption_id,
        amount=amount,
        reason=reason,
        journal_entry_id=entry.id,
        lots_restored=None,
        created_at=entry.created_at,
    )


def _index_key(participant_id: str, created_at: datetime, redemption_id: str) -> bytes:
    """``redemptions_by_participant``: participant, NUL, creation time (µs), id — newest last."""
    micros = int(created_at.timestamp() * 1_000_000)
    return participant_id.encode() + b"\0" + be64(micros) + redemption_id.encode()


class Redemptions:
    """Redeem, reverse, and read both (see the module docstring)."""

    def __init__(
        self, *, catalog: Catalog, store: Store, writer: Writer, operations: Operations, rewards: Rewards
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._operations = operations
        self._rewards = rewards
        # Bounded, and never ahead of what a store read would give once evicted (engine/_durable_lru).
        self._records: DurableLru[str, _StoredRedemption] = DurableLru(writer, _RECORDS_RESIDENT_MAX)

    async def create(
        self,
        participant_id: str,
        request: RedemptionCreate,
        *,
        redemption_id: str | None = None,
        record_ops: tuple[RecordOps, RecordOps] | None = None,
    ) -> tuple[Redemption, bool]:
        """Spend ``amount`` of AVAILABLE value. Returns ``(redemption, created)``; created is False on a replay.

        Partitioned mode: ``redemption_id`` is the id a new redemption gets (the front's, of the participant's
        partition; None: a random one), and ``record_ops`` the ops for its own record given the answer, when
        created and when replayed (Operations.submit's ``record_ops`` and ``replay_ops``)."""
        request = validated(request)
        asset = self._redeemable_asset(request.program_id, request.asset_id)
        amount_minor = positive_minor(request.amount, asset.scale, "amount")
        return await self._redeem(
            participant_id, request, asset, amount_minor, request.description, None, (redemption_id, record_ops)
        )

    async def create_item(
        self,
        participant_id: str,
        request: ItemRedemptionCreate,
        *,
        redemption_id: str | None = None,
        record_ops: tuple[RecordOps, RecordOps] | None = None,
    ) -> tuple[Redemption, bool]:
        """Redeem a catalog reward: ``quantity`` units (UNIT_BASED) or an ``amount`` (AMOUNT_BASED, at least the
        reward's unit_cost). Its limits are checked and counted in the step (engine/_rewards). ``redemption_id``
        and ``record_ops``: as for :meth:`create`."""
        request = validated(request)
        reward = self._rewards.get(request.program_id, request.reward_id)
        asset = self._redeemable_asset(request.program_id, reward.asset_id)
        unit_cost = positive_minor(reward.unit_cost, asset.scale, "unit_cost")
        if reward.redemption_type == "UNIT_BASED":
            if request.amount is not None:
                raise ValidationFailed.field("amount", "invalid", "a UNIT_BASED reward is redeemed by quantity")
            units = request.quantity or 1
            amount_minor = unit_cost * units
        else:
            if request.amount is None or request.quantity is not None:
                raise ValidationFailed.field("amount", "required", "an AMOUNT_BASED reward is redeemed by amount")
            units, amount_minor = 1, positive_minor(request.amount, asset.scale, "amount")
            if amount_minor < unit_cost:
                raise ValidationFailed.field("amount", "out_of_range", f"the reward's minimum is {reward.unit_cost}")
        description = request.description or f"{reward.name} x{units}"
        item = _Item(reward.id, units, unit_cost if reward.redemption_type == "UNIT_BASED" else None)
        return await self._redeem(
            participant_id, request, asset, amount_minor, description, item, (redemption_id, record_ops)
        )

    def _redeemable_asset(self, program_id: str, asset_id: str) -> Asset:
        program = self._catalog.program(program_id)
        asset = self._catalog.asset(asset_id)
        if program_id not in asset.program_ids:
            raise ValidationFailed.field("asset_id", "not_linked", f"asset {asset.symbol} is not linked to the program")
        if program.status != "ACTIVE" or asset.status != "ACTIVE":
            raise Conflict("redemptions need an ACTIVE program and asset")
        return asset

    async def _redeem(
        self,
        participant_id: str,
        request: Any,
        asset: Asset,
        amount_minor: int,
        description: str,
        item: _Item | None,
        from_log: tuple[str | None, tuple[RecordOps, RecordOps] | None] = (None, None),
    ) -> tuple[Redemption, bool]:
        named_id, record_ops = from_log
        redemption_id = named_id or new_id()
        rewards = self._rewards

        def work(tx: LedgerTx, state: ParticipantState) -> list[RedeemedLot] | None:
            if state.status != "ACTIVE":
                raise Conflict(f"participant {state.external_id!r} is {state.status}; redemptions need an ACTIVE one")
            if item is not None:
                rewards.check(item.reward_id, state.id, item.units, tx.now)  # exact: steps never interleave
            return balance_ops.redeem(
                tx, state, asset, amount_minor=amount_minor, redemption_id=redemption_id, description=description
            )

        def answer(
            spent: list[RedeemedLot] | None, entry: JournalEntry, state: ParticipantState
        ) -> tuple[Redemption, list[Op]]:
            redemption = Redemption(
                id=redemption_id,
                participant_id=state.id,
                program_id=request.program_id,
                asset_id=asset.id,
                amount=format_minor(amount_minor, asset.scale),
                reversed_amount=format_minor(0, asset.scale),
                status="COMPLETED",
                description=description,
                journal_entry_id=entry.id,
                lots_processed=None
                if spent is None
                else [LotProcessed(id=lot.lot_id, amount=format_minor(lot.amount_minor, asset.scale)) for lot in spent],
                reward_catalog_item_id=None if item is None else item.reward_id,
                quantity=None if item is None else item.units,
                created_at=entry.created_at,
            )
            record = _StoredRedemption(redemption=redemption, amount_minor=amount_minor, spent=spent, item=item)
            self._records.written(redemption_id, record)
            index = ("redemptions_by_participant", _index_key(state.id, redemption.created_at, redemption_id), b"")
            ops = [_record_op(record), index]
            if item is not None:
                ops += rewards.count(item.reward_id, state.id, item.units, entry.created_at)
            return redemption, ops

        created_ops, replay_ops = record_ops or (None, None)
        result, replayed = await self._operations.submit(
            "REDEMPTION", participant_id, request, work, answer, Redemption, record_ops=created_ops,
            replay_ops=replay_ops,
        )  # fmt: skip
        return result, not replayed

    async def reverse(
        self,
        redemption_id: str,
        request: ReversalCreate,
        *,
        reversal_id: str | None = None,
        record_ops: tuple[RecordOps, RecordOps] | None = None,
    ) -> tuple[Reversal, bool]:
        """Give back all that is left of a redemption, or ``amount`` of it. Returns ``(reversal, created)``.

        Partitioned mode: ``reversal_id`` is the id a new reversal gets (the front's: in the log record, so a replay
        makes the same one; None: a random one), ``record_ops`` as for :meth:`create`."""
        request = validated(request)
        record = self._record(redemption_id)
        asset = self._catalog.asset(record.redemption.asset_id)
        amount_minor = _requested_reversal(record, request, asset.scale)
        reversal_id = reversal_id or new_id()
        rewards = self._rewards

        def work(tx: LedgerTx, state: ParticipantState) -> tuple[int, list[tuple[str, int]] | None]:
            current = self._record(redemption_id)  # read in the step: reversals of it are serialised here
            amount = _amount_to_reverse(current, amount_minor, asset.scale)
            unreversed = None
            if current.spent is not None:
                unreversed = balance_ops.unreversed_lots(current.spent, current.reversed_minor)
            restored = balance_ops.reverse_redemption(
                tx,
                state,
                asset,
                amount_minor=amount,
                unreversed=unreversed,
                redemption_id=redemption_id,
                reason=request.reason,
            )
            return amount, restored

        def answer(
            done: tuple[int, list[tuple[str, int]] | None], entry: JournalEntry, state: ParticipantState
        ) -> tuple[Reversal, list[Op]]:
            amount, restored = done
            reversal = _reversal(reversal_id, redemption_id, request.reason, entry, format_minor(amount, asset.scale))
            if restored is not None:
                reversal.lots_restored = [LotProcessed(id=i, amount=format_minor(v, asset.scale)) for i, v in restored]
            before = self._record(redemption_id)
            updated = _with_reversal(before, reversal, amount, asset.scale)
            self._records.written(redemption_id, updated)
            ops = [_record_op(updated)]
            units = _units_given_back(before, updated)
            if units:  # the catalog's counts go down by the units reversed (docs/money-out.md)
                assert updated.item is not None
                ops += rewards.count(updated.item.reward_id, state.id, -units, entry.created_at)
            return reversal, ops

        result, replayed = await self._operations.submit(
            "REDEMPTION_REVERSAL",
            record.redemption.participant_id,
            request,
            work,
            answer,
            Reversal,
            program_id=record.redemption.program_id,
            subject=redemption_id,  # the same key on another redemption is another request: a 409, not a replay
            record_ops=None if record_ops is None else record_ops[0],
            replay_ops=None if record_ops is None else record_ops[1],
        )
        return result, not replayed

    # --- reads ------------------------------------------------------------------------------------------------

    def get(self, redemption_id: str) -> Redemption:
        """One redemption, with its reversed amount and status now."""
        return self._record(redemption_id).redemption

    def reversals(self, redemption_id: str) -> list[Reversal]:
        """A redemption's reversals, oldest first."""
        return list(self._record(redemption_id).reversals)

    def list_for(
        self,
        participant_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: str | None = None,
        reward_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:
        """A participant's redemptions, newest first, at most 200 per page; ``status``, ``reward_id`` (the catalog
        item redeemed) and ``created_from``/``created_to`` (from inclusive, to exclusive) filter them."""
        if not 1 <= limit <= _PAGE_MAX:
            raise ValidationFailed.field("limit", "invalid", f"limit must be 1-{_PAGE_MAX}")
        prefix = participant_id.encode() + b"\0"
        start = None if not cursor else decode_cursor(cursor, tuple[bytes])[0]
        found: list[Redemption] = []
        last_key = b""
        for key, _ in self._store.scan("redemptions_by_participant", prefix, start=start, reverse=True):
            redemption = self._record(bytes(key)[len(prefix) + 8 :].decode()).redemption
            if (
                (status is not None and redemption.status != status)
                or (reward_id is not None and redemption.reward_catalog_item_id != reward_id)
                or (created_from is not None and redemption.created_at < created_from)
                or (created_to is not None and redemption.created_at >= created_to)
            ):
                continue
            if len(found) == limit:
                return Page(data=found, has_more=True, next_cursor=encode_cursor((last_key,)))
            found.append(redemption)
            last_key = bytes(key)
        return Page(data=found, has_more=False, next_cursor=None)

    def _record(self, redemption_id: str) -> _StoredRedemption:
        record = self._records.get(redemption_id)
        if record is None:
            raw = self._store.get_raw("redemptions", redemption_id.encode())
            if raw is None:
                raise NotFound("redemption", redemption_id)
            # Written before the status took the hosted API's name (2026-12-04, schema 10 unchanged): read as it.
            # The exact bytes msgspec writes for the key; a quote inside a JSON string is escaped, so no text matches.
            raw = raw.replace(b'"status":"REVERSED"', b'"status":"FULLY_REVERSED"')
            record = msgspec.json.decode(raw, type=_StoredRedemption)
            assert record.redemption.id == redemption_id
            assert 0 <= record.reversed_minor <= record.amount_minor  # the pair of the check made before writing
            self._records.loaded(redemption_id, record)
        return record


def _amount_to_reverse(record: _StoredRedemption, amount_minor: int | None, scale: int) -> int:
    """What a reversal gives back (None: all that is left), refused beyond what is left or the reversals bound."""
    left = record.amount_minor - record.reversed_minor
    if left == 0:
        raise Conflict(f"redemption {record.redemption.id} is fully reversed")
    amount = left if amount_minor is None else amount_minor
    if amount > left:
        raise ValidationFailed.field(
            "amount", "out_of_range", f"only {format_minor(left, scale)} of the redemption is left to reverse"
        )
    if len(record.reversals) >= REVERSALS_PER_REDEMPTION_MAX:
        raise LimitExceeded(f"a redemption takes at most {REVERSALS_PER_REDEMPTION_MAX} reversals")
    return amount


def _requested_reversal(record: _StoredRedemption, request: ReversalCreate, scale: int) -> int | None:
    """The amount a reversal asks for (None: all that is left): by ``quantity`` for a UNIT_BASED reward."""
    per_unit = record.item.unit_cost_minor if record.item is not None else None
    if per_unit is not None:
        if request.amount is not None:
            raise ValidationFailed.field("amount", "invalid", "a UNIT_BASED redemption is reversed by quantity")
        return None if request.quantity is None else per_unit * request.quantity
    if request.quantity is not None:
        raise ValidationFailed.field("quantity", "invalid", "only a UNIT_BASED catalog redemption has a quantity")
    return None if request.amount is None else positive_minor(request.amount, scale, "amount")


def _units_given_back(before: _StoredRedemption, after: _StoredRedemption) -> int:
    """Catalog units a reversal returns: whole units for UNIT_BASED; the one redemption when fully reversed."""
    item = after.item
    if item is None:
        return 0
    if item.unit_cost_minor is not None:
        return after.reversed_minor // item.unit_cost_minor - before.reversed_minor // item.unit_cost_minor
    return int(after.reversed_minor == after.amount_minor)


def _with_reversal(record: _StoredRedemption, reversal: Reversal, amount: int, scale: int) -> _StoredRedemption:
    reversed_minor = record.reversed_minor + amount
    status = "FULLY_REVERSED" if reversed_minor == record.amount_minor else "PARTIALLY_REVERSED"
    return msgspec.structs.replace(
        record,
        reversed_minor=reversed_minor,
        reversals=[*record.reversals, reversal],
        redemption=msgspec.structs.replace(
            record.redemption, reversed_amount=format_minor(reversed_minor, scale), status=status
        ),
    )


def _record_op(record: _StoredRedemption) -> Op:
    assert 0 <= record.reversed_minor <= record.amount_minor
    return ("redemptions", record.redemption.id.encode(), msgspec.json.encode(record))
