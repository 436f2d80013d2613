"""Issue 12: random interleavings of events, adjustments, holds, releases, forfeits, void-holds, status changes and
time, on a SIMPLE asset, a PREFUNDED SIMPLE asset and a LOT asset whose lots expire and vest.

The oracle is the engine's own last *checked* state: before each step the test takes the participant's balances
and lots (as the previous step left them), settles them at the clock's ``now`` the way the docs say due lots
settle (maturity first, repaying an overdraft, then expiry; from whichever bucket the lot is in), and predicts the
step from that — which call is refused and with which error, how much moves, which lots it takes (FIFO), and the
balances after. After every step:

* the balances are exactly the prediction; a refused call changed nothing (beyond settling what was due) and wrote
  no journal entry but settlement's;
* held is never negative and never spent: an adjust DEBIT of AVAILABLE, or an event's DEBIT, leaves it alone;
* for the LOT asset, each bucket is the sum of the remaining value of its lots (``available`` = AVAILABLE lots −
  overdraft, and an overdraft leaves no AVAILABLE lot), closed lots are empty, split lots keep their parent's dates;
* an ``idempotency_key`` answers the first result again for the same request and 409s for another one, while a
  refused call stores nothing.

At the end of each sequence every participant's balance per bucket equals the sum of its journal postings, the
wallet equals its postings, every asset's postings sum to zero, and ``verify`` passes. The default run is small;
``--run-slow`` runs many more, longer sequences.
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
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    ParticipantCreate,
    ProgramCreate,
    open_engine,
)
from scrip_actor.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientFunds,
    NotFound,
    ScripError,
    ValidationFailed,
)
from scrip_actor.model import BalanceAdjust, BalanceOperation, JournalEntry, Lot
from tests.conftest import ManualClock, small_config
from tests.helpers import rule
from tests.property.report_audit import audit_reports, audit_schedule

PARTICIPANTS = ["p0", "p1", "p2"]
GHOST = "ghost"  # never created: every call about it is a 404
OPEN = ("AVAILABLE", "HELD", "DEFERRED")
SETTLEMENT = ("EXPIRATION", "MATURITY")
WALLET_START_MINOR = 10_000  # W is PREFUNDED: adjust credits and earn_w events draw on the program wallet

amounts = st.integers(min_value=1, max_value=3000)  # minor units; the LOT asset (scale 0) maps it to 1..8
maybe_amount = st.one_of(st.none(), amounts)  # None: "everything the selection holds"
keys = st.sampled_from([None, None, None, "k1", "k2", "k3"])
references = st.sampled_from([None, "r1", "r2"])
picks = st.one_of(st.none(), st.none(), st.none(), st.lists(st.integers(0, 40), min_size=1, max_size=3))
who = st.sampled_from([*PARTICIPANTS, *PARTICIPANTS, *PARTICIPANTS, GHOST])
assets = st.sampled_from(["L", "L", "S", "W"])
buckets = st.sampled_from(["AVAILABLE", "HELD"])
rarely = st.sampled_from([False, False, False, False, False, False, False, True])
EVENT_KINDS = ["earn_s", "spend_s", "earn_w", "earn_l", "earn_l_short", "vest_l", "vest_x", "spend_l", "overdraw_l"]
# An event may be back-dated (hours before now): its lots take their place among older ones, and may be due at once.
back_dated = st.sampled_from([0, 0, 0, 1, 7, 31])
event = st.tuples(st.just("event"), st.sampled_from(PARTICIPANTS), st.sampled_from(EVENT_KINDS), amounts, back_dated)
adjust = st.tuples(
    st.just("adjust"), who, assets, st.sampled_from(["CREDIT", "DEBIT"]), buckets, amounts, rarely, rarely, keys
)
hold = st.tuples(st.just("HOLD"), who, assets, maybe_amount, references, picks, keys)
release = st.tuples(st.just("RELEASE"), who, assets, maybe_amount, references, picks, keys)
# (one_of draws its branches evenly: the operations under test come twice.)
operation = st.one_of(
    event,
    event,
    adjust,
    adjust,
    hold,
    hold,
    release,
    release,
    st.tuples(st.just("FORFEIT"), who, assets, maybe_amount, references, picks, keys, buckets),
    st.tuples(st.just("VOID_HOLD"), who, assets, st.sampled_from(["r1", "r2"])),
    st.tuples(st.just("again")),  # the last adjust or operation once more, key and all (a client's retry)
    st.tuples(st.just("twin")),  # the last one again, twice at once under a new key: the second waits for the first
    st.tuples(st.just("status"), st.sampled_from(PARTICIPANTS), st.sampled_from(["ACTIVE", "ACTIVE", "SUSPENDED"])),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=60), st.booleans()),
    st.tuples(st.just("fund"), amounts),
)


# --- the world and its snapshots ------------------------------------------------------------------------------------


@dataclass
class World:
    """The program, its three assets (by letter), the participants' ids, and what the model knows."""

    engine: Engine
    clock: ManualClock
    program_id: str
    asset_ids: dict[str, str]  # "S", "W", "L" -> asset id
    ids: dict[str, str]  # external id -> participant id
    snapshots: dict[str, Snapshot] = field(default_factory=dict)  # participant id -> its last checked state
    wallet_minor: int = WALLET_START_MINOR
    stored: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # idempotency key -> (request, result)
    last_sequence: int = 0
    last_call: tuple[Any, ...] | None = None  # the last adjust or operation, for "again" and "twin"
    twin: bool = False  # send the next call twice, concurrently

    def scale(self, letter: str) -> int:
        return 0 if letter == "L" else 2


