"""Value moved by an operator rather than a rule: wallet funding and burning, and the money-out side of a
participant's balance — adjust, hold, release, forfeit and void-hold.

Pure domain code on a :class:`~scrip_actor.ledger.LedgerTx`, like a rule's credit: each function checks, posts
one journal entry (postings summing to zero) and changes the working copies; nothing is real until the caller
commits the transaction, and a refusal raises before anything was posted. The engine's operations stage
(scrip_actor.engine._operations) runs them inside the participant's mailbox, so they are ordered with its events.

Buckets and lots (docs/money-out.md):

* AVAILABLE is spendable; HELD is reserved (not spendable, not debitable); DEFERRED is not yet vested and no
  operation here touches it.
* For a LOT asset a lot's status names the bucket its value is in. A hold moves whole lots to HELD, stamped with
  the hold's ``reference_id``; a partial hold splits a lot — the part held becomes a new lot that keeps the
  original's dates (``created_at`` for FIFO, ``expires_at``), naming it as ``parent_lot_id`` — so a held lot
  still expires when it would have. A release does the reverse; forfeit and void-hold use lots up.
* Lots are taken oldest first (FIFO by ``created_at``, then number), never past their expiry.
* A rule's CREDIT straight to HELD with a ``reference_id`` makes *provisional* lots (an authorization);
  void-hold returns those, and only those, to where they came from (the program wallet or SYSTEM_ISSUANCE).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from scrip_actor.amounts import format_minor
from scrip_actor.errors import InsufficientFunds, NotFound, ValidationFailed
from scrip_actor.ledger import (
    SYSTEM_BREAKAGE,
    SYSTEM_ISSUANCE,
    SYSTEM_REDEMPTION,
    ActionFailed,
    LedgerTx,
    ParticipantState,
    account_key,
)
from scrip_actor.model import Asset, Lot

__all__ = [
    "EVERYTHING",
    "LotSelection",
    "RedeemedLot",
    "adjust",
    "burn",
    "forfeit",
    "fund",
    "hold",
    "redeem",
    "referenced_credit",
    "release",
    "reverse_redemption",
    "transfer",
    "unreversed_lots",
    "void_hold",
]

_BUCKET_INDEX = {"AVAILABLE": 0, "HELD": 1}
# What an operation took, lot by lot: (lot id, minor units). None for a SIMPLE asset.
Taken = list[tuple[str, int]] | None


class LotSelection(msgspec.Struct, frozen=True, kw_only=True):
    """Which of a participant's lots an operation may take from (LOT assets; every field narrows)."""

    lot_ids: frozenset[str] | None = None
    earned_from: datetime | None = None  # the lot's created_at, inclusive
    earned_to: datetime | None = None  # exclusive
    reference_id: str | None = None  # lots stamped with this reference

    def admits(self, lot: Lot) -> bool:
        """True when ``lot`` is inside the selection."""
        return (
            (self.lot_ids is None or lot.id in self.lot_ids)
            and (self.earned_from is None or lot.created_at >= self.earned_from)
            and (self.earned_to is None or lot.created_at < self.earned_to)
            and (self.reference_id is None or lot.reference_id == self.reference_id)
        )


EVERYTHING = LotSelection()


# --- wallets ------------------------------------------------------------------------------------------------------


def fund(tx: LedgerTx, asset: Asset, program_id: str, amount_minor: int, description: str | None) -> None:
    """Move value from SYSTEM_ISSUANCE into a program wallet."""
    assert amount_minor > 0
    tx.post(
        "FUND",
        [
            ("SYSTEM", SYSTEM_ISSUANCE, asset.id, "AVAILABLE", -amount_minor),
            ("PROGRAM", program_id, asset.id, "AVAILABLE", amount_minor),
        ],
        rule_id=None,
        description=description,
    )


def burn(tx: LedgerTx, asset: Asset, program_id: str, amount_minor: int, description: str | None) -> None:
    """Move value from a program wallet to SYSTEM_BREAKAGE; never below zero (ActionFailed)."""
    assert amount_minor > 0
    available = tx.account_balance(account_key("PROGRAM", program_id, asset.id))
    if available < amount_minor:
        raise ActionFailed(
            f"cannot burn {format_minor(amount_minor, asset.scale)}: the wallet holds "
            f"{format_minor(available, asset.scale)}"
        )
    tx.post(
        "BURN",
        [
            ("PROGRAM", program_id, asset.id, "AVAILABLE", -amount_minor),
            ("SYSTEM", SYSTEM_BREAKAGE, asset.id, "AVAILABLE", amount_minor),
        ],
        rule_id=None,
        description=description,
    )


