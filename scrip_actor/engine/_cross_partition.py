"""Transfers between partitions (partitioned mode, issue 16): sent by the source's, received by each recipient's.

In partitioned mode a participant lives on exactly one partition (its store, journal and hash chain), so a
transfer whose recipients live elsewhere cannot be one entry. It is three steps, each one LMDB record on one
partition, each applied exactly once:

1. **Send** (:func:`send_transfer`, on the source's partition): one TRANSFER entry debits the source, credits the
   local recipients, and credits each remote recipient's amount to the SYSTEM account ``SYSTEM_TRANSIT_P<n>`` —
   value on its way to partition ``n``. In the same record the caller writes one :class:`TransitCredit` per remote
   recipient into the cross-partition outbox (scrip_actor/partitioned/_outbox.py), with the log offset.
2. **Receive** (:func:`receive_credit`, on the recipient's partition, once per outbox record): a TRANSFER entry
   moves the amount from ``SYSTEM_TRANSIT_P<origin>`` to the recipient (a new lot for LOT assets, no expiry, as a
   local transfer's).
3. **Return**: a recipient that does not exist, or is not ACTIVE, cannot take it; its partition instead sends a
   RETURN credit back, and the origin moves the amount from ``SYSTEM_TRANSIT_P<recipient's partition>`` back to
   the source (always accepted: value is never left in transit).

Every partition's journal balances on its own. Summed over all partitions, the transit accounts hold exactly what
is still in flight: zero once every outbox record is delivered (the test checks it). A partition's reports count
a remote transfer as an OTHER change of its participants (out on the origin, in at the destination), which the
partitions' sum nets to zero.

A participant's balance operations (adjust, hold, release, forfeit, void-hold) need no other partition: the front
produces them to the participant's partition, and :func:`run_operation` runs the embedded operation there with the
record's log offset in the operation's own LMDB record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec

from scrip_actor import balance_ops
from scrip_actor.amounts import format_minor
from scrip_actor.engine._step import legacy_participant_id, new_participant
from scrip_actor.engine._validation import positive_minor, validated
from scrip_actor.errors import Conflict, NotFound, Overloaded, ScripError, SelfTransfer, ValidationFailed
from scrip_actor.ids import KIND_EVENT
from scrip_actor.ledger import SYSTEM_ISSUANCE, LedgerTx, ParticipantState, RemoteCredit, transit_account
from scrip_actor.model import (
    AdjustResult,
    Asset,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    ItemRedemptionCreate,
    JournalEntry,
    Participant,
    ParticipantCreate,
    Redemption,
    RedemptionCreate,
    Reversal,
    ReversalCreate,
    TransferCreate,
    TransferResult,
)
from scrip_actor.store import Op
from scrip_actor.values import external_id as canonical_external_id

if TYPE_CHECKING:
    from scrip_actor.engine._engine import Engine

__all__ = [
    "STATE_WRITE_NAMES",
    "TransitCredit",
    "receive_credit",
    "redemption_owner",
    "reward_credit",
    "run_operation",
    "run_participant_upsert",
    "run_redemption",
    "run_reversal",
    "run_state_write",
    "send_transfer",
    "transit_account",
]

_EXTERNAL_ID_MAX = 255


class TransitCredit(msgspec.Struct, frozen=True, kw_only=True, tag="credit"):
    """A credit owed to a participant of another partition: a transfer's (TRANSFER) or a refused one's (RETURN),
    a rule's (REWARD) or a refused one's, owed back to the issuance or the program wallet (REWARD_RETURN)."""

    purpose: Literal["TRANSFER", "RETURN", "REWARD", "REWARD_RETURN"]
    program_id: str
    asset_id: str
    external_id: str  # who receives it, on the destination partition
    amount_minor: int
    from_partition: int  # whose transit account it leaves
    reference_id: str  # the origin's TRANSFER entry
    description: str
    source_external_id: str | None = None  # TRANSFER: the source, to whom a refusal returns it
    # REWARD (and its return): the rule and event that made it, and the lot's dates at the destination.
    rule_id: str | None = None
    event_id: str | None = None
    expires_at: datetime | None = None
    matures_at: datetime | None = None


class _Keyless(NamedTuple):
    """What ``Operations.submit`` reads of a request, for a step that is deduplicated by its log position."""

    program_id: str
    idempotency_key: None = None


def _linked_asset(engine: Engine, program_id: str, asset_id: str) -> Asset:
    catalog = engine._catalog
    program, asset = catalog.program(program_id), catalog.asset(asset_id)
    if program_id not in asset.program_ids:
        raise ValidationFailed.field("asset_id", "not_linked", f"asset {asset.symbol} is not linked to the program")
    if program.status != "ACTIVE" or asset.status != "ACTIVE":
        raise Conflict("transfers need an ACTIVE program and asset")
    return asset


def _routable(value: str | None, field: str) -> str:
    if value is None:
        raise ValidationFailed.field(field, "required", "in partitioned mode a transfer names people by external_id")
    return canonical_external_id(value, _EXTERNAL_ID_MAX, field)


def _split_recipients(
    engine: Engine,
    request: TransferCreate,
    asset: Asset,
    source: ParticipantState,
    partition: int,
    partition_of: Callable[[str], int],
) -> tuple[list[tuple[str, int]], list[tuple[int, str, int]]]:
    """The recipients here ``(participant id, amount)`` and elsewhere ``(partition, external id, amount)``."""
    local: list[tuple[str, int]] = []
    remote: list[tuple[int, str, int]] = []
    for i, recipient in enumerate(request.recipients):
        if recipient.group_id is not None or recipient.participant_id is not None:
            raise ValidationFailed.field(f"recipients[{i}].external_id", "required", "name recipients by external_id")
        external_id = _routable(recipient.external_id, f"recipients[{i}].external_id")
        amount_minor = positive_minor(recipient.amount, asset.scale, f"recipients[{i}].amount")
        if external_id == source.external_id:
            raise SelfTransfer("a transfer cannot name its source among its recipients", {"source_id": source.id})
        if partition_of(external_id) != partition:
            remote.append((partition_of(external_id), external_id, amount_minor))
            continue
        state = engine._cache.by_external(external_id)
        if state is None:
            raise NotFound("participant", external_id)
        local.append((state.id, amount_minor))
    return local, remote


async def send_transfer(
    engine: Engine,
    request: TransferCreate,
    *,
    partition: int,
    partition_of: Callable[[str], int],
    ops_for: Callable[[list[tuple[int, TransitCredit]]], list[Op]],
) -> TransferResult:
    """Apply a transfer on its source's partition; returns once its record is durable (raises a ScripError).

    ``partition_of(external_id)`` is the routing rule. ``ops_for([(destination partition, credit), ...])`` gives
    the ops written in the transfer's own record: the outbox records and the log offset (called even with no
    remote recipient, so the offset always commits with the effects).
    """
    request = validated(request)
    asset = _linked_asset(engine, request.program_id, request.asset_id)
    source_external_id = _routable(request.source_external_id, "source_external_id")
    if partition_of(source_external_id) != partition:
        raise ValidationFailed.field("source_external_id", "invalid", f"the source does not live on {partition}")
    source = engine._cache.by_external(source_external_id)
    if source is None:
        raise NotFound("participant", source_external_id)
    local, remote = _split_recipients(engine, request, asset, source, partition_of(source_external_id), partition_of)
    cache = engine._cache

    def work(tx: LedgerTx, state: ParticipantState) -> int:
        found = [(cache.get(participant_id), amount) for participant_id, amount in local]
        for who in [state, *(recipient for recipient, _ in found)]:
            assert who is not None, "participants are never deleted"
            if who.status != "ACTIVE":
                raise Conflict(f"participant {who.external_id!r} is {who.status}; transfers need ACTIVE ones")
        working = [(tx.touched(recipient.id) or recipient, amount) for recipient, amount in found]  # type: ignore[union-attr]
        in_transit = [(transit_account(destination), amount) for destination, _, amount in remote]
        return balance_ops.transfer(
            tx, state, working, asset, program_id=request.program_id, description=request.description, remote=in_transit
        )

    def answer(total: int, entry: JournalEntry, state: ParticipantState) -> tuple[TransferResult, list[Op]]:
        credits = [
            (
                destination,
                TransitCredit(
                    purpose="TRANSFER",
                    program_id=request.program_id,
                    asset_id=asset.id,
                    external_id=external_id,
                    amount_minor=amount_minor,
                    from_partition=partition,
                    reference_id=entry.id,
                    description=request.description,
                    source_external_id=source_external_id,
                ),
            )
            for destination, external_id, amount_minor in remote
        ]
        result = TransferResult(
            asset_id=asset.id,
            journal_entry_id=entry.id,
            recipient_count=len(request.recipients),
            source_id=state.id,
            total_amount=format_minor(total, asset.scale),
        )
        return result, ops_for(credits)

    result, replayed = await engine._operations.submit("TRANSFER", source.id, request, work, answer, TransferResult)
    if replayed:  # an earlier record with this idempotency key did it: only the position moves
        engine._writer.append(ops_for([]))
        await engine._caught_up()
    return result  # type: ignore[no-any-return]


async def receive_credit(
    engine: Engine,
    credit: TransitCredit,
    *,
    partition: int,
    ops_for: Callable[[list[tuple[int, TransitCredit]]], list[Op]],
) -> JournalEntry | ScripError:
    """Apply a credit from another partition once; returns its entry, or why it was refused and sent back.

    A refused TRANSFER credit (no such participant here, or not ACTIVE) becomes a RETURN credit to its origin;
    ``ops_for`` then gets it, and the caller writes those ops (with the log offset) in a record of their own. A
    RETURN is never refused: the source existed when it sent the value. A rule's REWARD creates its participant
    unless the program rejects unknown ones; refused, it becomes a REWARD_RETURN, which puts the value back into
    the issuance or the program wallet at the origin.
    """
    if credit.purpose == "REWARD_RETURN":
        return await _unissue(engine, credit, ops_for)
    try:
        asset = engine._catalog.asset(credit.asset_id)
        state = engine._cache.by_external(credit.external_id)
        if state is None and credit.purpose == "REWARD":
            state = await _created_recipient(engine, credit)
    except ScripError as error:  # this partition lacks it, or may not create it: the value goes back
        return await _send_back(engine, credit, error, partition, ops_for)
    if state is None:
        return await _send_back(engine, credit, NotFound("participant", credit.external_id), partition, ops_for)

    def work(tx: LedgerTx, participant: ParticipantState) -> None:
        if credit.purpose != "RETURN" and participant.status != "ACTIVE":
            raise Conflict(f"participant {credit.external_id!r} is {participant.status}; credits need ACTIVE ones")
        working = tx.edit(participant)
        if credit.purpose == "REWARD":
            _post_reward(tx, working, asset, credit)
            return
        legs = [
            ("SYSTEM", transit_account(credit.from_partition), asset.id, "AVAILABLE", -credit.amount_minor),
            ("PARTICIPANT", working.id, asset.id, "AVAILABLE", credit.amount_minor),
        ]
        tx.post(
            "TRANSFER",
            legs,
            rule_id=None,
            description=credit.description,
            reference_id=credit.reference_id,
            program_id=credit.program_id,
        )
        if asset.inventory_mode == "LOT":
            tx.open_lot(working, asset, credit.amount_minor, credit.program_id, None, None, False)

    def answer(_: None, entry: JournalEntry, _state: ParticipantState) -> tuple[JournalEntry, list[Op]]:
        return entry, ops_for([])

    try:
        entry, _ = await engine._operations.submit(
            "TRANSFER", state.id, _Keyless(credit.program_id), work, answer, JournalEntry
        )
    except Overloaded:
        raise
    except ScripError as refusal:  # whatever the reason, a refused credit goes back
        return await _send_back(engine, credit, refusal, partition, ops_for)
    return entry  # type: ignore[no-any-return]


async def _send_back(
    engine: Engine,
    credit: TransitCredit,
    refusal: ScripError,
    partition: int,
    ops_for: Callable[[list[tuple[int, TransitCredit]]], list[Op]],
) -> ScripError:
    """Refuse a TRANSFER credit: a RETURN credit to its origin, written (with the offset) in a record of its own."""
    if credit.purpose == "REWARD":  # owed back to where the value came from, the issuance or the wallet
        back = msgspec.structs.replace(
            credit, purpose="REWARD_RETURN", from_partition=partition, description=f"returned: {refusal.message}"
        )
        engine._writer.append(ops_for([(credit.from_partition, back)]))
        await engine._caught_up()
        return refusal
    if credit.purpose != "TRANSFER" or credit.source_external_id is None:
        # A RETURN is owed to the transfer's source, which existed when it sent the value: refused only if the
        # record was not one of ours. Kept as the record's outcome; the value stays in transit, for an operator.
        raise ValidationFailed(f"a {credit.purpose} credit was refused, its value stays in transit: {refusal}", {})
    back = msgspec.structs.replace(
        credit,
        purpose="RETURN",
        external_id=credit.source_external_id,
        from_partition=partition,
        description=f"returned: {refusal.message}",
        source_external_id=None,
    )
    engine._writer.append(ops_for([(credit.from_partition, back)]))
    await engine._caught_up()
    return refusal


# --- a rule's credit to another partition's participant (a referrer's, a rule's ``target``) -----------------------


def reward_credit(credit: RemoteCredit, partition: int, event_id: str) -> TransitCredit:
    """The outbox payload of a rule's credit to a participant of ``credit.target.partition``, made by event
    ``event_id`` here on ``partition`` (its value is in that partition's transit account already)."""
    return TransitCredit(
        purpose="REWARD",
        program_id=credit.program_id,
        asset_id=credit.asset_id,
        external_id=credit.target.external_id,
        amount_minor=credit.amount_minor,
        from_partition=partition,
        reference_id=credit.entry.id,
        description=credit.description or "",
        rule_id=credit.rule_id,
        event_id=event_id,
        expires_at=credit.expires_at,
        matures_at=credit.matures_at,
    )


async def _created_recipient(engine: Engine, credit: TransitCredit) -> ParticipantState:
    """The rule's target, created here as the event would have created it on one process (unless its program
    rejects unknown participants: NotFound). Its own record: a crash before the credit's finds it next time.
    Its id derives from the credit's origin entry under this store's prefix, so a replay recreates it."""
    program = engine._catalog.program(credit.program_id)
    if program.on_unknown_participant == "REJECT":
        raise NotFound("participant", credit.external_id)
    prefix = engine._world.ids.make(KIND_EVENT, 1)[:8]  # names this partition (_partition_ids.py)
    participant_id = prefix + legacy_participant_id(credit.reference_id, 0, credit.external_id)[8:]
    now = engine._clock()
    tx = LedgerTx(engine._world, now=now, id_seed=f"participant/{participant_id}", program_id=program.id)
    state = tx.adopt_new(new_participant(credit.external_id, now, participant_id))
    state.program_ids.append(program.id)
    state.invalidate()
    await engine._writer.wait_durable(engine._publisher.publish(tx.commit(now), []))
    return state


def _post_reward(tx: LedgerTx, working: ParticipantState, asset: Asset, credit: TransitCredit) -> None:
    """The destination's half of a rule's credit: a CREDIT entry from the origin's transit account, naming the
    origin's event, rule and entry; a LOT asset's lot keeps the rule's dates. The participant joins the program."""
    if credit.program_id not in working.program_ids:
        working.program_ids.append(credit.program_id)
        working.invalidate()
    tx.event_id = credit.event_id
    deferred = credit.matures_at is not None and credit.matures_at > tx.now
    legs = [
        ("SYSTEM", transit_account(credit.from_partition), asset.id, "AVAILABLE", -credit.amount_minor),
        ("PARTICIPANT", working.id, asset.id, "DEFERRED" if deferred else "AVAILABLE", credit.amount_minor),
    ]
    tx.post(
        "CREDIT",
        legs,
        rule_id=credit.rule_id,
        description=credit.description or None,
        reference_id=credit.reference_id,
        program_id=credit.program_id,
    )
    if asset.inventory_mode == "LOT":
        tx.open_lot(
            working, asset, credit.amount_minor, credit.program_id, credit.expires_at, credit.matures_at, deferred
        )


async def _unissue(
    engine: Engine, credit: TransitCredit, ops_for: Callable[[list[tuple[int, TransitCredit]]], list[Op]]
) -> JournalEntry:
    """A rule's credit refused at its destination comes back to where it came from: SYSTEM_ISSUANCE, or the
    program wallet (this partition's lease of it). No participant's value moves, so no mailbox is involved;
    the rule's budget stays consumed (docs/partitioned.md)."""
    asset = engine._catalog.asset(credit.asset_id)  # ours: the credit left from here
    if asset.issuance_policy == "UNLIMITED":
        source = ("SYSTEM", SYSTEM_ISSUANCE, asset.id, "AVAILABLE", credit.amount_minor)
    else:
        source = ("PROGRAM", credit.program_id, asset.id, "AVAILABLE", credit.amount_minor)
    now = engine._clock()
    tx = LedgerTx(engine._world, now=now, id_seed=f"reward-return/{credit.reference_id}", program_id=credit.program_id)
    tx.event_id = credit.event_id
    legs = [("SYSTEM", transit_account(credit.from_partition), asset.id, "AVAILABLE", -credit.amount_minor), source]
    tx.post(
        "CREDIT_RETURN",
        legs,
        rule_id=credit.rule_id,
        description=credit.description,
        reference_id=credit.reference_id,
        program_id=credit.program_id,
    )
    changes = tx.commit(now)
    await engine._writer.wait_durable(engine._publisher.publish(changes, ops_for([])))
    return changes.entries[0]


async def run_operation(
    engine: Engine,
    operation: str,
    participant_id: str,
    request: BalanceAdjust | BalanceOperation,
    *,
    record_ops: Callable[[Any], list[Op]],
) -> AdjustResult | BalanceOperationResult:
    """A balance operation from the log (the front's ``POST …/balances/{operation}``): the embedded operation
    itself, with ``record_ops(answer)`` (the log offset, the answer kept under it, its key's claim) in its own
    record; an answer replayed for the same idempotency key writes them in a record of their own. Returns once
    durable; raises the embedded operation's ScripError when refused (nothing written then)."""
    operations = engine._operations
    if operation == "ADJUST":
        assert isinstance(request, BalanceAdjust)
        return await operations.adjust(participant_id, request, record_ops)
    assert isinstance(request, BalanceOperation)
    return await operations.balance_operation(operation, participant_id, request, record_ops)


# What a state write from the log calls, by the write's name (the front's state routes,
# scrip_actor/partitioned/_state_writes.py): each takes the engine, the participant id, the write's arguments and
# record_ops (called with the answer: the participant, or a tier write's TierState or None).
_STATE_WRITES: dict[str, Callable[..., Any]] = {
    "TAGS_REPLACE": lambda engine, pid, args, ops: engine._participant_admin.replace_tags(pid, args["tags"], ops),
    "TAG_ADD": lambda engine, pid, args, ops: engine._participant_admin.add_tags(pid, [args["key"]], ops),
    "TAG_REMOVE": lambda engine, pid, args, ops: engine._participant_admin.remove_tag(pid, args["key"], ops),
    "ATTRIBUTES_MERGE": lambda engine, pid, args, ops: engine._participant_admin.set_attributes(
        pid, args["attributes"], ops
    ),
    "ATTRIBUTE_SET": lambda engine, pid, args, ops: engine._participant_admin.set_attributes(
        pid, {args["key"]: args["value"]}, ops
    ),
    "ATTRIBUTE_DELETE": lambda engine, pid, args, ops: engine._participant_admin.delete_attribute(
        pid, args["key"], ops
    ),
    "COUNTER_SET": lambda engine, pid, args, ops: engine._participant_admin.set_counter(
        pid, args["key"], args["value"], args["reset_after"], ops
    ),
    "COUNTER_DELETE": lambda engine, pid, args, ops: engine._participant_admin.delete_counter(pid, args["key"], ops),
    "PROFILE_UPDATE": lambda engine, pid, args, ops: engine._participant_admin.update_participant(
        pid, args["profile"], ops
    ),
    "STATUS_SET": lambda engine, pid, args, ops: engine._participant_admin.set_participant_status(
        pid, args["value"], ops
    ),
    "TIER_SET": lambda engine, pid, args, ops: engine.tiers.set_state(
        pid, args["program_id"], args["key"], args["tier"], ops
    ),
    "TIER_DELETE": lambda engine, pid, args, ops: engine.tiers.delete_state(pid, args["program_id"], args["key"], ops),
}
STATE_WRITE_NAMES = frozenset(_STATE_WRITES)


async def run_state_write(
    engine: Engine,
    write: str,
    participant_id: str,
    arguments: dict[str, Any],
    *,
    record_ops: Callable[[Any], list[Op]],
) -> Any:
    """A participant's state write from the log (the front's ``PUT``/``PATCH``/``DELETE …/state/...``): the
    embedded edit itself, with ``record_ops(participant)`` (the log offset, the answer kept under it) in the edit's
    own record. Returns once durable; raises the embedded edit's ScripError when refused (nothing written then).

    ``arguments``: ``key`` (the tag or key of the path), ``tags``, ``attributes``, ``value`` (a status for
    STATUS_SET), ``reset_after``, ``profile`` (a ParticipantUpdate), ``program_id`` and ``tier`` (a TierStateSet),
    as the write takes them. Returns the answer: the participant, or a tier write's TierState (None for a delete)."""
    assert write in _STATE_WRITES, write
    answer: Any = await _STATE_WRITES[write](engine, participant_id, arguments, record_ops)
    return answer


async def run_participant_upsert(
    engine: Engine,
    request: ParticipantCreate,
    participant_id: str,
    *,
    record_ops: Callable[[Participant, bool], list[Op]],
) -> tuple[Participant, bool]:
    """``POST /v1/participants`` from the log: the embedded upsert, a new participant getting ``participant_id``
    (the front's, of the partition the external id routes to), with ``record_ops(participant, created)`` in its
    own record. Returns ``(participant, created)`` once durable; raises the embedded upsert's ScripError."""
    return await engine._participant_admin.create_participant(request, participant_id, record_ops)


async def run_redemption(
    engine: Engine,
    participant_id: str,
    request: RedemptionCreate | ItemRedemptionCreate,
    redemption_id: str,
    *,
    record_ops: Callable[[Redemption], list[Op]],
    replay_ops: Callable[[Redemption], list[Op]],
) -> Redemption:
    """A redemption from the log (the front's ``POST /v1/participants/{id}/redemptions``, or ``…/items`` for a
    catalog reward): the embedded redemption, a new one getting ``redemption_id`` (the front's, of the
    participant's partition), with ``record_ops(redemption)`` in its own record, or ``replay_ops`` in a record of
    their own when the idempotency key answered it before. Returns once durable; raises the embedded
    redemption's ScripError when refused."""
    create = engine.redemptions.create_item if isinstance(request, ItemRedemptionCreate) else engine.redemptions.create
    redemption, _ = await create(
        participant_id,
        request,  # type: ignore[arg-type]
        redemption_id=redemption_id,
        record_ops=(record_ops, replay_ops),
    )
    return redemption


async def run_reversal(
    engine: Engine,
    redemption_id: str,
    request: ReversalCreate,
    reversal_id: str,
    *,
    record_ops: Callable[[Reversal], list[Op]],
    replay_ops: Callable[[Reversal], list[Op]],
) -> Reversal:
    """A redemption's reversal from the log (the front's ``POST /v1/redemptions/{id}/reverse``): the embedded
    reversal, a new one getting ``reversal_id`` (the front's), with ``record_ops(reversal)`` in its own record, or
    ``replay_ops`` in a record of their own when the idempotency key answered it before. Returns once durable;
    raises the embedded reversal's ScripError when refused (a redemption not on this partition is its 404)."""
    reversal, _ = await engine.redemptions.reverse(
        redemption_id, request, reversal_id=reversal_id, record_ops=(record_ops, replay_ops)
    )
    return reversal


def redemption_owner(engine: Engine, redemption_id: str) -> tuple[str, str] | None:
    """The ``(participant id, program id)`` of a redemption stored on this partition; None if there is none (a
    reversal's record names only its redemption: the applier parks it behind that participant's events and
    claims its key in that program's namespace)."""
    try:
        redemption = engine.redemptions.get(redemption_id)
    except NotFound:
        return None
    return redemption.participant_id, redemption.program_id