@dataclass(frozen=True)
class Snapshot:
    """One participant as the engine shows it: status, (available, held, deferred) per asset letter, its lots."""

    status: str
    balances: dict[str, tuple[int, int, int]]
    lots: tuple[Lot, ...]  # the LOT asset's lots, open and closed, FIFO (created_at, then number)


def _minor(text: str, scale: int) -> int:
    value = Decimal(text).scaleb(scale)
    assert value == value.to_integral_value(), text
    return int(value)


def _text(minor: int, scale: int) -> str:
    return str(Decimal(minor).scaleb(-scale))


async def _read(world: World, participant_id: str) -> Snapshot:
    participant = await world.engine.get_participant(participant_id)
    by_id = {b.asset_id: b for b in participant.balances}
    balances = {}
    for letter, asset_id in world.asset_ids.items():
        b = by_id.get(asset_id)
        scale = world.scale(letter)
        balances[letter] = (
            (0, 0, 0) if b is None else tuple(_minor(x, scale) for x in (b.available, b.held, b.deferred))
        )
    lots = tuple(await world.engine.lots(participant_id, world.asset_ids["L"]))
    return Snapshot(participant.status, balances, lots)  # type: ignore[arg-type]


async def _stable(world: World, participant_id: str) -> Snapshot:
    """Two equal reads in a row: the background sweeper may settle a lot between reading balances and lots."""
    await world.engine.wait_idle()
    previous = await _read(world, participant_id)
    for _ in range(100):
        current = await _read(world, participant_id)
        if current == previous:
            return current
        previous = current
        await world.engine.wait_idle()
    raise AssertionError("the participant's state did not settle")


def settled(snapshot: Snapshot, now: datetime) -> Snapshot:
    """``snapshot`` with every lot due by ``now`` settled, as docs/money-out.md says: in FIFO order, a DEFERRED lot
    that matures first moves to AVAILABLE (repaying an overdraft first), then a lot past its expiry leaves its
    bucket (AVAILABLE, HELD or DEFERRED) for breakage."""
    available, held, deferred = snapshot.balances["L"]
    overdraft = max(0, -available)
    lots = []
    for lot in snapshot.lots:
        remaining = lot.remaining_minor
        if _matures(lot, now):
            deferred -= remaining
            available += remaining
            repaid = min(overdraft, remaining)
            overdraft -= repaid
            remaining -= repaid
            lot = _changed(lot, remaining, "AVAILABLE" if remaining else "CONSUMED")
        if lot.status in OPEN and lot.expires_at is not None and lot.expires_at <= now:
            if lot.status == "AVAILABLE":
                available -= remaining
            elif lot.status == "HELD":
                held -= remaining
            else:
                deferred -= remaining
            lot = _changed(lot, 0, "EXPIRED")
        lots.append(lot)
    balances = {**snapshot.balances, "L": (available, held, deferred)}
    return Snapshot(snapshot.status, balances, tuple(lots))


def _matures(lot: Lot, now: datetime) -> bool:
    """A DEFERRED lot due to mature by ``now`` (one that expires first expires from DEFERRED instead)."""
    if lot.status != "DEFERRED" or lot.matures_at is None or lot.matures_at > now:
        return False
    return lot.expires_at is None or lot.expires_at > lot.matures_at


def _changed(lot: Lot, remaining: int, status: str) -> Lot:
    return msgspec.structs.replace(lot, remaining_minor=remaining, remaining=str(remaining), status=status)  # type: ignore[arg-type]


# --- the oracle -----------------------------------------------------------------------------------------------------