# --- adjust -------------------------------------------------------------------------------------------------------


def adjust(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    program_id: str,
    kind: str,
    amount_minor: int,
    bucket: str,
    allow_negative: bool,
    description: str,
) -> None:
    """An operator's CREDIT or DEBIT of one bucket (action type ADJUST).

    A credit comes from where a rule's would (SYSTEM_ISSUANCE, or the program wallet, which must cover it); a
    debit goes back there, so an adjustment and its correction cancel out everywhere. A LOT credit is a lot with
    no expiry (a HELD one is released or forfeited later, never voided: it has no reference); a debit takes lots
    FIFO. Only a DEBIT of AVAILABLE may
    ``allow_negative`` (the rest becomes an overdraft that later credits repay).
    """
    assert amount_minor > 0
    assert kind in ("CREDIT", "DEBIT")
    assert bucket in _BUCKET_INDEX
    participant = tx.edit(state)
    source = _source_account(asset, program_id)
    if kind == "CREDIT":
        try:
            source_leg = tx.source_leg(asset, program_id, amount_minor)
        except ActionFailed as error:
            raise InsufficientFunds(str(error)) from None
        tx.post(
            "ADJUST",
            [source_leg, ("PARTICIPANT", participant.id, asset.id, bucket, amount_minor)],
            rule_id=None,
            description=description,
        )
        if asset.inventory_mode == "LOT":
            held = (None, False) if bucket == "HELD" else None  # held, not provisional: no reference voids it
            tx.open_lot(participant, asset, amount_minor, program_id, None, None, False, held=held)
        return
    if bucket == "HELD" and allow_negative:
        raise ValidationFailed.field("allow_negative", "invalid", "allow_negative applies to AVAILABLE only")
    if bucket == "AVAILABLE":
        spendable = _spendable(tx, participant, asset)
        if spendable < amount_minor and not allow_negative:
            raise _short(asset, "available", spendable, amount_minor)
        if asset.inventory_mode == "LOT":
            tx.consume_lots(participant, asset, amount_minor)
    else:
        _take_held_or_fail(tx, participant, asset, amount_minor, EVERYTHING)
    tx.post(
        "ADJUST",
        [("PARTICIPANT", participant.id, asset.id, bucket, -amount_minor), (*source, amount_minor)],
        rule_id=None,
        description=description,
    )


def _take_held_or_fail(
    tx: LedgerTx, participant: ParticipantState, asset: Asset, amount_minor: int, selection: LotSelection
) -> Taken:
    held = _bucket_value(tx, participant, asset, "HELD", selection)
    if held < amount_minor:
        raise _short(asset, "held", held, amount_minor)
    if asset.inventory_mode != "LOT":
        return None
    return _use_up(tx, participant, asset, _lots(tx, participant, asset, "HELD", selection), amount_minor)


# --- hold, release, forfeit, void-hold ------------------------------------------------------------------------------


def hold(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    amount_minor: int | None,
    selection: LotSelection,
    reference_id: str | None,
    description: str | None,
    rule_id: str | None = None,
) -> tuple[int, Taken]:
    """AVAILABLE → HELD (all the selection holds when ``amount_minor`` is None). Returns what it moved.

    For a LOT asset the lots moved are stamped with ``reference_id`` (``selection.reference_id`` is not used:
    a hold picks AVAILABLE lots, whatever an earlier hold stamped on them). Refused (422) when AVAILABLE is short.
    """
    participant = tx.edit(state)
    selection = msgspec.structs.replace(selection, reference_id=None)
    limit = min(_bucket_value(tx, participant, asset, "AVAILABLE", selection), _spendable(tx, participant, asset))
    amount = _amount_within(asset, "available", limit, amount_minor)
    taken = None
    if asset.inventory_mode == "LOT":
        lots = _lots(tx, participant, asset, "AVAILABLE", selection)
        taken = _move(tx, participant, asset, lots, amount, "HELD", reference_id)
    _post_move(tx, participant, asset, ("HOLD", rule_id), "AVAILABLE", "HELD", amount, reference_id, description)
    return amount, taken


