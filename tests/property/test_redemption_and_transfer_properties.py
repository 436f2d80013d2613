"""The rest of the money-out side (docs/money-out.md): random interleavings of redemptions, partial and full
reversals of earlier redemptions, transfers to one to three recipients, catalog redemptions against small limits,
credits (events whose lots expire and vest, back-dated or not; adjustments) and overdrafts, status changes, and
time with sweeps, on a SIMPLE asset ``S`` (scale 2) and a LOT asset ``L`` (scale 0).

The companion of ``test_balance_operation_properties.py``, and built the same way: the oracle is the engine's own
last *checked* state of every participant, settled at the clock's ``now`` the way the docs say due lots settle
(that file's :func:`settled`, reused here). Each step is predicted from it — which call is refused and with which
error (and ``details["reason"]`` for the catalog), which lots a spend takes (FIFO, only spendable ones), which lots
a reversal restores (newest first, with their original dates, expired again at once if their expiry passed), and
every participant's balances after. After every step:

* the balances are the prediction, and a refusal changed nothing (beyond settling what was due) and wrote no
  journal entry but settlement's;
* every participant's balance per bucket is the sum of its journal postings, every entry and every asset's
  postings (participants and system accounts) sum to zero;
* for the LOT asset each bucket is its lots' sum (``available`` = AVAILABLE lots − overdraft);
* every redemption's ``reversed_amount`` is at most its amount and is the sum of its reversals, its status follows;
* every reward's ``redeemed_count`` is the units of its unreversed catalog redemptions, never above ``max_total``,
  and no participant holds more than ``max_per_participant``;
* an ``idempotency_key`` answers the first result again (``created`` False) and 409s for another request;
* two reversals of all that is left, sent at once, give it back once (the other is a 409).

Spending never takes expired or unvested value: the prediction takes only AVAILABLE lots not yet expired, after
settling, and refuses when those (less an overdraft) fall short; the answer's lots must be exactly those. A
reversal is modelled as allowed whatever the participant's status (the docs list a 409 for redemptions and
transfers, none for reversals). At the end every participant's redemptions list once each, newest first, a
redemption's ``reference_id`` chain is it and its reversals, and ``verify`` passes. ``--run-slow`` runs many
more, longer sequences.

A reversal's ``idempotency_key`` is made unique per redemption here: the engine does not tell two redemptions
apart by key (see ``test_a_reversal_key_reused_for_another_redemption_is_not_answered_with_the_first``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrip_actor import (
    AssetCreate,
    BalanceAdjust,
    Conflict,
    CreditAction,
    Engine,
    EventSubmit,
    IdempotencyConflict,
    InsufficientFunds,
    ItemRedemptionCreate,
    JournalEntry,
    Lot,
    NotFound,
    ParticipantCreate,
    ProgramCreate,
    RedemptionCreate,
    ReversalCreate,
    RewardCreate,
    ScripError,
    SelfTransfer,
    TransferCreate,
    TransferRecipient,
    ValidationFailed,
    open_engine,
)
from tests.conftest import ManualClock, small_config
from tests.helpers import rule
from tests.property.test_balance_operation_properties import Snapshot, check_invariants, settled

PARTICIPANTS = ["p0", "p1", "p2"]
GHOST = "ghost"  # never created: a call naming it is a 404
LETTERS = ("S", "L")
BUCKETS = ("AVAILABLE", "HELD", "DEFERRED")
SETTLEMENT = ("EXPIRATION", "MATURITY")
START = datetime(2026, 3, 1, tzinfo=UTC)

amounts = st.integers(min_value=1, max_value=3000)  # minor units of S; L maps it to a few points
letters = st.sampled_from(["L", "L", "S"])
someone = st.sampled_from([*PARTICIPANTS, *PARTICIPANTS, *PARTICIPANTS, GHOST])
keys = st.sampled_from([None, None, None, None, None, "k1", "k2"])
# A recipient, as an offset from the source (0: the source itself, a self-transfer), or the ghost.
recipient = st.sampled_from([1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 0, GHOST])
rarely = st.sampled_from([False, False, False, False, False, False, False, True])
EVENT_KINDS = ["earn_s", "earn_l", "earn_l_short", "vest_l", "vest_x"]
event = st.tuples(
    st.just("event"),
    st.sampled_from(PARTICIPANTS),
    st.sampled_from(EVENT_KINDS),
    amounts,
    st.sampled_from([0, 0, 3, 31]),
)
redeem = st.tuples(st.just("redeem"), someone, letters, amounts, keys)
# (which earlier redemption, and whether to name none instead; its share of what is left, in eighths; all, a
# part, or the wrong kind of part: an amount for a UNIT_BASED reward's, a quantity for the others; the key's suffix)
reverse = st.tuples(
    st.just("reverse"),
    st.integers(0, 60),
    rarely,
    st.integers(0, 10),
    st.sampled_from(["all", "part", "part", "part", "wrong"]),
    st.sampled_from([None, None, "a", "b"]),
)
transfer = st.tuples(
    st.just("transfer"),
    st.sampled_from(PARTICIPANTS),
    letters,
    st.lists(st.tuples(recipient, amounts), min_size=1, max_size=3),
    keys,
)
item = st.tuples(st.just("item"), st.sampled_from(PARTICIPANTS), st.integers(0, 3), amounts, keys)
# (one_of draws its branches evenly: the operations under test come more often.)
operation = st.one_of(
    event,
    event,
    st.tuples(st.just("credit"), st.sampled_from(PARTICIPANTS), letters, amounts),
    st.tuples(st.just("overdraw"), st.sampled_from(PARTICIPANTS), letters, amounts),
    redeem,
    redeem,
    reverse,
    reverse,
    reverse,
    transfer,
    transfer,
    item,
    item,
    st.tuples(st.just("again")),  # the last money-out call once more, key and all (a client's retry)
    st.tuples(st.just("race"), st.integers(0, 60)),  # two full reversals of one redemption at once
    st.tuples(st.just("status"), st.sampled_from(PARTICIPANTS), st.sampled_from(["ACTIVE", "ACTIVE", "SUSPENDED"])),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=40), st.booleans()),
)

# The LOT rules' lots: (matures after, expires after) their event's timestamp.
LOT_CREDITS = {
    "earn_l": (None, timedelta(hours=48)),
    "earn_l_short": (None, timedelta(hours=6)),
    "vest_l": (timedelta(hours=24), None),
    "vest_x": (timedelta(hours=24), timedelta(hours=30)),
}


# --- the world and the model ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardSpec:
    """A catalog reward as the test made it; its counts are derived from the records."""

    id: str
    letter: str
    unit_cost_minor: int | None  # None: AMOUNT_BASED (its minimum is ``minimum_minor``)
    minimum_minor: int
    max_total: int | None
    max_per_participant: int | None
    available_until: datetime | None


@dataclass
class Record:
    """A redemption as the model knows it: what it spent (LOT: (lot id, minor, created_at, expires_at), oldest
    first) and the amounts of its reversals so far."""

    id: str
    participant_id: str
    letter: str
    amount_minor: int
    spent: list[tuple[str, int, datetime, datetime | None]] | None
    reward: RewardSpec | None = None
    units: int = 0
    reversals: list[int] = field(default_factory=list)

    @property
    def reversed_minor(self) -> int:
        return sum(self.reversals)

    def units_held(self) -> int:
        """The catalog units this redemption still counts: UNIT_BASED by units not reversed; AMOUNT_BASED one
        until fully reversed."""
        if self.reward is None:
            return 0
        if self.reward.unit_cost_minor is None:
            return int(self.reversed_minor < self.amount_minor)
        return self.units - self.reversed_minor // self.reward.unit_cost_minor


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    program_id: str
    asset_ids: dict[str, str]
    ids: dict[str, str]  # external id -> participant id
    snapshots: dict[str, Snapshot] = field(default_factory=dict)  # participant id -> its last checked state
    records: list[Record] = field(default_factory=list)
    rewards: list[RewardSpec] = field(default_factory=list)
    stored: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # idempotency key -> (identity, result)
    sums: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (entity, asset, bucket) -> postings
    last_sequence: int = 0
    last_call: tuple[Any, ...] | None = None


@dataclass
class Expected:
    """What a call should do: refuse with ``error`` (and ``reason``), answer ``replay`` again, or succeed and leave
    ``balances`` (participant id -> letter -> settled (available, held, deferred); missing: unchanged)."""

    error: type[ScripError] | None = None
    reason: str | None = None
    replay: Any = None
    balances: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)
    settles: str | None = None  # the participant whose step ran the call: it settled every due lot first


def _in_step(expected: Expected, participant_id: str) -> Expected:
    expected.settles = participant_id
    return expected


def _scale(letter: str) -> int:
    return 0 if letter == "L" else 2


def _minor(text: str, scale: int) -> int:
    value = Decimal(text).scaleb(scale)
    assert value == value.to_integral_value(), text
    return int(value)


def _text(minor: int, scale: int) -> str:
    return str(Decimal(minor).scaleb(-scale))


def _pre(world: World, participant_id: str) -> Snapshot:
    return settled(world.snapshots[participant_id], world.clock.now)


def _plus(balances: dict[str, tuple[int, int, int]], letter: str, available: int = 0, deferred: int = 0) -> Any:
    a, h, d = balances[letter]
    return {**balances, letter: (a + available, h, d + deferred)}


def _spendable_lots(world: World, pre: Snapshot) -> list[Lot]:
    """The LOT lots a spend may take, FIFO: AVAILABLE and not past their expiry (nothing DEFERRED, nothing
    expired, whether or not the engine has settled it yet)."""
    now = world.clock.now
    return [lot for lot in pre.lots if lot.status == "AVAILABLE" and (lot.expires_at is None or lot.expires_at > now)]


def _spendable(world: World, pre: Snapshot, letter: str) -> int:
    """What may be spent, modelled from the lots (LOT) or the balance (SIMPLE)."""
    available = pre.balances[letter][0]
    if letter == "S":
        return available
    value = sum(lot.remaining_minor for lot in _spendable_lots(world, pre)) - max(0, -available)
    assert value == available, (pre, value)  # the settled model agrees with the balance
    return value


def _fifo(world: World, pre: Snapshot, amount_minor: int) -> list[tuple[Lot, int]]:
    taken, needed = [], amount_minor
    for lot in _spendable_lots(world, pre):
        if needed == 0:
            break
        take = min(needed, lot.remaining_minor)
        taken.append((lot, take))
        needed -= take
    assert needed == 0
    return taken


def _idempotent(world: World, key: str | None, identity: tuple[Any, ...]) -> Expected | None:
    """A key seen before: the same request answers its stored result, another one is a 409; else None."""
    if key is None or key not in world.stored:
        return None
    stored_identity, result = world.stored[key]
    if stored_identity != identity:
        return Expected(IdempotencyConflict)
    return Expected(replay=result)


def _identity(name: str, participant_id: str, request: Any, *extra: str) -> tuple[Any, ...]:
    return (name, participant_id, *extra, msgspec.structs.replace(request, idempotency_key=None))


# --- reading the engine, and the checks after every step ------------------------------------------------------------


async def _read(world: World, participant_id: str) -> Snapshot:
    participant = await world.engine.get_participant(participant_id)
    by_id = {b.asset_id: b for b in participant.balances}
    balances = {}
    for letter, asset_id in world.asset_ids.items():
        b = by_id.get(asset_id)
        scale = _scale(letter)
        balances[letter] = (
            (0, 0, 0) if b is None else tuple(_minor(x, scale) for x in (b.available, b.held, b.deferred))
        )
    lots = tuple(await world.engine.lots(participant_id, world.asset_ids["L"]))
    return Snapshot(participant.status, balances, lots)  # type: ignore[arg-type]


async def _journal_head(engine: Engine) -> int:
    page = await engine.list_journal_entries(limit=1)
    return page.data[0].sequence if page.data else 0


async def _observe(world: World) -> tuple[dict[str, Snapshot], int]:
    """Every participant's state and the journal head they match: the background sweeper may settle a due lot
    while the states are read, so read until no entry lands in between."""
    for _ in range(100):
        await world.engine.wait_idle()
        head = await _journal_head(world.engine)
        snapshots = {pid: await _read(world, pid) for pid in world.ids.values()}
        await world.engine.wait_idle()
        if await _journal_head(world.engine) == head:
            return snapshots, head
    raise AssertionError("the engine did not settle")


async def _entries_since(engine: Engine, sequence: int, head: int) -> list[JournalEntry]:
    """The journal entries after ``sequence`` up to ``head``, oldest first."""
    found: list[JournalEntry] = []
    cursor = None
    while True:
        page = await engine.list_journal_entries(limit=200, cursor=cursor)
        found += [entry for entry in page.data if sequence < entry.sequence <= head]
        if page.next_cursor is None or page.data[-1].sequence <= sequence:
            break
        cursor = page.next_cursor
    found.sort(key=lambda entry: entry.sequence)
    assert [entry.sequence for entry in found] == list(range(sequence + 1, head + 1))
    return found


async def _check_world(world: World) -> list[JournalEntry]:
    """Read everything; balances = journal sums, every asset sums to zero, LOT buckets = lots. Returns the new
    entries and leaves the new states in ``world.snapshots``."""
    snapshots, head = await _observe(world)
    entries = await _entries_since(world.engine, world.last_sequence, head)
    for entry in entries:
        per_asset: dict[str, int] = {}
        for posting in entry.postings:
            account = (posting.entity_id, posting.asset_id, posting.bucket)
            world.sums[account] = world.sums.get(account, 0) + posting.amount_minor
            per_asset[posting.asset_id] = per_asset.get(posting.asset_id, 0) + posting.amount_minor
        assert all(total == 0 for total in per_asset.values()), entry
    for asset_id in world.asset_ids.values():
        assert sum(total for (_, asset, _), total in world.sums.items() if asset == asset_id) == 0
    for participant_id, snapshot in snapshots.items():
        for letter, asset_id in world.asset_ids.items():
            journal = tuple(world.sums.get((participant_id, asset_id, bucket), 0) for bucket in BUCKETS)
            assert snapshot.balances[letter] == journal, (participant_id, letter, snapshot.balances, journal)
        check_invariants(snapshot)
    world.snapshots = snapshots
    world.last_sequence = head
    return entries


async def _after_call(world: World, expected: Expected, outcome: Any, op: tuple[Any, ...]) -> list[JournalEntry]:
    """Check a call's outcome against ``expected`` and every participant's settled balances; returns the new
    journal entries (only settlement's after a refusal or a replay)."""
    before = {pid: _pre(world, pid) for pid in world.ids.values()}
    entries = await _check_world(world)
    now = world.clock.now
    for participant_id, snapshot in world.snapshots.items():
        after = settled(snapshot, now)
        wanted = expected.balances.get(participant_id, before[participant_id].balances)
        assert after.balances == wanted, (op, participant_id, snapshot.balances, wanted)
        if participant_id not in expected.balances:  # untouched, or refused: its lots are as they were too
            assert after.lots == before[participant_id].lots, (op, participant_id, snapshot.lots)
        if participant_id == expected.settles:  # (the background sweeper may have settled the others' yet)
            assert after == snapshot, f"the step left due lots unsettled: {snapshot}"
    if isinstance(outcome, ScripError):
        assert expected.error is not None and isinstance(outcome, expected.error), (op, expected, outcome)
        if expected.error is Conflict:
            assert not isinstance(outcome, IdempotencyConflict), (op, outcome)
        assert outcome.details.get("reason") == expected.reason, (op, outcome.details, expected)
    else:
        assert expected.error is None, (op, expected, outcome)
        result, created = outcome
        assert created == (expected.replay is None), (op, outcome)
        if expected.replay is not None:
            assert result == expected.replay, (op, result, expected.replay)
    if isinstance(outcome, ScripError) or expected.replay is not None:
        assert all(entry.action_type in SETTLEMENT for entry in entries), (op, entries)
    return entries


def _check_records(world: World) -> None:
    """Every redemption and reward against the model; the limits hold."""
    for record in world.records:
        scale = _scale(record.letter)
        redemption = world.engine.redemptions.get(record.id)
        reversals = world.engine.redemptions.reversals(record.id)
        reversed_minor = _minor(redemption.reversed_amount, scale)
        assert _minor(redemption.amount, scale) == record.amount_minor
        assert reversed_minor <= record.amount_minor
        assert reversed_minor == sum(_minor(r.amount, scale) for r in reversals) == record.reversed_minor
        assert [_minor(r.amount, scale) for r in reversals] == record.reversals
        status = (
            "COMPLETED"
            if not record.reversals
            else "FULLY_REVERSED"
            if reversed_minor == record.amount_minor
            else "PARTIALLY_REVERSED"
        )
        assert redemption.status == status, (redemption, record)
    for spec in world.rewards:
        reward = world.engine.rewards.get(world.program_id, spec.id)
        mine = [record for record in world.records if record.reward == spec]
        assert reward.redeemed_count == sum(record.units_held() for record in mine), (reward, mine)
        assert spec.max_total is None or reward.redeemed_count <= spec.max_total
        for participant_id in world.ids.values():
            held = sum(record.units_held() for record in mine if record.participant_id == participant_id)
            assert spec.max_per_participant is None or held <= spec.max_per_participant


def _postings(entry: JournalEntry) -> list[tuple[str, str, int]]:
    return sorted((p.entity_id, p.bucket, p.amount_minor) for p in entry.postings)


def _entry(entries: list[JournalEntry], entry_id: str, action_type: str) -> JournalEntry:
    [entry] = [e for e in entries if e.id == entry_id]
    assert entry.action_type == action_type, entry
    assert [e.action_type for e in entries if e.action_type not in SETTLEMENT] == [action_type], entries
    return entry


async def _attempt(call: Any) -> Any:
    try:
        return await call
    except ScripError as error:
        return error


# --- credits, overdrafts, status, time ------------------------------------------------------------------------------


def _points(amount: int) -> int:
    return amount % 12 + 1


async def _event(world: World, number: int, op: tuple[Any, ...]) -> None:
    """A rule's credit: S, or an L lot that expires and/or vests (back-dated: maybe due already)."""
    _, external_id, kind, amount, hours_back = op
    participant_id = world.ids[external_id]
    pre = _pre(world, participant_id)
    active = pre.status == "ACTIVE"
    expected = Expected()
    if active and kind == "earn_s":
        expected.balances[participant_id] = _plus(pre.balances, "S", available=amount)
    elif active:
        points, age = _points(amount), timedelta(hours=hours_back)
        matures, expires = LOT_CREDITS[kind]
        if expires is not None and expires <= age:  # expired on arrival: it only repaid (part of) an overdraft
            change = {"available": min(points, max(0, -pre.balances["L"][0]))}
        elif matures is None or matures <= age:
            change = {"available": points}
        else:
            change = {"deferred": points}
        expected.balances[participant_id] = _plus(pre.balances, "L", **change)
    submitted = await world.engine.submit(
        EventSubmit(
            program_id=world.program_id,
            external_id=external_id,
            idempotency_key=f"event-{number}",
            event_data={"type": kind, "amount": float(Decimal(amount) / 100), "points": _points(amount)},
            event_timestamp=world.clock.now - timedelta(hours=hours_back),
        )
    )
    await world.engine.wait_idle()
    outcome = await world.engine.get_event(submitted.id)
    assert (outcome.status == "COMPLETED") == active, (op, outcome.status, outcome.error_message)
    await _after_call(world, expected, (None, True), op)


async def _adjust(world: World, op: tuple[Any, ...]) -> None:
    """An operator's CREDIT (an L lot without expiry), or a DEBIT with ``allow_negative``: an overdraft."""
    name, external_id, letter, amount = op
    participant_id = world.ids[external_id]
    amount = (amount % 8 + 1 if name == "credit" else amount % 20 + 1) if letter == "L" else amount
    pre = _pre(world, participant_id)
    sign = 1 if name == "credit" else -1
    expected = _in_step(Expected(Conflict) if pre.status != "ACTIVE" else Expected(), participant_id)
    if expected.error is None:
        expected.balances[participant_id] = _plus(pre.balances, letter, available=sign * amount)
    request = BalanceAdjust(
        program_id=world.program_id,
        asset_id=world.asset_ids[letter],
        type="CREDIT" if sign > 0 else "DEBIT",
        amount=_text(amount, _scale(letter)),
        description="property",
        allow_negative=sign < 0,
    )
    outcome = await _attempt(world.engine.adjust_balance(participant_id, request))
    await _after_call(world, expected, outcome if isinstance(outcome, ScripError) else (outcome, True), op)


async def _status(world: World, op: tuple[Any, ...]) -> None:
    participant_id = world.ids[op[1]]
    await world.engine.set_participant_status(participant_id, op[2])
    await _after_call(world, Expected(), (None, True), op)
    assert world.snapshots[participant_id].status == op[2]


async def _advance(world: World, op: tuple[Any, ...]) -> None:
    """Time passes; with a sweep every due lot settles now (else the next step, or the background sweeper)."""
    world.clock.advance(timedelta(hours=op[1]))
    if op[2]:
        world.engine.sweep_due()
        await world.engine.wait_idle()
    await _after_call(world, Expected(), (None, True), op)
    if op[2]:
        for snapshot in world.snapshots.values():
            assert settled(snapshot, world.clock.now) == snapshot, f"the sweep left due lots: {snapshot}"


# --- redemptions ----------------------------------------------------------------------------------------------------


def predict_spend(world: World, participant_id: str, letter: str, amount_minor: int) -> Expected:
    """A redemption's step: ACTIVE, then enough spendable value (never into an overdraft)."""
    pre = _pre(world, participant_id)
    if pre.status != "ACTIVE":
        return _in_step(Expected(Conflict), participant_id)
    if _spendable(world, pre, letter) < amount_minor:
        return _in_step(Expected(InsufficientFunds), participant_id)
    return _in_step(
        Expected(balances={participant_id: _plus(pre.balances, letter, available=-amount_minor)}), participant_id
    )


async def _redeem(world: World, op: tuple[Any, ...]) -> None:
    _, external_id, letter, amount, key = op
    amount_minor = amount % 10 + 1 if letter == "L" else amount
    participant_id = world.ids.get(external_id, external_id)
    request = RedemptionCreate(
        program_id=world.program_id,
        asset_id=world.asset_ids[letter],
        amount=_text(amount_minor, _scale(letter)),
        description="property",
        idempotency_key=key,
    )
    identity = _identity("REDEMPTION", participant_id, request)
    if participant_id not in world.snapshots:
        expected = Expected(NotFound)
    else:
        expected = _idempotent(world, key, identity) or predict_spend(world, participant_id, letter, amount_minor)
    await _spend(world, op, participant_id, letter, amount_minor, expected, None, 0, identity, key, request)


async def _spend(
    world: World,
    op: tuple[Any, ...],
    participant_id: str,
    letter: str,
    amount_minor: int,
    expected: Expected,
    reward: RewardSpec | None,
    units: int,
    identity: tuple[Any, ...],
    key: str | None,
    request: Any,
) -> None:
    """Run a redemption (plain or catalog) and check it: its answer, the lots it took, its entry; then record it."""
    pre = _pre(world, participant_id) if participant_id in world.snapshots else None
    if reward is None:
        call = world.engine.redemptions.create(participant_id, request)
    else:
        call = world.engine.redemptions.create_item(participant_id, request)
    outcome = await _attempt(call)
    entries = await _after_call(world, expected, outcome, op)
    if isinstance(outcome, ScripError) or expected.replay is not None:
        return
    assert pre is not None
    redemption, _ = outcome
    if key is not None:
        world.stored[key] = (identity, redemption)
    scale = _scale(letter)
    assert (redemption.participant_id, redemption.asset_id) == (participant_id, world.asset_ids[letter])
    assert (_minor(redemption.amount, scale), _minor(redemption.reversed_amount, scale)) == (amount_minor, 0)
    assert redemption.status == "COMPLETED"
    assert redemption.reward_catalog_item_id == (None if reward is None else reward.id)
    assert redemption.quantity == (None if reward is None else units)
    entry = _entry(entries, redemption.journal_entry_id, "REDEMPTION")
    assert entry.reference_id == redemption.id
    wanted = [(participant_id, "AVAILABLE", -amount_minor), ("SYSTEM_REDEMPTION", "AVAILABLE", amount_minor)]
    assert _postings(entry) == sorted(wanted), entry
    spent = None
    if letter == "L":
        taken = _fifo(world, pre, amount_minor)
        assert redemption.lots_processed is not None
        answered = [(x.id, _minor(x.amount, 0)) for x in redemption.lots_processed]
        assert answered == [(lot.id, take) for lot, take in taken], (op, answered, taken)
        _check_taken(world, participant_id, taken)
        spent = [(lot.id, take, lot.created_at, lot.expires_at) for lot, take in taken]
    else:
        assert redemption.lots_processed is None
    world.records.append(Record(redemption.id, participant_id, letter, amount_minor, spent, reward, units))


def _check_taken(world: World, participant_id: str, taken: list[tuple[Lot, int]]) -> None:
    """The lots a spend took were spendable then, and have exactly that much less now (used up: CONSUMED)."""
    now = world.clock.now
    after = {lot.id: lot for lot in settled(world.snapshots[participant_id], now).lots}
    for lot, take in taken:
        assert lot.status == "AVAILABLE", lot
        assert lot.matures_at is None or lot.matures_at <= now, lot  # vested
        assert lot.expires_at is None or lot.expires_at > now, lot  # not expired
        changed = after[lot.id]
        assert changed.remaining_minor == lot.remaining_minor - take, (lot, take, changed)
        assert changed.status == ("AVAILABLE" if changed.remaining_minor else "CONSUMED"), changed


# --- the catalog ----------------------------------------------------------------------------------------------------


def predict_item(world: World, participant_id: str, spec: RewardSpec, units: int, amount_minor: int) -> Expected:
    """A catalog redemption's step: ACTIVE, the reward available and under both limits, then the spend."""
    pre = _pre(world, participant_id)
    if pre.status != "ACTIVE":
        return _in_step(Expected(Conflict), participant_id)
    mine = [record for record in world.records if record.reward == spec]
    total = sum(record.units_held() for record in mine)
    own = sum(record.units_held() for record in mine if record.participant_id == participant_id)
    if spec.available_until is not None and world.clock.now >= spec.available_until:
        return _in_step(Expected(Conflict, "reward_unavailable"), participant_id)
    if spec.max_total is not None and total + units > spec.max_total:
        return _in_step(Expected(Conflict, "max_total_reached"), participant_id)
    if spec.max_per_participant is not None and own + units > spec.max_per_participant:
        return _in_step(Expected(Conflict, "max_per_participant_reached"), participant_id)
    return predict_spend(world, participant_id, spec.letter, amount_minor)


async def _item(world: World, op: tuple[Any, ...]) -> None:
    """Redeem a reward: UNIT_BASED by a quantity of 1-3, AMOUNT_BASED by an amount (under its minimum: a 400)."""
    _, external_id, index, amount, key = op
    spec = world.rewards[index]
    participant_id = world.ids[external_id]
    if spec.unit_cost_minor is not None:
        units = amount % 3 + 1
        amount_minor = units * spec.unit_cost_minor
        request = ItemRedemptionCreate(program_id=world.program_id, reward_id=spec.id, quantity=units)
    else:
        units, amount_minor = 1, amount % 700 + spec.minimum_minor - 100  # now and then under the minimum: a 400
        amount_text = _text(amount_minor, _scale(spec.letter))
        request = ItemRedemptionCreate(program_id=world.program_id, reward_id=spec.id, amount=amount_text)
    request = msgspec.structs.replace(request, idempotency_key=key)
    identity = _identity("REDEMPTION", participant_id, request)
    if amount_minor < spec.minimum_minor:
        expected = Expected(ValidationFailed)
    else:
        expected = _idempotent(world, key, identity) or predict_item(world, participant_id, spec, units, amount_minor)
    await _spend(world, op, participant_id, spec.letter, amount_minor, expected, spec, units, identity, key, request)


# --- reversals ------------------------------------------------------------------------------------------------------


def _reversal_request(record: Record | None, share: int, kind: str, suffix: str | None) -> ReversalCreate:
    """All that is left, a share of it (in eighths: above 8 is more than is left), or the wrong kind of part."""
    by_units = record is not None and record.reward is not None and record.reward.unit_cost_minor is not None
    key = None if suffix is None or record is None else f"{record.id}-{suffix}"
    if kind == "all" or record is None:
        return ReversalCreate(reason="property", idempotency_key=key)
    left = record.amount_minor - record.reversed_minor
    if by_units != (kind == "wrong"):
        unit_cost = record.reward.unit_cost_minor if by_units else None  # type: ignore[union-attr]
        quantity = max(1, share if unit_cost is None else left // unit_cost * share // 8)
        return ReversalCreate(reason="property", quantity=quantity, idempotency_key=key)
    amount = _text(max(1, left * share // 8), _scale(record.letter))
    return ReversalCreate(reason="property", amount=amount, idempotency_key=key)


def _requested(record: Record, request: ReversalCreate) -> int | None:
    if request.quantity is not None:
        assert record.reward is not None and record.reward.unit_cost_minor is not None
        return request.quantity * record.reward.unit_cost_minor
    return None if request.amount is None else _minor(request.amount, _scale(record.letter))


def predict_reversal(world: World, record: Record, requested: int | None) -> tuple[Expected, list[Any]]:
    """A reversal's step (whatever the participant's status): something left, no more than is left; the LOT
    lots restored newest first, repaying an overdraft first, an expired one expired again at once. Returns the
    prediction and the lots restored, as (parent lot id, minor, created_at, expires_at)."""
    left, owner = record.amount_minor - record.reversed_minor, record.participant_id
    if left == 0:
        return _in_step(Expected(Conflict), owner), []
    amount = left if requested is None else requested
    if amount > left:
        return _in_step(Expected(ValidationFailed), owner), []
    pre = _pre(world, owner)
    if record.spent is None:
        return _in_step(Expected(balances={owner: _plus(pre.balances, "S", available=amount)}), owner), []
    unreversed, back = [list(piece) for piece in record.spent], record.reversed_minor
    while back:  # earlier reversals gave back the newest lots first
        take = min(back, unreversed[-1][1])
        unreversed[-1][1] -= take
        back -= take
        if unreversed[-1][1] == 0:
            unreversed.pop()
    available = pre.balances["L"][0]
    restored, needed = [], amount
    for lot_id, value, created_at, expires_at in reversed(unreversed):
        if needed == 0:
            break
        take = min(needed, value)
        needed -= take
        repaid = min(take, max(0, -available))
        available += take
        if expires_at is not None and expires_at <= world.clock.now:
            available -= take - repaid  # what did not repay the overdraft goes to breakage
        restored.append((lot_id, take, created_at, expires_at))
    balances = {**pre.balances, "L": (available, *pre.balances["L"][1:])}
    return _in_step(Expected(balances={owner: balances}), owner), restored


async def _reverse(world: World, op: tuple[Any, ...]) -> None:
    _, pick, bogus, share, kind, suffix = op
    record = None if bogus or not world.records else world.records[pick % len(world.records)]
    request = _reversal_request(record, share, kind, suffix)
    restored: list[Any] = []
    if record is None:
        expected = Expected(NotFound)
    elif kind == "wrong":
        expected = Expected(ValidationFailed)  # refused before the step
    else:
        identity = _identity("REVERSAL", record.participant_id, request, record.id)
        expected = _idempotent(world, request.idempotency_key, identity) or Expected()
        if expected.error is None and expected.replay is None:
            expected, restored = predict_reversal(world, record, _requested(record, request))
    redemption_id = "no-such-redemption" if record is None else record.id
    outcome = await _attempt(world.engine.redemptions.reverse(redemption_id, request))
    entries = await _after_call(world, expected, outcome, op)
    if record is not None and not isinstance(outcome, ScripError) and expected.replay is None:
        reversal = outcome[0]
        if request.idempotency_key is not None:
            world.stored[request.idempotency_key] = (identity, reversal)
        await _check_reversal(world, record, reversal, restored, entries)


async def _check_reversal(
    world: World, record: Record, reversal: Any, restored: list[Any], entries: list[JournalEntry]
) -> None:
    """The answer, its REDEMPTION_REVERSAL entry, and each restored lot: a new lot with its original's dates,
    expired again (with its EXPIRATION entry) if that expiry has passed; then record it."""
    scale = _scale(record.letter)
    amount = _minor(reversal.amount, scale)
    assert reversal.redemption_id == record.id
    entry = _entry(entries, reversal.journal_entry_id, "REDEMPTION_REVERSAL")
    assert entry.reference_id == record.id
    wanted = [(record.participant_id, "AVAILABLE", amount), ("SYSTEM_REDEMPTION", "AVAILABLE", -amount)]
    assert _postings(entry) == sorted(wanted), entry
    record.reversals.append(amount)
    if record.spent is None:
        assert reversal.lots_restored is None
        return
    assert [_minor(x.amount, 0) for x in reversal.lots_restored] == [take for _, take, _, _ in restored]
    lots = {lot.id: lot for lot in world.snapshots[record.participant_id].lots}
    expirations = {e.reference_id: e for e in entries if e.action_type == "EXPIRATION"}
    now = world.clock.now
    for answered, (parent_id, take, created_at, expires_at) in zip(reversal.lots_restored, restored, strict=True):
        lot = lots[answered.id]
        assert (lot.parent_lot_id, lot.amount_minor) == (parent_id, take), lot
        assert (lot.created_at, lot.expires_at, lot.matures_at) == (created_at, expires_at, None), lot
        if expires_at is not None and expires_at <= now:
            assert lot.status in ("EXPIRED", "CONSUMED"), lot  # CONSUMED: it all repaid an overdraft
            if lot.status == "EXPIRED":
                expired = [
                    (p.bucket, p.amount_minor) for p in expirations[lot.id].postings if p.entity_type == "PARTICIPANT"
                ]
                assert len(expired) == 1 and expired[0][0] == "AVAILABLE" and 0 < -expired[0][1] <= take, expired
        else:
            assert lot.status in ("AVAILABLE", "CONSUMED"), lot


async def _race(world: World, op: tuple[Any, ...]) -> None:
    """Two reversals of all that is left of one redemption, at once: one gives it back, the other is a 409."""
    if not world.records:
        return
    record = world.records[op[1] % len(world.records)]
    expected, restored = predict_reversal(world, record, None)
    outcomes: list[Any] = [None, None]

    async def one(index: int) -> None:
        outcomes[index] = await _attempt(world.engine.redemptions.reverse(record.id, ReversalCreate(reason="race")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 0)
        nursery.start_soon(one, 1)
    refused = [outcome for outcome in outcomes if isinstance(outcome, ScripError)]
    assert all(type(outcome) is Conflict for outcome in refused), outcomes
    if expected.error is not None:
        assert len(refused) == 2, outcomes
        await _after_call(world, expected, refused[0], op)
        return
    assert len(refused) == 1, outcomes
    [won] = [outcome for outcome in outcomes if not isinstance(outcome, ScripError)]
    entries = await _after_call(world, expected, won, op)
    await _check_reversal(world, record, won[0], restored, entries)


# --- transfers ------------------------------------------------------------------------------------------------------


def predict_transfer(world: World, source: str, recipients: list[tuple[str, int]], letter: str) -> Expected:
    """A transfer's step, in the source's mailbox: every party ACTIVE, the source's spendable value covers the
    total; the source's lots go FIFO, each recipient gains its amount (a new lot, repaying an overdraft first)."""
    parties = {pid: _pre(world, pid) for pid in [source, *(pid for pid, _ in recipients)]}
    if any(pre.status != "ACTIVE" for pre in parties.values()):
        return _in_step(Expected(Conflict), source)
    total = sum(amount for _, amount in recipients)
    if _spendable(world, parties[source], letter) < total:
        return _in_step(Expected(InsufficientFunds), source)
    balances = {pid: pre.balances for pid, pre in parties.items()}
    balances[source] = _plus(balances[source], letter, available=-total)
    for pid, amount in recipients:
        balances[pid] = _plus(balances[pid], letter, available=amount)
    return _in_step(Expected(balances=balances), source)


async def _transfer(world: World, op: tuple[Any, ...]) -> None:
    _, external_id, letter, specs, key = op
    source = world.ids.get(external_id, external_id)
    order = PARTICIPANTS.index(external_id) if external_id in PARTICIPANTS else 0
    recipients = [
        (
            GHOST if offset == GHOST else world.ids[PARTICIPANTS[(order + offset) % len(PARTICIPANTS)]],
            amount % 6 + 1 if letter == "L" else amount % 1500 + 1,
        )
        for offset, amount in specs
    ]
    request = TransferCreate(
        program_id=world.program_id,
        asset_id=world.asset_ids[letter],
        recipients=[TransferRecipient(amount=_text(a, _scale(letter)), participant_id=pid) for pid, a in recipients],
        description="property",
        source_participant_id=source,
        idempotency_key=key,
    )
    identity = _identity("TRANSFER", source, request)
    if source not in world.snapshots or any(pid not in world.snapshots for pid, _ in recipients):
        expected = Expected(NotFound)
    elif any(pid == source for pid, _ in recipients):
        expected = Expected(SelfTransfer)
    else:
        expected = _idempotent(world, key, identity) or predict_transfer(world, source, recipients, letter)
    pre = _pre(world, source) if source in world.snapshots else None
    lots_before = {pid: {lot.id for lot in snapshot.lots} for pid, snapshot in world.snapshots.items()}
    outcome = await _attempt(world.engine.transfers.create(request))
    entries = await _after_call(world, expected, outcome, op)
    if isinstance(outcome, ScripError) or expected.replay is not None:
        return
    assert pre is not None
    result = outcome[0]
    if key is not None:
        world.stored[key] = (identity, result)
    _check_transfer(world, result, entries, pre, source, recipients, letter)
    if letter == "L":
        for pid in {pid for pid, _ in recipients}:
            new = [lot for lot in world.snapshots[pid].lots if lot.id not in lots_before[pid]]
            _check_received(world, new, [amount for who, amount in recipients if who == pid])


def _check_transfer(
    world: World,
    result: Any,
    entries: list[JournalEntry],
    pre: Snapshot,
    source: str,
    recipients: list[tuple[str, int]],
    letter: str,
) -> None:
    """The answer, the one TRANSFER entry, and the source's lots taken FIFO."""
    total = sum(amount for _, amount in recipients)
    assert (result.source_id, result.recipient_count) == (source, len(recipients))
    assert (result.asset_id, _minor(result.total_amount, _scale(letter))) == (world.asset_ids[letter], total)
    entry = _entry(entries, result.journal_entry_id, "TRANSFER")
    wanted = [(source, "AVAILABLE", -total), *((pid, "AVAILABLE", amount) for pid, amount in recipients)]
    assert _postings(entry) == sorted(wanted), entry
    if letter == "L":
        _check_taken(world, source, _fifo(world, pre, total))


def _check_received(world: World, new: list[Lot], amounts_minor: list[int]) -> None:
    """A recipient's new lots: one per amount, dated now, with no expiry and no vesting (the vintage resets)."""
    assert sorted(lot.amount_minor for lot in new) == sorted(amounts_minor), (new, amounts_minor)
    for lot in new:
        assert lot.created_at == world.clock.now, lot
        assert (lot.expires_at, lot.matures_at, lot.parent_lot_id) == (None, None, None), lot
        assert lot.status in ("AVAILABLE", "CONSUMED"), lot  # CONSUMED: it all repaid an overdraft


# --- the sequence ---------------------------------------------------------------------------------------------------


async def _setup(engine: Engine, clock: ManualClock) -> World:
    """A program with S and L, the LOT rules, four rewards with small limits, three participants with value of
    every kind (lots that expire in 6 h and 48 h, one that vests in 24 h, one without expiry), a redemption of
    each asset each and three catalog redemptions, so that a short sequence has something to spend and to reverse
    and soon meets the catalog's limits."""
    program = await engine.create_program(ProgramCreate(name="Money out"))
    asset_ids = {}
    for letter in LETTERS:
        created = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name=letter,
                symbol=letter,
                inventory_mode="LOT" if letter == "L" else "SIMPLE",
                issuance_policy="UNLIMITED",
                scale=_scale(letter),
            )
        )
        asset_ids[letter] = created.id
    s, lot = asset_ids["S"], asset_ids["L"]
    rules = [
        ("earn_s", CreditAction(asset_id=s, amount="event.amount")),
        ("earn_l", CreditAction(asset_id=lot, amount="event.points", expires_at="48h")),
        ("earn_l_short", CreditAction(asset_id=lot, amount="event.points", expires_at="6h")),
        ("vest_l", CreditAction(asset_id=lot, amount="event.points", matures_at="24h")),
        ("vest_x", CreditAction(asset_id=lot, amount="event.points", matures_at="24h", expires_at="30h")),
    ]
    for kind, action in rules:
        await rule(engine, program, f"event.type == '{kind}'", [action])
    world = World(engine, clock, program.id, asset_ids, {})
    world.rewards = [await _reward(world, index, *spec) for index, spec in enumerate(REWARDS)]
    for external_id in PARTICIPANTS:
        created_participant, _ = await engine.create_participant(ParticipantCreate(external_id=external_id))
        world.ids[external_id] = created_participant.id
    await _check_world(world)
    seeds = [("earn_s", 2000), ("earn_l_short", 5), ("earn_l", 6), ("vest_l", 7)]
    for number, (kind, amount) in enumerate(seeds):
        clock.advance(timedelta(hours=1))
        for index, external_id in enumerate(PARTICIPANTS):
            await _event(world, -1 - number * len(PARTICIPANTS) - index, ("event", external_id, kind, amount, 0))
    for external_id in PARTICIPANTS:
        await _adjust(world, ("credit", external_id, "L", 3))
        await _redeem(world, ("redeem", external_id, "L", 7, None))  # 8 points: the 6 h lot and part of the 48 h
        await _redeem(world, ("redeem", external_id, "S", 500, None))
    # and the catalog near its limits: p0 holds its 2 of reward 0's 5 units, p2 3 of reward 1's 4, p1 its 1 of
    # reward 2's 3
    for catalog in (("item", "p0", 0, 1, None), ("item", "p2", 1, 2, None), ("item", "p1", 2, 100, None)):
        await _item(world, catalog)
    return world


# (letter, unit cost (None: AMOUNT_BASED), the least it costs, max_total, max_per_participant, open for hours from START)
REWARDS: list[tuple[str, int | None, int, int | None, int | None, int | None]] = [
    ("L", 2, 2, 5, 2, None),
    ("S", 300, 300, 4, 3, None),
    ("S", None, 500, 3, 1, None),
    ("L", 1, 1, None, None, 30),
]


async def _reward(
    world: World,
    index: int,
    letter: str,
    unit_cost_minor: int | None,
    minimum_minor: int,
    max_total: int | None,
    max_per_participant: int | None,
    hours_open: int | None,
) -> RewardSpec:
    until = None if hours_open is None else START + timedelta(hours=hours_open)
    reward = await world.engine.rewards.create(
        world.program_id,
        RewardCreate(
            name=f"reward {index}",
            redemption_type="UNIT_BASED" if unit_cost_minor is not None else "AMOUNT_BASED",
            asset_id=world.asset_ids[letter],
            unit_cost=_text(minimum_minor, _scale(letter)),
            status="ACTIVE",
            max_total=max_total,
            max_per_participant=max_per_participant,
            available_until=until,
        ),
    )
    return RewardSpec(reward.id, letter, unit_cost_minor, minimum_minor, max_total, max_per_participant, until)


STEPS = {  # and "event", which takes the step's number too (for its idempotency key)
    "credit": _adjust,
    "overdraw": _adjust,
    "redeem": _redeem,
    "reverse": _reverse,
    "transfer": _transfer,
    "item": _item,
    "race": _race,
    "status": _status,
    "advance": _advance,
}
MONEY_OUT = ("redeem", "reverse", "transfer", "item")


async def _step(world: World, number: int, op: tuple[Any, ...]) -> None:
    if op[0] == "again":
        if world.last_call is None:
            return
        op = world.last_call
    if op[0] in MONEY_OUT:
        world.last_call = op
    if op[0] == "event":
        await _event(world, number, op)
    else:
        await STEPS[op[0]](world, op)
    _check_records(world)


async def _audit(world: World) -> None:
    """The end of a sequence: settle everything due, check it all once more, and verify from the journal."""
    world.engine.sweep_due()
    await world.engine.wait_idle()
    await _check_world(world)
    _check_records(world)
    for participant_id in world.ids.values():
        await _check_listing(world, participant_id)
    for record in world.records:
        page = await world.engine.list_journal_entries(limit=200, reference_id=record.id)
        chain = sorted(entry.action_type for entry in page.data)
        assert chain == ["REDEMPTION", *["REDEMPTION_REVERSAL"] * len(record.reversals)], (record, chain)
    report = await world.engine.verify()
    assert report.ok, report.problems
    assert report.events_pending == 0


async def _check_listing(world: World, participant_id: str) -> None:
    """A participant's redemptions, two a page: each one once, newest first (redemptions made at the same moment
    of the manual clock may come in any order), and the status filter keeps exactly its own."""
    listed, cursor = [], None
    while True:
        page = world.engine.redemptions.list_for(participant_id, limit=2, cursor=cursor)
        listed += page.data
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    mine = {record.id for record in world.records if record.participant_id == participant_id}
    assert sorted(redemption.id for redemption in listed) == sorted(mine)
    moments = [redemption.created_at for redemption in listed]
    assert moments == sorted(moments, reverse=True), moments
    for status in ("COMPLETED", "PARTIALLY_REVERSED", "FULLY_REVERSED"):
        page = world.engine.redemptions.list_for(participant_id, limit=200, status=status)
        wanted = {redemption.id for redemption in listed if redemption.status == status}
        assert {redemption.id for redemption in page.data} == wanted, status


async def _run_sequence(operations: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory() as directory:
        async with open_engine(config=small_config(Path(directory)), clock=clock) as engine:
            world = await _setup(engine, clock)
            for number, op in enumerate(operations):
                await _step(world, number, op)
            await _audit(world)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=25))
async def test_random_redemptions_reversals_and_transfers_keep_balances_lots_and_limits(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=10, max_size=80))
async def test_long_random_redemptions_reversals_and_transfers_keep_balances_lots_and_limits(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)


# --- what the sequences found ---------------------------------------------------------------------------------------


async def test_a_reversal_key_reused_for_another_redemption_is_not_answered_with_the_first(engine: Engine) -> None:
    program = await engine.create_program(ProgramCreate(name="Keys"))
    asset = await engine.create_asset(
        AssetCreate(
            program_id=program.id, name="S", symbol="S", inventory_mode="SIMPLE", issuance_policy="UNLIMITED", scale=2
        )
    )
    participant, _ = await engine.create_participant(ParticipantCreate(external_id="p"))
    credit = BalanceAdjust(program_id=program.id, asset_id=asset.id, type="CREDIT", amount="100", description="x")
    await engine.adjust_balance(participant.id, credit)
    spend = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="10", description="spend")
    first, _ = await engine.redemptions.create(participant.id, spend)
    second, _ = await engine.redemptions.create(participant.id, spend)
    await engine.redemptions.reverse(first.id, ReversalCreate(reason="returned", idempotency_key="k"))
    try:
        reversal, created = await engine.redemptions.reverse(
            second.id, ReversalCreate(reason="returned", idempotency_key="k")
        )
    except IdempotencyConflict:
        return  # as good: the key names another request
    assert (reversal.redemption_id, created) == (second.id, True), reversal
    assert engine.redemptions.get(second.id).status == "FULLY_REVERSED"