@dataclass
class Expected:
    """What a step should do: refuse with ``error``, or leave ``balances`` (and the wallet) and report the rest."""

    balances: dict[str, tuple[int, int, int]]
    wallet_minor: int
    error: type[ScripError] | None = None
    amount_minor: int | None = None
    taken: list[tuple[str, int]] | None = None  # (lot id, minor) for the LOT asset, FIFO
    replay: Any = None  # the stored result an idempotency key answers again
    moves_held: bool = False  # hold, release, forfeit of HELD, adjust of HELD: the only steps that may move it
    settles: bool = False  # the step ran in the participant's mailbox, so it settled what was due first


def _unchanged(world: World, pre: Snapshot | None, error: type[ScripError] | None = None) -> Expected:
    return Expected(dict(pre.balances) if pre else {}, world.wallet_minor, error)


def _with(pre: Snapshot, letter: str, available: int = 0, held: int = 0, deferred: int = 0) -> dict[str, Any]:
    a, h, d = pre.balances[letter]
    return {**pre.balances, letter: (a + available, h + held, d + deferred)}


def _selected(pre: Snapshot, bucket: str, lot_ids: frozenset[str] | None, reference: str | None) -> list[Lot]:
    """The open lots of ``bucket`` an operation may take from (the engine's LotSelection), FIFO."""
    return [
        lot
        for lot in pre.lots
        if lot.status == bucket
        and (lot_ids is None or lot.id in lot_ids)
        and (reference is None or lot.reference_id == reference)
    ]


def _fifo(lots: list[Lot], amount_minor: int) -> list[tuple[str, int]]:
    taken, needed = [], amount_minor
    for lot in lots:
        if needed == 0:
            break
        take = min(needed, lot.remaining_minor)
        taken.append((lot.id, take))
        needed -= take
    assert needed == 0
    return taken


def _within(value: int, amount_minor: int | None) -> int | None:
    """``balance_ops._amount_within``: the amount to process, or None when it is refused (422)."""
    if amount_minor is None:
        return value if value > 0 else None
    return amount_minor if value >= amount_minor else None


def predict_adjust(world: World, pre: Snapshot, op: tuple[Any, ...]) -> Expected:
    """An adjust inside the participant's step (the request already passed validation and idempotency)."""
    _, _, letter, kind, bucket, amount, allow_negative, _, _ = op
    if pre.status != "ACTIVE":
        return _unchanged(world, pre, Conflict)
    if kind == "DEBIT" and bucket == "HELD" and allow_negative:
        return _unchanged(world, pre, ValidationFailed)
    available, held, _ = pre.balances[letter]
    wallet = world.wallet_minor
    sign = 1 if kind == "CREDIT" else -1
    if kind == "CREDIT" and letter == "W" and wallet < amount:
        return _unchanged(world, pre, InsufficientFunds)
    if kind == "DEBIT" and bucket == "AVAILABLE" and available < amount and not allow_negative:
        return _unchanged(world, pre, InsufficientFunds)
    if kind == "DEBIT" and bucket == "HELD" and max(held, 0) < amount:
        return _unchanged(world, pre, InsufficientFunds)
    if letter == "W":
        wallet -= sign * amount
    delta = {"available": sign * amount} if bucket == "AVAILABLE" else {"held": sign * amount}
    return Expected(_with(pre, letter, **delta), wallet, amount_minor=amount, moves_held=bucket == "HELD")


def predict_operation(world: World, pre: Snapshot, op: tuple[Any, ...], lot_ids: frozenset[str] | None) -> Expected:
    """HOLD, RELEASE or FORFEIT inside the participant's step."""
    name, _, letter, amount, reference = op[:5]
    bucket = {"HOLD": "AVAILABLE", "RELEASE": "HELD"}.get(name) or op[7]
    if pre.status != "ACTIVE" and name != "FORFEIT":
        return _unchanged(world, pre, Conflict)
    if lot_ids is not None and not lot_ids <= {lot.id for lot in pre.lots if lot.status in OPEN}:
        return _unchanged(world, pre, ValidationFailed)
    available, held, _ = pre.balances[letter]
    lots = None
    if letter == "L":
        lots = _selected(pre, bucket, lot_ids, None if name == "HOLD" else reference)
        value = sum(lot.remaining_minor for lot in lots)
    else:
        value = max(available if bucket == "AVAILABLE" else held, 0)
    if bucket == "AVAILABLE":
        value = min(value, available)  # never more than is spendable (an overdraft leaves nothing)
    moved = _within(value, amount)
    if moved is None:
        return _unchanged(world, pre, InsufficientFunds)
    if name == "HOLD":
        balances = _with(pre, letter, available=-moved, held=moved)
    elif name == "RELEASE":
        balances = _with(pre, letter, available=moved, held=-moved)
    else:
        balances = _with(pre, letter, **{bucket.lower(): -moved})
    taken = None if lots is None else _fifo(lots, moved)
    moves_held = name != "FORFEIT" or bucket == "HELD"
    return Expected(balances, world.wallet_minor, amount_minor=moved, taken=taken, moves_held=moves_held)