def release(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    amount_minor: int | None,
    selection: LotSelection,
    description: str | None,
    rule_id: str | None = None,
) -> tuple[int, Taken]:
    """HELD → AVAILABLE (all of it when ``amount_minor`` is None); with a ``reference_id`` only lots stamped with
    it. Released value repays an overdraft first, as any value arriving in AVAILABLE does."""
    participant = tx.edit(state)
    amount = _amount_within(asset, "held", _bucket_value(tx, participant, asset, "HELD", selection), amount_minor)
    taken = None
    if asset.inventory_mode == "LOT":
        lots = _lots(tx, participant, asset, "HELD", selection)
        taken = _move(tx, participant, asset, lots, amount, "AVAILABLE", None)
    move = ("RELEASE", rule_id)
    _post_move(tx, participant, asset, move, "HELD", "AVAILABLE", amount, selection.reference_id, description)
    return amount, taken


def forfeit(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    bucket: str,
    amount_minor: int | None,
    selection: LotSelection,
    description: str | None,
    rule_id: str | None = None,
) -> tuple[int, Taken]:
    """``bucket`` → SYSTEM_BREAKAGE, for good (all the selection holds when ``amount_minor`` is None)."""
    participant = tx.edit(state)
    value = _bucket_value(tx, participant, asset, bucket, selection)
    if bucket == "AVAILABLE":
        value = min(value, _spendable(tx, participant, asset))
    amount = _amount_within(asset, bucket.lower(), value, amount_minor)
    taken = None
    if asset.inventory_mode == "LOT":
        taken = _use_up(tx, participant, asset, _lots(tx, participant, asset, bucket, selection), amount)
    tx.post(
        "FORFEIT",
        [
            ("PARTICIPANT", participant.id, asset.id, bucket, -amount),
            ("SYSTEM", SYSTEM_BREAKAGE, asset.id, "AVAILABLE", amount),
        ],
        rule_id=rule_id,
        description=description,
        reference_id=selection.reference_id,
    )
    return amount, taken


def void_hold(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    reference_id: str,
    description: str | None,
    rule_id: str | None = None,
) -> tuple[int, Taken]:
    """Return the provisional HELD lots stamped with ``reference_id`` to their sources (LOT assets only).

    Only lots credited straight to HELD are provisional; value a HOLD moved there stays (release or forfeit it).
    NotFound when no provisional lot carries the reference.
    """
    assert asset.inventory_mode == "LOT"
    participant = tx.edit(state)
    lots = _provisional_lots(participant, asset, reference_id)
    if not lots:
        raise NotFound("provisional hold", reference_id)
    by_source: dict[tuple[str, str, str, str], int] = {}
    for lot in lots:
        source = _source_account(asset, lot.program_id)
        by_source[source] = by_source.get(source, 0) + lot.remaining_minor
    total = sum(by_source.values())
    taken = _use_up(tx, participant, asset, lots, total)
    tx.post(
        "VOID_HOLD",
        [
            ("PARTICIPANT", participant.id, asset.id, "HELD", -total),
            *((*source, value) for source, value in by_source.items()),
        ],
        rule_id=rule_id,
        description=description,
        reference_id=reference_id,
    )
    return total, taken


# --- redemptions and their reversals -----------------------------------------------------------------------------


class RedeemedLot(msgspec.Struct, array_like=True, frozen=True):
    """What a redemption took from one lot, with what a reversal needs to restore it (the lot may be gone)."""

    lot_id: str
    amount_minor: int
    created_at: datetime
    expires_at: datetime | None
    program_id: str


def redeem(
    tx: LedgerTx, state: ParticipantState, asset: Asset, *, amount_minor: int, redemption_id: str, description: str
) -> list[RedeemedLot] | None:
    """Spend ``amount_minor`` of AVAILABLE value to SYSTEM_REDEMPTION (entry REDEMPTION, lots FIFO; never into
    an overdraft: 422 when AVAILABLE is short). Returns the lots spent, oldest first (None: a SIMPLE asset)."""
    assert amount_minor > 0
    participant = tx.edit(state)
    spendable = _spendable(tx, participant, asset)
    if spendable < amount_minor:
        raise _short(asset, "available", spendable, amount_minor)
    spent = None
    if asset.inventory_mode == "LOT":
        lots = {lot.id: lot for lot in _lots(tx, participant, asset, "AVAILABLE", EVERYTHING)}
        taken = _use_up(tx, participant, asset, list(lots.values()), amount_minor)
        assert taken is not None
        spent = [
            RedeemedLot(lot_id, take, lots[lot_id].created_at, lots[lot_id].expires_at, lots[lot_id].program_id)
            for lot_id, take in taken
        ]
    tx.post(
        "REDEMPTION",
        [
            ("PARTICIPANT", participant.id, asset.id, "AVAILABLE", -amount_minor),
            ("SYSTEM", SYSTEM_REDEMPTION, asset.id, "AVAILABLE", amount_minor),
        ],
        rule_id=None,
        description=description,
        reference_id=redemption_id,
    )
    return spent


