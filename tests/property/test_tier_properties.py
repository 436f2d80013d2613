"""Properties of the pure tier logic (scrip_actor/tiers.py, scrip_actor/tier_effects.py), without an engine.

The strongest one is catch-up: sweeping a participant at any increasing series of moments ends in exactly the
state one sweep at the last moment gives — so a sweeper that ran late, often, or not at all during a downtime
processes each deadline once, in order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.engine._step import new_participant
from scrip_actor.ids import SequenceIds
from scrip_actor.ledger import LedgerTx, ParticipantState, World
from scrip_actor.tier_effects import apply_event_tiers, sweep_tiers
from scrip_actor.tiers import (
    CounterRollover,
    DowngradePolicy,
    Level,
    Lifecycle,
    QualificationPeriod,
    TierDefinition,
    add_months,
    downgrade_rank,
    next_period_end,
    qualifying_level,
    rolled_over,
)

_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_THRESHOLDS = (100, 500, 1000)


def _levels(thresholds: tuple[int, ...] = _THRESHOLDS) -> list[Level]:
    return [
        msgspec.convert(
            {
                "id": f"l{rank}",
                "key": f"level{rank}",
                "rank": rank,
                "qualification": {"criteria": [{"counter": "spend", "threshold": threshold}]},
                "created_at": _T0,
                "updated_at": _T0,
            },
            Level,
        )
        for rank, threshold in enumerate(thresholds, start=1)
    ]


amounts = st.integers(min_value=0, max_value=5000)


@given(amounts, amounts)
def test_more_counted_never_qualifies_lower(low: int, extra: int) -> None:
    levels = _levels()
    before = qualifying_level(levels, {"spend": Decimal(low)})
    after = qualifying_level(levels, {"spend": Decimal(low + extra)})
    assert (after.rank if after else 0) >= (before.rank if before else 0)


policies = st.builds(
    DowngradePolicy,
    mode=st.sampled_from(["DROP_TO_QUALIFYING", "DROP_ONE", "HOLD"]),
    min_level=st.sampled_from([None, "level1", "level2", "level3"]),
)


@given(st.integers(0, 3), st.integers(0, 3), policies)
def test_a_review_never_raises_and_stays_within_its_bounds(
    current: int, qualifying: int, policy: DowngradePolicy
) -> None:
    levels = _levels()
    target = downgrade_rank(levels, current, qualifying, policy)
    assert 0 <= target <= current
    if qualifying >= current or policy.mode == "HOLD":
        assert target == current
        return
    assert target >= qualifying
    floor = int(policy.min_level[-1]) if policy.min_level else 0
    assert target >= min(floor, current)
    if policy.mode == "DROP_ONE":
        assert target >= current - 1


@given(amounts, st.sampled_from(["NONE", "EXCESS"]), st.integers(0, 3))
def test_rollover_is_never_negative_and_excess_keeps_what_is_above(value: int, mode: str, qualified_rank: int) -> None:
    levels = _levels()
    qualified = levels[qualified_rank - 1] if qualified_rank else None
    counters = {"spend": Decimal(value), "other": Decimal(7)}
    changed = rolled_over(counters, CounterRollover(rollover=mode, qualifying=["spend"]), qualified)  # type: ignore[arg-type]
    assert "other" not in changed
    new = changed.get("spend", Decimal(value))
    assert new >= 0
    if mode == "NONE" or qualified is None:
        assert new == 0
    else:
        assert new == max(0, value - _THRESHOLDS[qualified_rank - 1])


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


@given(moments, st.sampled_from(["CALENDAR_YEAR", "FIXED_YEAR"]), st.integers(1, 12), st.integers(1, 31))
def test_a_period_end_is_the_next_boundary(after: datetime, kind: str, month: int, day: int) -> None:
    period = QualificationPeriod(type=kind, start_month=month, start_day=day)  # type: ignore[arg-type]
    boundary = next_period_end(period, None, after, after)
    assert boundary > after
    assert boundary - after <= timedelta(days=366)
    assert (boundary.hour, boundary.minute, boundary.second) == (0, 0, 0)
    # Every moment up to the boundary names the same boundary (a late sweep finds the same period end).
    assert next_period_end(period, None, after, boundary - timedelta(microseconds=1)) == boundary
    if kind == "CALENDAR_YEAR":
        assert (boundary.month, boundary.day) == (1, 1)


@given(moments, st.integers(-240, 240))
def test_adding_months_clamps_the_day(moment: datetime, months: int) -> None:
    shifted = add_months(moment, months)
    assert (shifted.year * 12 + shifted.month) - (moment.year * 12 + moment.month) == months
    assert shifted.day <= moment.day


# --- catch-up: many sweeps or one, the same end state ---------------------------------------------------------


def _definition(mode: str, grace_days: int, rollover: str) -> TierDefinition:
    return TierDefinition(
        id="t",
        program_id="p",
        key="status",
        levels=_levels(),
        lifecycle=msgspec.convert(
            {
                "retention": {"mode": "PERIOD_BASED"},
                "downgrade_policy": {"mode": mode, "grace_days": grace_days},
                "counters": {"rollover": rollover, "qualifying": ["spend"]},
            },
            Lifecycle,
        ),
        created_at=_T0,
        updated_at=_T0,
    )


def _earned(definition: TierDefinition, spend: int) -> tuple[World, ParticipantState]:
    world = World(SequenceIds(1))
    state = new_participant("ann", _T0, "pid")
    state.program_ids.append("p")
    tx = LedgerTx(world, now=_T0, id_seed="e", program_id="p")
    working = tx.edit(state)
    working.counters["spend"] = Decimal(spend)
    apply_event_tiers(tx, {"status": definition}, "p", state, _T0)
    tx.commit(_T0)
    return world, working


def _swept(world: World, state: ParticipantState, definition: TierDefinition, at: list[datetime]) -> ParticipantState:
    for moment in at:
        tx = LedgerTx(world, now=moment, id_seed=f"s{moment}", program_id=None)
        sweep_tiers(tx, state, {"p": {"status": definition}}, moment)
        if not tx.is_empty():
            tx.commit(moment)
            state = tx.touched(state.id) or state
    return state


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["DROP_TO_QUALIFYING", "DROP_ONE", "HOLD"]),
    st.integers(0, 60),
    st.sampled_from(["NONE", "EXCESS"]),
    st.integers(0, 3000),
    st.lists(st.integers(1, 4 * 365), min_size=1, max_size=8),
)
def test_sweeping_often_or_once_ends_the_same(
    mode: str, grace: int, rollover: str, spend: int, days: list[int]
) -> None:
    definition = _definition(mode, grace, rollover)
    moments = sorted(_T0 + timedelta(days=day) for day in days)
    world, state = _earned(definition, spend)
    often = _swept(world, state, definition, moments)
    world_once, state_once = _earned(definition, spend)
    once = _swept(world_once, state_once, definition, moments[-1:])
    assert often.tiers == once.tiers
    assert often.counters == once.counters