# The LOT rules' lots, (matures after, expires after) their event's timestamp.
LOT_CREDITS = {
    "earn_l": (None, timedelta(hours=48)),
    "earn_l_short": (None, timedelta(hours=6)),
    "vest_l": (timedelta(hours=24), None),
    "vest_x": (timedelta(hours=24), timedelta(hours=30)),
}


def _lot_credit(pre: Snapshot, kind: str, points: int, age: timedelta) -> dict[str, int]:
    """What a LOT credit ``age`` old leaves once settled: a lot already past its expiry has only repaid (part of)
    an overdraft (value arriving in AVAILABLE does that first, at once or when it matures)."""
    matures, expires = LOT_CREDITS[kind]
    if expires is not None and expires <= age:
        return {"available": min(points, max(0, -pre.balances["L"][0]))}
    if matures is None or matures <= age:
        return {"available": points}
    return {"deferred": points}


def predict_event(world: World, pre: Snapshot, kind: str, amount: int, age: timedelta) -> tuple[Expected, bool]:
    """An event's rules on the model: (what it leaves once settled, whether it COMPLETES)."""
    points = _points(amount)
    if pre.status != "ACTIVE":
        return _unchanged(world, pre), False
    available_s, available_l = pre.balances["S"][0], pre.balances["L"][0]
    wallet = world.wallet_minor
    changes: dict[str, tuple[str, dict[str, int]]] = {
        "earn_s": ("S", {"available": amount}),
        "spend_s": ("S", {"available": -amount}),
        "earn_w": ("W", {"available": 150}),
        "earn_l": ("L", {"available": points}),
        "earn_l_short": ("L", {"available": points}),
        "vest_l": ("L", {"deferred": points}),
        "vest_x": ("L", {"deferred": points}),
        "spend_l": ("L", {"available": -points}),
        "overdraw_l": ("L", {"available": -points}),
    }
    if (
        (kind == "spend_s" and available_s < amount)
        or (kind == "spend_l" and available_l < points)
        or (kind == "earn_w" and wallet < 150)
    ):
        return _unchanged(world, pre), False
    if kind == "earn_w":
        wallet -= 150
    letter, delta = changes[kind]
    if kind in LOT_CREDITS:
        delta = _lot_credit(pre, kind, points, age)
    return Expected(_with(pre, letter, **delta), wallet), True


def _points(amount: int) -> int:
    return amount % 29 + 1


def _scaled(letter: str, amount: int) -> int:
    return amount % 8 + 1 if letter == "L" else amount


# --- the steps ------------------------------------------------------------------------------------------------------


async def _setup(engine: Engine, clock: ManualClock) -> World:
    program = await engine.create_program(ProgramCreate(name="Holds"))
    asset_ids = {}
    for letter, mode, policy, scale in (
        ("S", "SIMPLE", "UNLIMITED", 2),
        ("W", "SIMPLE", "PREFUNDED", 2),
        ("L", "LOT", "UNLIMITED", 0),
    ):
        created = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name=letter,
                symbol=letter,
                inventory_mode=mode,  # type: ignore[arg-type]
                issuance_policy=policy,  # type: ignore[arg-type]
                scale=scale,
            )
        )
        asset_ids[letter] = created.id
    s, w, lot = asset_ids["S"], asset_ids["W"], asset_ids["L"]
    rules = [
        ("earn_s", [CreditAction(asset_id=s, amount="event.amount")]),
        ("spend_s", [DebitAction(asset_id=s, amount="event.amount")]),
        ("earn_w", [CreditAction(asset_id=w, amount="1.50")]),
        ("earn_l", [CreditAction(asset_id=lot, amount="event.points", expires_at="48h")]),
        ("earn_l_short", [CreditAction(asset_id=lot, amount="event.points", expires_at="6h")]),
        ("vest_l", [CreditAction(asset_id=lot, amount="event.points", matures_at="24h")]),
        ("vest_x", [CreditAction(asset_id=lot, amount="event.points", matures_at="24h", expires_at="30h")]),
        ("spend_l", [DebitAction(asset_id=lot, amount="event.points")]),
        ("overdraw_l", [DebitAction(asset_id=lot, amount="event.points", allow_negative=True)]),
    ]
    for kind, actions in rules:
        await rule(engine, program, f"event.type == '{kind}'", actions)  # type: ignore[arg-type]
    await engine.fund(program.id, w, _text(WALLET_START_MINOR, 2))
    world = World(engine, clock, program.id, asset_ids, {})
    for external_id in PARTICIPANTS:
        created_participant, _ = await engine.create_participant(ParticipantCreate(external_id=external_id))
        world.ids[external_id] = created_participant.id
        world.snapshots[created_participant.id] = await _stable(world, created_participant.id)
    # Something to hold from the start, so that a short sequence does more than refuse: per participant about
    # 20.00 S, 1.50 W, and LOT lots that expire in 6 h and in 48 h and one that vests in 24 h, an hour apart (FIFO
    # by age); then two holds each.
    seeds = ["earn_s", "earn_w", "earn_l_short", "earn_l", "vest_l"]
    for number, kind in enumerate(seeds * len(PARTICIPANTS)):
        if number % len(PARTICIPANTS) == 0:
            clock.advance(timedelta(hours=1))
        await _event(world, -1 - number, ("event", PARTICIPANTS[number % len(PARTICIPANTS)], kind, 2000 + number, 0))
    for external_id in PARTICIPANTS:  # and holds: 5 L under r1, 5.00 S under r2
        await _operation(world, ("HOLD", external_id, "L", 100, "r1", None, None))
        await _operation(world, ("HOLD", external_id, "S", 500, "r2", None, None))
    world.last_sequence = await _journal_head(engine)
    return world