def reverse_redemption(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    *,
    amount_minor: int,
    unreversed: list[RedeemedLot] | None,
    redemption_id: str,
    reason: str,
) -> Taken:
    """Give ``amount_minor`` of a redemption back (entry REDEMPTION_REVERSAL, from SYSTEM_REDEMPTION).

    For a LOT asset the lots still unreversed (``unreversed``, oldest first) are restored newest first (LIFO),
    each as a new lot with the original's ``created_at`` and ``expires_at`` (``parent_lot_id`` names it); one
    whose expiry has passed in the meantime is expired again at once, with its own EXPIRATION entry to breakage.
    Returns the lots restored, newest first.
    """
    assert amount_minor > 0
    participant = tx.edit(state)
    tx.post(
        "REDEMPTION_REVERSAL",
        [
            ("SYSTEM", SYSTEM_REDEMPTION, asset.id, "AVAILABLE", -amount_minor),
            ("PARTICIPANT", participant.id, asset.id, "AVAILABLE", amount_minor),
        ],
        rule_id=None,
        description=reason,
        reference_id=redemption_id,
    )
    if unreversed is None:
        return None
    restored: list[tuple[str, int]] = []
    needed = amount_minor
    for piece in reversed(unreversed):
        if needed == 0:
            break
        take = min(needed, piece.amount_minor)
        needed -= take
        repaid = tx.repay_overdraft(participant, asset.id, take)
        lot = Lot(
            id=tx.next_id(),
            participant_id=participant.id,
            asset_id=asset.id,
            program_id=piece.program_id,
            number=participant.lot_numbers.get(asset.id, 0) + 1,
            amount_minor=take,
            remaining_minor=take - repaid,
            amount=format_minor(take, asset.scale),
            remaining=format_minor(take - repaid, asset.scale),
            status="AVAILABLE" if take > repaid else "CONSUMED",
            created_at=piece.created_at,
            expires_at=piece.expires_at,
            parent_lot_id=piece.lot_id,
        )
        tx.add_lot(participant, lot)
        restored.append((lot.id, take))
    assert needed == 0, "the caller checked that the redemption has this much left to reverse"
    tx.settle_lots(participant, tx.now)  # a restored lot already past its expiry goes straight to breakage
    return restored


def unreversed_lots(spent: list[RedeemedLot], reversed_minor: int) -> list[RedeemedLot]:
    """The part of ``spent`` (oldest first) that reversals have not given back yet: they restore newest first."""
    left = list(spent)
    while reversed_minor and left:
        last = left.pop()
        if last.amount_minor > reversed_minor:
            left.append(msgspec.structs.replace(last, amount_minor=last.amount_minor - reversed_minor))
            reversed_minor = 0
        else:
            reversed_minor -= last.amount_minor
    assert reversed_minor == 0, "reversals never give back more than was spent"
    return left


# --- transfers ----------------------------------------------------------------------------------------------------


def transfer(
    tx: LedgerTx,
    source: ParticipantState,
    recipients: list[tuple[ParticipantState, int]],
    asset: Asset,
    *,
    program_id: str,
    description: str,
    remote: list[tuple[str, int]] | None = None,
) -> int:
    """Move AVAILABLE value from ``source`` to each recipient, in one TRANSFER entry; returns the total.

    The source's lots are spent FIFO; each recipient gets a new lot dated now with no expiry (the vintage resets,
    as in the hosted API). 422 when the source's AVAILABLE is short; nothing moves for anyone then.

    ``remote`` (partitioned mode): ``(system account id, amount)`` for recipients on other partitions. Their value
    goes to that in-transit SYSTEM account in this same entry, and the recipient's partition moves it on
    (scrip_actor/engine/_cross_partition.py), so every partition's journal still balances on its own.
    """
    remote = remote or []
    total = sum(amount for _, amount in recipients) + sum(amount for _, amount in remote)
    assert total > 0
    assert all(amount > 0 and state.id != source.id for state, amount in recipients)
    assert all(amount > 0 for _, amount in remote)
    participant = tx.edit(source)
    spendable = _spendable(tx, participant, asset)
    if spendable < total:
        raise _short(asset, "available", spendable, total)
    if asset.inventory_mode == "LOT":
        tx.consume_lots(participant, asset, total)
    legs = [("PARTICIPANT", participant.id, asset.id, "AVAILABLE", -total)]
    legs += [("PARTICIPANT", state.id, asset.id, "AVAILABLE", amount) for state, amount in recipients]
    legs += [("SYSTEM", account_id, asset.id, "AVAILABLE", amount) for account_id, amount in remote]
    edited = [(tx.edit(state), amount) for state, amount in recipients]  # working copies before the postings
    tx.post("TRANSFER", legs, rule_id=None, description=description)
    if asset.inventory_mode == "LOT":
        for state, amount in edited:
            tx.open_lot(state, asset, amount, program_id, None, None, False)
    return total


