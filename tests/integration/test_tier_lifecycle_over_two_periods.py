"""A tier's lifecycle over two calendar-year qualification periods, with a manual clock: auto-upgrade, a period end
that keeps the level and rolls the EXCESS over, one that drops a level (DROP_ONE) after a grace period, a grace
period that the participant requalifies in, HOLD, and a restart that spans a period end (processed once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from scrip_actor import Engine, open_engine
from scrip_actor.tiers import TierCreate
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send

STATUS = {
    "key": "status",
    "levels": [
        {"key": "silver", "rank": 1, "qualification": {"criteria": [{"counter": "spend", "threshold": 100}]}},
        {"key": "gold", "rank": 2, "qualification": {"criteria": [{"counter": "spend", "threshold": 500}]}},
        {"key": "platinum", "rank": 3, "qualification": {"criteria": [{"counter": "spend", "threshold": 1000}]}},
    ],
    "lifecycle": {
        "retention": {"mode": "PERIOD_BASED"},
        "qualification_period": {"type": "CALENDAR_YEAR"},
        "downgrade_policy": {"mode": "DROP_ONE", "grace_days": 30},
        "counters": {"rollover": "EXCESS", "qualifying": ["spend"]},
    },
}
CLUB = {
    "key": "club",
    "levels": [{"key": "member", "rank": 1, "qualification": {"criteria": [{"counter": "visits", "threshold": 1}]}}],
    "lifecycle": {
        "retention": {"mode": "PERIOD_BASED"},
        "downgrade_policy": {"mode": "HOLD"},
        "counters": {"rollover": "NONE", "qualifying": ["visits"]},
    },
}


async def _setup(engine: Engine) -> object:
    program, _ = await program_with_asset(engine)
    for body in (STATUS, CLUB):
        await engine.tiers.create(program.id, msgspec.convert(body, TierCreate))
    await rule(
        engine,
        program,
        'event.type == "purchase"',
        [
            {"type": "COUNTER", "key": "spend", "value": "event.amount"},
            {"type": "COUNTER", "key": "visits", "value": "1"},
        ],
        name="count",
    )
    await rule(engine, program, "participant.tiers.status.rank >= 2", [{"type": "TAG", "tag": "vip"}], name="vip")
    return program


async def _level(engine: Engine, program: object, external_id: str, key: str = "status") -> str:
    participant = await engine.get_participant_by_external_id(external_id)
    shown = participant.tiers.get(key)
    return shown.level if shown is not None else ""


async def _counter(engine: Engine, external_id: str, key: str) -> Decimal:
    participant = await engine.get_participant_by_external_id(external_id)
    return Decimal(participant.counters.get(key, "0"))


async def _at(engine: Engine, clock: ManualClock, moment: datetime) -> None:
    clock.now = moment
    engine.sweep_due()
    await engine.wait_idle()


async def test_two_periods_upgrade_keep_excess_grace_drop_one_and_hold(engine: Engine, clock: ManualClock) -> None:
    program = await _setup(engine)
    # Period 1 (2026): up to silver, then gold; never down within the period.
    await send(engine, program, "ann", {"type": "purchase", "amount": 300}, at=clock.now)  # type: ignore[arg-type]
    assert await _level(engine, program, "ann") == "silver"
    await send(engine, program, "ann", {"type": "purchase", "amount": 300}, at=clock.now)  # type: ignore[arg-type]
    assert await _level(engine, program, "ann") == "gold"
    assert await _level(engine, program, "ann", "club") == "member"
    # CEL sees the tier from the next event on (auto-qualification runs after the rules).
    event = await send(engine, program, "ann", {"type": "noop"}, at=clock.now)  # type: ignore[arg-type]
    assert event.status == "COMPLETED"
    assert "vip" in (await engine.get_participant_by_external_id("ann")).tags
    await send(engine, program, "bob", {"type": "purchase", "amount": 550}, at=clock.now)  # type: ignore[arg-type]
    assert await _level(engine, program, "bob") == "gold"
    # End of period 1: both still qualify for gold; EXCESS keeps what lies above gold's 500.
    await _at(engine, clock, datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert await _level(engine, program, "ann") == "gold"
    assert await _counter(engine, "ann", "spend") == 100
    assert await _counter(engine, "bob", "spend") == 50
    # HOLD keeps the club level; NONE resets the visits.
    assert await _level(engine, program, "ann", "club") == "member"
    assert await _counter(engine, "ann", "visits") == 0
    # Period 2 (2027): ann reaches only silver's threshold (100 + 50), bob nothing more (50).
    await send(engine, program, "ann", {"type": "purchase", "amount": 50}, at=clock.now)  # type: ignore[arg-type]
    await _at(engine, clock, datetime(2028, 1, 1, 0, 0, 1, tzinfo=UTC))
    # DROP_ONE is pending for 30 days of grace: the level stands meanwhile, the counters have rolled over.
    ann = engine.tiers.state((await engine.get_participant_by_external_id("ann")).id, program.id, "status")  # type: ignore[attr-defined]
    assert ann.level == "gold"
    assert ann.drop_at == datetime(2028, 1, 31, tzinfo=UTC)
    assert await _counter(engine, "ann", "spend") == 50  # EXCESS over silver's 100 (the level qualified for)
    assert await _counter(engine, "bob", "spend") == 0  # qualified for none: nothing above a threshold
    assert await _level(engine, program, "ann", "club") == "member"  # HOLD
    # ann requalifies for gold inside the grace period: the drop is cancelled. bob does not.
    await send(engine, program, "ann", {"type": "purchase", "amount": 460}, at=clock.now)  # type: ignore[arg-type]
    await _at(engine, clock, datetime(2028, 1, 31, 0, 0, 1, tzinfo=UTC))
    assert await _level(engine, program, "ann") == "gold"
    assert await _level(engine, program, "bob") == "silver"  # one level down, not to qualifying (none)
    bob = await engine.get_participant_by_external_id("bob")
    history = engine.state_history.list_for(bob.id, limit=200, cursor=None).data
    tiers = [
        (entry.operation, entry.old_value, entry.new_value, entry.source)
        for entry in history
        if entry.state_type == "tier" and entry.key == "status"
    ]
    assert tiers == [("set", None, "gold", "rule"), ("set", "gold", "silver", "lifecycle")]


async def test_a_restart_across_a_period_end_processes_it_once(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program = await _setup(engine)
        await send(engine, program, "ann", {"type": "purchase", "amount": 650}, at=clock.now)  # type: ignore[arg-type]
        await engine.wait_idle()
    clock.now = datetime(2028, 1, 1, 0, 0, 1, tzinfo=UTC)  # down across two period ends
    for _ in range(2):  # and opened twice past them: the second open finds nothing due
        async with open_engine(config=config, clock=clock) as engine:
            engine.sweep_due()
            await engine.wait_idle()
            assert await _level(engine, program, "ann") == "gold"  # pending drop (grace), still gold
            # 2027-01-01: 650 -> 150 over gold; 2028-01-01: silver qualified, 150 -> 50 over silver.
            assert await _counter(engine, "ann", "spend") == 50
            report = await engine.verify()
            assert report.ok, report.problems
    clock.now += timedelta(days=31)
    async with open_engine(config=config, clock=clock) as engine:
        engine.sweep_due()
        await engine.wait_idle()
        assert await _level(engine, program, "ann") == "silver"


async def test_participants_sharing_a_period_end_each_keep_their_deadline_across_a_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    # Every CALENDAR_YEAR holding ends on 1 January: the schedule must hold one record per participant, or a
    # restart past the boundary sweeps only one of them.
    config = small_config(tmp_path / "data")
    names = ("ann", "bob", "cy")
    async with open_engine(config=config, clock=clock) as engine:
        program = await _setup(engine)
        for name in names:
            await send(engine, program, name, {"type": "purchase", "amount": 650}, at=clock.now)  # type: ignore[arg-type]
        await engine.wait_idle()
    clock.now = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    async with open_engine(config=config, clock=clock) as engine:
        engine.sweep_due()
        await engine.wait_idle()
        assert [await _counter(engine, name, "spend") for name in names] == [150, 150, 150]  # each rolled over
        report = await engine.verify()
        assert report.ok, report.problems


ACTIVITY = {
    "key": "activity",
    "levels": [
        {"key": "bronze", "rank": 1},
        {"key": "silver", "rank": 2, "qualification": {"criteria": [{"counter": "visits", "threshold": 100}]}},
        {"key": "gold", "rank": 3},
    ],
    "lifecycle": {
        "retention": {"mode": "ACTIVITY_REFRESH", "duration": "720h"},
        "downgrade_policy": {"mode": "DROP_TO_QUALIFYING", "min_level": "bronze"},
    },
}


async def test_activity_refresh_drops_to_qualifying_above_the_floor(engine: Engine, clock: ManualClock) -> None:
    program, _ = await program_with_asset(engine)
    await engine.tiers.create(program.id, msgspec.convert(ACTIVITY, TierCreate))
    await rule(engine, program, 'event.type == "vip"', [{"type": "SET_TIER", "tier": "activity", "level": "gold"}])
    start = clock.now
    await send(engine, program, "eve", {"type": "vip"}, at=clock.now)
    eve = await engine.get_participant_by_external_id("eve")
    assert engine.tiers.state(eve.id, program.id, "activity").next_review_at == start + timedelta(days=30)
    # An event (matching no rule) 20 days on restarts the 30-day timer.
    await _at(engine, clock, start + timedelta(days=20))
    await send(engine, program, "eve", {"type": "ping"}, at=clock.now)
    await _at(engine, clock, start + timedelta(days=31))  # the first deadline's entry fires: nothing is due
    assert await _level(engine, program, "eve", "activity") == "gold"
    assert engine.tiers.state(eve.id, program.id, "activity").next_review_at == start + timedelta(days=50)
    await _at(engine, clock, start + timedelta(days=50, seconds=1))
    assert await _level(engine, program, "eve", "activity") == "bronze"  # qualifies for none; the floor holds
    await _at(engine, clock, start + timedelta(days=80, seconds=1))
    assert await _level(engine, program, "eve", "activity") == "bronze"  # never below the floor


async def test_a_manual_level_is_removed_at_its_expiry_by_the_sweep(engine: Engine, clock: ManualClock) -> None:
    from scrip_actor.tiers import TierStateSet

    program, _ = await program_with_asset(engine)
    await engine.tiers.create(program.id, msgspec.convert(ACTIVITY, TierCreate))
    await send(engine, program, "fay", {"type": "join"}, at=clock.now)
    fay = await engine.get_participant_by_external_id("fay")
    expires = clock.now + timedelta(days=10)
    await engine.tiers.set_state(fay.id, program.id, "activity", TierStateSet(level="silver", expires_at=expires))
    await _at(engine, clock, expires - timedelta(seconds=1))
    assert await _level(engine, program, "fay", "activity") == "silver"
    await _at(engine, clock, expires + timedelta(seconds=1))
    assert await _level(engine, program, "fay", "activity") == ""
    history = engine.state_history.list_for(fay.id, limit=200, cursor=None).data
    assert [(e.operation, e.source) for e in history if e.state_type == "tier"] == [
        ("set", "api"),
        ("delete", "lifecycle"),
    ]


async def test_a_lifecycle_cleared_by_patch_stops_its_reviews(engine: Engine, clock: ManualClock) -> None:
    from scrip_actor.tiers import TierUpdate

    program = await _setup(engine)
    await send(engine, program, "gil", {"type": "purchase", "amount": 600}, at=clock.now)  # type: ignore[arg-type]
    await engine.tiers.update(program.id, "status", msgspec.convert({"lifecycle": {}}, TierUpdate))  # type: ignore[attr-defined]
    await _at(engine, clock, datetime(2029, 1, 1, tzinfo=UTC))
    assert await _level(engine, program, "gil") == "gold"  # no review, no drop
    assert await _counter(engine, "gil", "spend") == 600  # and no rollover
    gil = await engine.get_participant_by_external_id("gil")
    assert engine.tiers.state(gil.id, program.id, "status").next_review_at is None  # type: ignore[attr-defined]


async def test_status_validity_extends_a_lost_level_past_the_boundary(engine: Engine, clock: ManualClock) -> None:
    program, _ = await program_with_asset(engine)
    body = {
        **STATUS,
        "lifecycle": {
            "retention": {"mode": "PERIOD_BASED"},
            "qualification_period": {"type": "FIXED_YEAR", "start_month": 7, "start_day": 1},
            "status_validity": {"extend_months": 2},
        },
    }
    await engine.tiers.create(program.id, msgspec.convert(body, TierCreate))
    await rule(engine, program, "true", [{"type": "COUNTER", "key": "spend", "value": "event.amount"}])
    await send(engine, program, "hal", {"amount": 600}, at=clock.now)
    # The period (1 July to 1 July) ends; counters are not rolled over (no counters section), so hal still
    # qualifies: kept. Set spend to 0 by hand: the next end finds nothing, and the drop waits two months.
    await _at(engine, clock, datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC))
    hal = await engine.get_participant_by_external_id("hal")
    await engine.set_counter(hal.id, "spend", "0")
    await _at(engine, clock, datetime(2027, 7, 1, 0, 0, 1, tzinfo=UTC))
    assert engine.tiers.state(hal.id, program.id, "status").drop_at == datetime(2027, 9, 1, tzinfo=UTC)
    assert await _level(engine, program, "hal") == "gold"
    await _at(engine, clock, datetime(2027, 9, 1, 0, 0, 1, tzinfo=UTC))
    assert await _level(engine, program, "hal") == ""  # DROP_TO_QUALIFYING (the default): to rank 0