async def _journal_head(engine: Engine) -> int:
    page = await engine.list_journal_entries(limit=1)
    return page.data[0].sequence if page.data else 0


async def _step(world: World, number: int, op: tuple[Any, ...]) -> None:
    if op[0] in ("again", "twin"):
        if world.last_call is None:
            return
        if op[0] == "twin":
            world.twin = True
            key_at = 8 if world.last_call[0] == "adjust" else 6
            op = (*world.last_call[:key_at], f"twin-{number}", *world.last_call[key_at + 1 :])
        else:
            op = world.last_call
    kind = op[0]
    if kind in ("adjust", "HOLD", "RELEASE", "FORFEIT"):
        world.last_call = op
    if kind == "event":
        await _event(world, number, op)
    elif kind == "adjust":
        await _adjust(world, op)
    elif kind in ("HOLD", "RELEASE", "FORFEIT"):
        await _operation(world, op)
    elif kind == "VOID_HOLD":
        await _void_hold(world, op)
    elif kind == "status":
        participant_id = world.ids[op[1]]
        await world.engine.set_participant_status(participant_id, op[2])
        snapshot = world.snapshots[participant_id]
        world.snapshots[participant_id] = Snapshot(op[2], snapshot.balances, snapshot.lots)
        await _check_participant(world, participant_id, _unchanged(world, None))
    elif kind == "advance":
        world.clock.advance(timedelta(hours=op[1]))
        if op[2]:  # else the next step settles what is due (or the background sweeper does, first)
            world.engine.sweep_due()
            await world.engine.wait_idle()
            for participant_id in world.ids.values():
                await _check_participant(world, participant_id, _in_step(_unchanged(world, None)))
    elif kind == "fund":
        await world.engine.fund(world.program_id, world.asset_ids["W"], _text(op[1], 2))
        world.wallet_minor += op[1]
    world.twin = False
    world.last_sequence = await _journal_head(world.engine)


async def _event(world: World, number: int, op: tuple[Any, ...]) -> None:
    _, external_id, kind, amount, hours_back = op
    participant_id = world.ids[external_id]
    pre = settled(world.snapshots[participant_id], world.clock.now)
    expected, completes = predict_event(world, pre, kind, amount, timedelta(hours=hours_back))
    expected.settles = hours_back == 0  # else its own lot may be due already, and settle in a later step
    data = {"type": kind, "amount": float(Decimal(amount) / 100), "points": _points(amount)}
    submitted = await world.engine.submit(
        EventSubmit(
            program_id=world.program_id,
            external_id=external_id,
            idempotency_key=f"event-{number}",
            event_data=data,
            event_timestamp=world.clock.now - timedelta(hours=hours_back),
        )
    )
    await world.engine.wait_idle()
    outcome = await world.engine.get_event(submitted.id)
    assert (outcome.status == "COMPLETED") == completes, (op, pre, outcome.status, outcome.error_message)
    await _check_participant(world, participant_id, expected)