# --- a rule's provisional credit, and its settle -----------------------------------------------------------------


def referenced_credit(
    tx: LedgerTx,
    state: ParticipantState,
    asset: Asset,
    amount_minor: int,
    *,
    program_id: str,
    rule_id: str | None,
    reference_id: str,
    held: bool,
    expires_at: datetime | None,
    description: str | None,
) -> None:
    """A CREDIT that names a ``reference_id`` (LOT assets), the two halves of an authorization (§5.4 pattern B).

    To HELD (``held``): a provisional credit, its lot HELD and stamped (entry CREDIT, value from the usual
    source). To AVAILABLE: if provisional lots carry the reference, the *settle* — one SETTLE entry takes their
    value out of HELD back to the source and the settled amount from the source into AVAILABLE (the delta is the
    difference; only the net moves on the source's account), and the settled amount becomes a new lot. Without
    provisional lots it is a plain credit that records the reference.
    """
    assert asset.inventory_mode == "LOT"
    assert amount_minor > 0
    participant = tx.edit(state)
    provisional = _provisional_lots(participant, asset, reference_id)
    if held or not provisional:
        tx.post(
            "CREDIT",
            [
                tx.source_leg(asset, program_id, amount_minor),
                ("PARTICIPANT", participant.id, asset.id, "HELD" if held else "AVAILABLE", amount_minor),
            ],
            rule_id=rule_id,
            description=description,
            reference_id=reference_id,
        )
        tx.open_lot(
            participant,
            asset,
            amount_minor,
            program_id,
            expires_at,
            None,
            False,
            held=(reference_id, True) if held else None,
        )
        return
    held_minor = sum(lot.remaining_minor for lot in provisional)
    delta = amount_minor - held_minor
    legs = [
        ("PARTICIPANT", participant.id, asset.id, "HELD", -held_minor),
        ("PARTICIPANT", participant.id, asset.id, "AVAILABLE", amount_minor),
    ]
    if delta > 0:  # the settle is more than the authorization: the source covers the difference
        legs.append(tx.source_leg(asset, program_id, delta))
    elif delta < 0:
        legs.append((*_source_account(asset, program_id), -delta))
    _use_up(tx, participant, asset, provisional, held_minor)
    if description is None:
        description = (
            f"settled {format_minor(amount_minor, asset.scale)} against {format_minor(held_minor, asset.scale)} held"
        )
    tx.post("SETTLE", legs, rule_id=rule_id, description=description, reference_id=reference_id)
    tx.open_lot(participant, asset, amount_minor, program_id, expires_at, None, False)


def _provisional_lots(participant: ParticipantState, asset: Asset, reference_id: str) -> list[Lot]:
    return [
        lot
        for lot in participant.lots.get(asset.id, ())
        if lot.status == "HELD" and lot.provisional and lot.reference_id == reference_id
    ]


# --- the parts ----------------------------------------------------------------------------------------------------


def _source_account(asset: Asset, program_id: str) -> tuple[str, str, str, str]:
    """Where a credit of ``asset`` in ``program_id`` comes from (and an adjust DEBIT or void-hold returns to)."""
    if asset.issuance_policy == "UNLIMITED":
        return ("SYSTEM", SYSTEM_ISSUANCE, asset.id, "AVAILABLE")
    return ("PROGRAM", program_id, asset.id, "AVAILABLE")


def _spendable(tx: LedgerTx, participant: ParticipantState, asset: Asset) -> int:
    if asset.inventory_mode == "LOT":
        return tx.spendable_lot_value(participant, asset.id)
    return participant.balance(asset.id)[0]


def _lots(tx: LedgerTx, participant: ParticipantState, asset: Asset, bucket: str, selection: LotSelection) -> list[Lot]:
    """The open lots of ``bucket`` in the selection, FIFO; never one past its expiry (settled, or about to be)."""
    now = tx.now
    return [
        lot
        for lot in participant.lots.get(asset.id, ())
        if lot.status == bucket and (lot.expires_at is None or lot.expires_at > now) and selection.admits(lot)
    ]


def _bucket_value(
    tx: LedgerTx, participant: ParticipantState, asset: Asset, bucket: str, selection: LotSelection
) -> int:
    """What the selection holds in ``bucket`` (a SIMPLE asset: the bucket's balance, never below zero)."""
    if asset.inventory_mode == "LOT":
        return sum(lot.remaining_minor for lot in _lots(tx, participant, asset, bucket, selection))
    return max(participant.balance(asset.id)[_BUCKET_INDEX[bucket]], 0)


def _amount_within(asset: Asset, what: str, value: int, amount_minor: int | None) -> int:
    """``amount_minor``, or all of ``value`` when None; refused when ``value`` cannot cover it (or is nothing)."""
    if amount_minor is None:
        if value <= 0:
            raise InsufficientFunds(f"no {what} {asset.symbol} to process")
        return value
    if value < amount_minor:
        raise _short(asset, what, value, amount_minor)
    return amount_minor


def _short(asset: Asset, what: str, value: int, amount_minor: int) -> InsufficientFunds:
    return InsufficientFunds(
        f"insufficient {asset.symbol} balance: {what} {format_minor(max(value, 0), asset.scale)}, "
        f"needs {format_minor(amount_minor, asset.scale)}"
    )


def _post_move(
    tx: LedgerTx,
    participant: ParticipantState,
    asset: Asset,
    action: tuple[str, str | None],
    source: str,
    destination: str,
    amount: int,
    reference_id: str | None,
    description: str | None,
) -> None:
    action_type, rule_id = action
    tx.post(
        action_type,
        [
            ("PARTICIPANT", participant.id, asset.id, source, -amount),
            ("PARTICIPANT", participant.id, asset.id, destination, amount),
        ],
        rule_id=rule_id,
        description=description,
        reference_id=reference_id,
    )


def _move(
    tx: LedgerTx,
    participant: ParticipantState,
    asset: Asset,
    lots: list[Lot],
    amount: int,
    status: str,
    reference_id: str | None,
) -> Taken:
    """Move ``amount`` of ``lots`` (FIFO) to ``status``: whole lots change status, the last one may split.

    To HELD the lots are stamped with ``reference_id``; to AVAILABLE they stop being provisional, and the value
    repays an overdraft first (a lot fully spent on it is CONSUMED).
    """
    taken: list[tuple[str, int]] = []
    needed = amount
    for lot in lots:
        if needed == 0:
            break
        take = min(needed, lot.remaining_minor)
        needed -= take
        taken.append((lot.id, take))
        repaid = tx.repay_overdraft(participant, asset.id, take) if status == "AVAILABLE" else 0
        landed = status if take > repaid else "CONSUMED"
        stamp = {"reference_id": reference_id} if status == "HELD" else {"provisional": False}
        if take == lot.remaining_minor:
            tx.replace_lot(participant, lot, asset, take - repaid, landed, **stamp)
            continue
        tx.replace_lot(participant, lot, asset, lot.remaining_minor - take, lot.status)
        split = msgspec.structs.replace(
            lot,
            id=tx.next_id(),
            number=participant.lot_numbers.get(asset.id, 0) + 1,
            amount_minor=take,
            amount=format_minor(take, asset.scale),
            remaining_minor=take - repaid,
            remaining=format_minor(take - repaid, asset.scale),
            status=landed,
            parent_lot_id=lot.id,
            **stamp,
        )
        tx.add_lot(participant, split)
    assert needed == 0, "the caller checked that the lots cover the amount"
    return taken


def _use_up(tx: LedgerTx, participant: ParticipantState, asset: Asset, lots: list[Lot], amount: int) -> Taken:
    """Take ``amount`` out of ``lots`` (FIFO) for good: what a lot has left stays in its bucket."""
    taken: list[tuple[str, int]] = []
    needed = amount
    for lot in lots:
        if needed == 0:
            break
        take = min(needed, lot.remaining_minor)
        needed -= take
        taken.append((lot.id, take))
        remaining = lot.remaining_minor - take
        tx.replace_lot(participant, lot, asset, remaining, lot.status if remaining else "CONSUMED")
    assert needed == 0, "the caller checked that the lots cover the amount"
    return taken