def _adjust_request(world: World, op: tuple[Any, ...]) -> BalanceAdjust:
    _, _, letter, kind, bucket, amount, allow_negative, bad_scale, key = op
    text = _text(amount, world.scale(letter))
    if bad_scale:
        text = "1.5" if letter == "L" else "1.005"
    return BalanceAdjust(
        program_id=world.program_id,
        asset_id=world.asset_ids[letter],
        type=kind,
        amount=text,
        description="property",
        bucket=bucket,
        allow_negative=allow_negative,
        idempotency_key=key,
    )


async def _adjust(world: World, op: tuple[Any, ...]) -> None:
    _, external_id, letter, kind, _, amount, allow_negative, bad_scale, key = op
    op = (*op[:5], _scaled(letter, amount), *op[6:])
    request = _adjust_request(world, op)
    participant_id = world.ids.get(external_id, external_id)
    pre = _pre(world, participant_id)
    if bad_scale or (kind == "CREDIT" and allow_negative):
        expected = _unchanged(world, pre, ValidationFailed)  # refused before the participant is even looked up
    elif pre is None:
        expected = _unchanged(world, pre, NotFound)
    else:
        expected = _idempotent(world, ("ADJUST", participant_id, request), key, pre) or _in_step(
            predict_adjust(world, pre, op)
        )
    await _call(world, participant_id, expected, request, key, ("ADJUST", participant_id, request), op)


def _operation_request(world: World, op: tuple[Any, ...], lot_ids: list[str] | None) -> BalanceOperation:
    name, _, letter, amount, reference = op[:5]
    return BalanceOperation(
        program_id=world.program_id,
        asset_id=world.asset_ids[letter],
        description="property",
        amount=None if amount is None else _text(amount, world.scale(letter)),
        reference_id=reference,
        lot_ids=lot_ids,
        bucket=op[7] if name == "FORFEIT" else None,
        idempotency_key=op[6],
    )


def _lot_ids(world: World, pre: Snapshot | None, chosen: list[int] | None) -> list[str] | None:
    """Lot ids from indexes into the participant's lots (open or closed: a closed one is a 400); none: a bogus id."""
    if chosen is None:
        return None
    lots = pre.lots if pre is not None else ()
    if not lots:
        return ["no-such-lot"]
    return sorted({lots[index % len(lots)].id for index in chosen})


async def _operation(world: World, op: tuple[Any, ...]) -> None:
    name, external_id, letter, amount = op[:4]
    op = (*op[:3], None if amount is None else _scaled(letter, amount), *op[4:])
    participant_id = world.ids.get(external_id, external_id)
    pre = _pre(world, participant_id)
    lot_ids = _lot_ids(world, pre, op[5])
    request = _operation_request(world, op, lot_ids)
    identity = (name, participant_id, request)
    if lot_ids is not None and letter != "L":
        expected = _unchanged(world, pre, ValidationFailed)
    elif pre is None:
        expected = _unchanged(world, pre, NotFound)
    else:
        selection = None if lot_ids is None else frozenset(lot_ids)
        expected = _idempotent(world, identity, op[6], pre) or _in_step(predict_operation(world, pre, op, selection))
    await _call(world, participant_id, expected, request, op[6], identity, op)


async def _void_hold(world: World, op: tuple[Any, ...]) -> None:
    """No lot can be provisional yet (a rule's CREDIT to HELD is issue 12's second part): always refused."""
    _, external_id, letter, reference = op
    participant_id = world.ids.get(external_id, external_id)
    pre = _pre(world, participant_id)
    request = BalanceOperation(
        program_id=world.program_id, asset_id=world.asset_ids[letter], description="void", reference_id=reference
    )
    if pre is not None:
        assert not any(lot.provisional for lot in pre.lots)
    expected = _unchanged(world, pre, ValidationFailed if letter != "L" else NotFound)
    expected.settles = letter == "L" and pre is not None  # refused in the step (no provisional lot)
    await _call(world, participant_id, expected, request, None, ("VOID_HOLD", participant_id, request), op)


def _in_step(expected: Expected) -> Expected:
    expected.settles = True
    return expected


def _pre(world: World, participant_id: str) -> Snapshot | None:
    snapshot = world.snapshots.get(participant_id)
    return None if snapshot is None else settled(snapshot, world.clock.now)


def _idempotent(world: World, identity: tuple[Any, ...], key: str | None, pre: Snapshot) -> Expected | None:
    """A key seen before: the same request answers its stored result, another one is a 409; else None."""
    if key is None or key not in world.stored:
        return None
    request, result = world.stored[key]
    if _without_key(request) != _without_key(identity):
        return _unchanged(world, pre, IdempotencyConflict)
    expected = _unchanged(world, pre)
    expected.replay = result
    return expected


def _without_key(identity: tuple[Any, ...]) -> tuple[Any, ...]:
    name, participant_id, request = identity
    return (name, participant_id, msgspec.structs.replace(request, idempotency_key=None))


async def _call(
    world: World,
    participant_id: str,
    expected: Expected,
    request: Any,
    key: str | None,
    identity: tuple[Any, ...],
    op: tuple[Any, ...],
) -> None:
    """Run the call, then check its answer (or refusal), the participant's state and the journal against
    ``expected``."""
    outcomes = await _send(world, participant_id, identity[0], request, 2 if world.twin else 1)
    # Twins answer alike: the second waits for the first and answers its result, or runs after its refusal.
    assert all(type(outcome) is type(outcomes[0]) for outcome in outcomes), (op, outcomes)
    result = outcomes[0]
    if not isinstance(result, ScripError):
        assert all(outcome == result for outcome in outcomes), (op, outcomes)
    if isinstance(result, ScripError):
        error = result
        assert expected.error is not None and isinstance(error, expected.error), (op, expected, error)
        if expected.error is Conflict:
            assert not isinstance(error, IdempotencyConflict), (op, error)
        await _check_nothing_written(world)
        if participant_id in world.snapshots:
            await _check_participant(world, participant_id, expected)
        return
    assert expected.error is None, (op, expected, result)
    if expected.replay is not None:
        assert result == expected.replay, (op, result, expected.replay)
        await _check_participant(world, participant_id, expected)
        return
    if key is not None:
        world.stored[key] = (identity, result)
    post = await _check_participant(world, participant_id, expected)
    await _check_result(world, participant_id, request, result, expected, post, op)


async def _send(world: World, participant_id: str, name: str, request: Any, copies: int) -> list[Any]:
    """Send ``request`` ``copies`` times at once; each answer, or the ScripError that refused it."""
    outcomes: list[Any] = [None] * copies

    async def one(index: int) -> None:
        try:
            if isinstance(request, BalanceAdjust):
                outcomes[index] = await world.engine.adjust_balance(participant_id, request)
            else:
                outcomes[index] = await world.engine.balance_operation(name, participant_id, request)
        except ScripError as error:
            outcomes[index] = error

    async with trio.open_nursery() as nursery:
        for index in range(copies):
            nursery.start_soon(one, index)
    return outcomes


async def _check_result(
    world: World,
    participant_id: str,
    request: Any,
    result: Any,
    expected: Expected,
    post: Snapshot,
    op: tuple[Any, ...],
) -> None:
    """The answer names what moved and the balance after; its journal entry posts exactly that."""
    name = "ADJUST" if isinstance(request, BalanceAdjust) else result.operation
    letter = next(letter for letter, asset_id in world.asset_ids.items() if asset_id == request.asset_id)
    scale = world.scale(letter)
    balance = result.balance
    answered = tuple(_minor(x, scale) for x in (balance.available, balance.held, balance.deferred))
    assert answered == post.balances[letter], (op, result, post)
    assert expected.amount_minor is not None
    entry = await world.engine.get_journal_entry(result.journal_entry_id)
    assert entry.action_type == name, (op, entry)
    mine = sorted((p.bucket, p.amount_minor) for p in entry.postings if p.entity_id == participant_id)
    amount = expected.amount_minor
    if name == "ADJUST":
        assert _minor(result.amount, scale) == amount
        wanted = [(request.bucket, amount if request.type == "CREDIT" else -amount)]
    else:
        assert _minor(result.amount_processed, scale) == amount, (op, result, expected)
        assert result.reference_id == request.reference_id == entry.reference_id, (op, result, entry)
        taken = None if result.lots_processed is None else [(x.id, _minor(x.amount, 0)) for x in result.lots_processed]
        assert taken == expected.taken, (op, taken, expected.taken)
        wanted = {
            "HOLD": [("AVAILABLE", -amount), ("HELD", amount)],
            "RELEASE": [("AVAILABLE", amount), ("HELD", -amount)],
            "FORFEIT": [(request.bucket, -amount)],
        }[name]
    assert mine == sorted(wanted), (op, entry.postings)


async def _check_nothing_written(world: World) -> None:
    """A refusal writes nothing to the journal but the settlement of lots that were due."""
    page = await world.engine.list_journal_entries(limit=50)
    new = [entry for entry in page.data if entry.sequence > world.last_sequence]
    assert all(entry.action_type in SETTLEMENT for entry in new), [entry.action_type for entry in new]


async def _check_participant(world: World, participant_id: str, expected: Expected) -> Snapshot:
    """The participant's state is ``expected`` (``expected.balances`` empty: its settled last snapshot)."""
    now = world.clock.now
    post = await _stable(world, participant_id)
    # Compared settled: a step outside the mailbox (a refusal before it, a status change) may find due lots
    # settled by the background sweeper, or not yet.
    as_settled = settled(post, now)
    if expected.settles:
        assert as_settled.balances == post.balances, f"the step left due lots unsettled: {post}"
    before = settled(world.snapshots[participant_id], now).balances
    if not expected.moves_held:
        for letter, (_, held, _) in as_settled.balances.items():
            assert held == before[letter][1], f"held {letter} moved by a step that must not touch it: {expected}"
    wanted = expected.balances or before
    assert as_settled.balances == wanted, (participant_id, post.balances, wanted)
    [wallet] = await world.engine.wallet_balances(world.program_id, world.asset_ids["W"])
    assert _minor(wallet.available, 2) == expected.wallet_minor
    world.wallet_minor = expected.wallet_minor
    check_invariants(post)
    world.snapshots[participant_id] = post
    return post


def check_invariants(snapshot: Snapshot) -> None:
    """Held never negative; LOT buckets are their lots' sums; closed lots are empty; split lots keep their dates."""
    for letter, (_, held, deferred) in snapshot.balances.items():
        assert held >= 0 and deferred >= 0, (letter, snapshot.balances)
    sums = dict.fromkeys(OPEN, 0)
    by_id = {lot.id: lot for lot in snapshot.lots}
    for lot in snapshot.lots:
        assert 0 <= lot.remaining_minor <= lot.amount_minor, lot
        if lot.status in OPEN:
            assert lot.remaining_minor > 0, f"an open lot with nothing left: {lot}"
            sums[lot.status] += lot.remaining_minor
        else:
            assert lot.remaining_minor == 0, lot
        assert not lot.provisional, lot
        if lot.parent_lot_id is not None:
            parent = by_id[lot.parent_lot_id]
            assert (parent.created_at, parent.expires_at) == (lot.created_at, lot.expires_at), (parent, lot)
    available, held, deferred = snapshot.balances["L"]
    assert held == sums["HELD"] and deferred == sums["DEFERRED"], (snapshot.balances["L"], sums)
    if available >= 0:
        assert available == sums["AVAILABLE"], (snapshot.balances["L"], sums)
    else:
        assert sums["AVAILABLE"] == 0, f"an overdraft next to AVAILABLE lots: {snapshot.balances['L']}, {sums}"


async def _audit(world: World) -> None:
    """The end of a sequence: settle everything due, then balances = journal sums, and verify."""
    engine = world.engine
    engine.sweep_due()
    await engine.wait_idle()
    for participant_id in world.ids.values():
        await _check_participant(world, participant_id, _in_step(_unchanged(world, None)))
    sums: dict[tuple[str, str, str], int] = {}
    per_asset: dict[str, int] = {}
    cursor = None
    entries: list[JournalEntry] = []
    while True:
        page = await engine.list_journal_entries(limit=200, cursor=cursor)
        entries.extend(page.data)
        for entry in page.data:
            for posting in entry.postings:
                account = (posting.entity_id, posting.asset_id, posting.bucket)
                sums[account] = sums.get(account, 0) + posting.amount_minor
                per_asset[posting.asset_id] = per_asset.get(posting.asset_id, 0) + posting.amount_minor
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert all(total == 0 for total in per_asset.values()), per_asset
    for participant_id in world.ids.values():
        snapshot = world.snapshots[participant_id]
        for letter, asset_id in world.asset_ids.items():
            journal = tuple(sums.get((participant_id, asset_id, bucket), 0) for bucket in OPEN)
            assert snapshot.balances[letter] == journal, (participant_id, letter, snapshot.balances, journal)
    assert sums.get((world.program_id, world.asset_ids["W"], "AVAILABLE"), 0) == world.wallet_minor
    # Issue 13: every report figure against a naive recomputation from this journal and the lots.
    await audit_reports(engine, entries, world.program_id)
    lots = [
        lot for participant_id in world.ids.values() for lot in await engine.lots(participant_id, world.asset_ids["L"])
    ]
    await audit_schedule(engine, lots, world.asset_ids["L"], world.scale("L"))
    report = await engine.verify()
    assert report.ok, report.problems
    assert report.events_pending == 0


async def _run_sequence(operations: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as directory:
        async with open_engine(config=small_config(Path(directory)), clock=clock) as engine:
            world = await _setup(engine, clock)
            for number, op in enumerate(operations):
                await _step(world, number, op)
            await _audit(world)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=30))
async def test_random_balance_operations_keep_buckets_lots_and_journal_in_step(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=10, max_size=80))
async def test_long_random_balance_operations_keep_buckets_lots_and_journal_in_step(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)
