"""Tiers inside a ledger transaction: SET_TIER, auto-qualification, the lifecycle's deadlines, manual sets.

Pure like the step that calls it: every function takes a :class:`~scrip_actor.ledger.LedgerTx` and the program's
tier definitions (scrip_actor.tiers) and changes only the transaction's working copies, so a failed event
changes no tier, and a tier change commits in the same store record as whatever caused it — its state-history
entry (``state_type=tier``), a period end's counter rollover, and the schedule entry of the next deadline.

Deadlines (a period end, an activity timer, a pending drop, a manual ``expires_at``) go on the durable schedule the
lot expiry uses, as the item ``tier/{program id}/{tier key}``. Exactly once comes from the holding, not from the
schedule: the holding records its next deadline and a review moves it on in the same record that deletes the
schedule entry, so an entry that fires twice, late, or after its holding moved finds nothing due and does
nothing. Which clock decides: the engine's (wall) clock, in the sweep and before each event's rules (like lot
expiry), so an event that arrives after a period end counts in the new period however late the sweep runs; an
event's own ``event_timestamp`` dates what the event earns (acquired_at, the activity timer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec

from scrip_actor.durations import parse_duration
from scrip_actor.ledger import ActionFailed, LedgerTx, ParticipantState, schedule_at
from scrip_actor.tiers import (
    DowngradePolicy,
    Level,
    Lifecycle,
    QualificationPeriod,
    TierDefinition,
    TierHolding,
    add_months,
    downgrade_rank,
    holding_due,
    level_by_key,
    level_by_rank,
    next_period_end,
    qualifying_level,
    rolled_over,
)

__all__ = [
    "ProgramTiers",
    "apply_event_tiers",
    "cel_tiers",
    "remove_manual",
    "schedule_item",
    "set_manual",
    "sweep_tiers",
    "tiers_due",
]

ProgramTiers = Mapping[str, TierDefinition]  # one program's tiers by key
_REVIEWS_PER_SWEEP_MAX = 1000  # periods a sweep catches up at once (years of downtime); the rest on the next
_DEFAULT_POLICY = DowngradePolicy()
_DEFAULT_PERIOD = QualificationPeriod()  # CALENDAR_YEAR


def schedule_item(participant_id: str, program_id: str, key: str) -> str:
    """The schedule item of a tier's deadlines for one participant (beside lot ids, which are UUIDs). It names the
    participant: a schedule key is the due time and the item, so participants whose deadlines fall at the same
    moment (every CALENDAR_YEAR holding ends on 1 January) must not share one record."""
    return f"tier/{participant_id}/{program_id}/{key}"


def cel_tiers(state: ParticipantState, definitions: ProgramTiers, program_id: str) -> dict[str, object]:
    """``participant.tiers`` for CEL: every tier of the program, ``{level, rank}``; one not held reads ``{"", 0}``,
    so ``participant.tiers.status.rank >= 2`` is false, never an error, for a participant without a level."""
    held = state.tiers.get(program_id, {})
    view: dict[str, object] = {}
    for key in definitions:
        holding = held.get(key)
        if holding is None or holding.rank == 0:
            view[key] = {"level": "", "rank": 0}
        else:
            view[key] = {"level": holding.level, "rank": holding.rank}
    return view


# --- writing a holding ----------------------------------------------------------------------------------------


def _put(
    tx: LedgerTx,
    working: ParticipantState,
    program_id: str,
    key: str,
    new: TierHolding | None,
    source: str,
    rule_id: str | None = None,
) -> None:
    """Store ``new`` (None: forget the holding) in a working copy, note a visible change, schedule its deadline.

    A deadline is put on the schedule when it comes earlier than the one already there (or none was); one that
    moved later is found by the earlier entry, which the sweep then moves on (:func:`sweep_tiers`).
    """
    held = working.tiers.setdefault(program_id, {})
    old = held.get(key)
    if new is None:
        held.pop(key, None)
        if not held:
            del working.tiers[program_id]
    else:
        held[key] = new
    old_level = old.level if old is not None and old.rank > 0 else None
    new_level = new.level if new is not None and new.rank > 0 else None
    if old_level != new_level:
        operation = "set" if new_level is not None else "delete"
        tx.note_state(working.id, "tier", key, operation, old_level, new_level, source=source, rule_id=rule_id)
    due = holding_due(new) if new is not None else None
    old_due = holding_due(old) if old is not None else None
    if due is not None and (old_due is None or due < old_due):
        schedule_at(tx, due, schedule_item(working.id, program_id, key), working.id)


def _duration(lifecycle: Lifecycle | None) -> timedelta | None:
    if lifecycle is None or lifecycle.retention is None or lifecycle.retention.duration is None:
        return None
    return parse_duration(lifecycle.retention.duration)


def _mode(definition: TierDefinition) -> str | None:
    """PERIOD_BASED, ACTIVITY_REFRESH, or None (rules-only)."""
    lifecycle = definition.lifecycle
    return lifecycle.retention.mode if lifecycle is not None and lifecycle.retention is not None else None


def _earned(definition: TierDefinition, level: Level, moment: datetime, old: TierHolding | None) -> TierHolding:
    """The holding of ``level`` earned at ``moment`` (event time), the lifecycle's clock started or kept."""
    mode = _mode(definition)
    period_end = old.period_end if old is not None else None
    active_until = None
    if mode == "PERIOD_BASED" and period_end is None:
        period_end = _first_period_end(definition, moment)
    elif mode == "ACTIVITY_REFRESH":
        duration = _duration(definition.lifecycle)
        assert duration is not None
        active_until = moment + duration
    return TierHolding(
        level=level.key, rank=level.rank, acquired_at=moment, period_end=period_end, active_until=active_until
    )


def _first_period_end(definition: TierDefinition, moment: datetime) -> datetime:
    lifecycle = definition.lifecycle
    assert lifecycle is not None
    period = lifecycle.qualification_period or _DEFAULT_PERIOD
    return next_period_end(period, _duration(lifecycle), moment, moment)


# --- an event ---------------------------------------------------------------------------------------------------


def apply_event_tiers(
    tx: LedgerTx, definitions: ProgramTiers, program_id: str, event_participant: ParticipantState, moment: datetime
) -> None:
    """After an event's rules: SET_TIER actions in order, then auto-qualification of every participant the event
    touched, then the activity timer of the event's participant. ``moment`` is the event's time.

    Raises:
        ActionFailed: a SET_TIER names a tier the program does not have, or a level the tier does not have.
    """
    blocked = _apply_sets(tx, definitions, program_id, moment)
    candidates = tx.participants()
    if tx.touched(event_participant.id) is None:
        candidates.append(event_participant)  # counters set since (by the API) count too: reading costs no copy
    for viewed in candidates:
        if program_id not in viewed.program_ids:
            continue
        counters = viewed.effective_counters(moment)
        for key, definition in definitions.items():
            if definition.status == "ACTIVE" and (viewed.id, key) not in blocked:
                _auto_qualify(tx, viewed, program_id, definition, counters, moment)
    _refresh_activity(tx, definitions, program_id, event_participant, moment)


def _apply_sets(tx: LedgerTx, definitions: ProgramTiers, program_id: str, moment: datetime) -> set[tuple[str, str]]:
    blocked: set[tuple[str, str]] = set()
    for participant_id, key, level_key, rule_id in tx.tier_sets:
        definition = definitions.get(key)
        if definition is None:
            raise ActionFailed(f"SET_TIER: the program has no tier {key!r}")
        if definition.status == "ARCHIVED":
            continue  # skipped, and the event completes (the hosted rule)
        level = level_by_key(definition.levels, level_key)
        if level is None:
            raise ActionFailed(f"SET_TIER: tier {key!r} has no level {level_key!r}")
        working = tx.touched(participant_id)
        assert working is not None  # the action edited it
        old = working.tiers.get(program_id, {}).get(key)
        if old is None or old.level != level.key:
            _put(tx, working, program_id, key, _earned(definition, level, moment, old), "rule", rule_id)
        blocked.add((participant_id, key))
    return blocked


def _auto_qualify(
    tx: LedgerTx,
    viewed: ParticipantState,
    program_id: str,
    definition: TierDefinition,
    counters: Mapping[str, object],
    moment: datetime,
) -> None:
    """Up to the highest level whose criteria pass, never down; reaching the current level again cancels a
    pending drop. A PERIOD_BASED tier keeps a base holding once a qualifying counter exists, so its period ends
    (and rollover) reach participants below the first level too."""
    old = viewed.tiers.get(program_id, {}).get(definition.key)
    current = old.rank if old is not None else 0
    best = qualifying_level(definition.levels, counters)  # type: ignore[arg-type]
    new: TierHolding | None = None
    if best is not None and best.rank > current:
        new = _earned(definition, best, moment, old)
    elif best is not None and old is not None and old.drop_at is not None and best.rank >= current:
        new = _cancel_drop(old)
    elif old is None and _mode(definition) == "PERIOD_BASED" and _counts_toward(definition, counters):
        new = TierHolding(level="", rank=0, acquired_at=moment, period_end=_first_period_end(definition, moment))
    if new is not None:  # only a change makes a working copy
        _put(tx, tx.edit(viewed), program_id, definition.key, new, "rule")


def _cancel_drop(holding: TierHolding) -> TierHolding:
    return TierHolding(
        level=holding.level,
        rank=holding.rank,
        acquired_at=holding.acquired_at,
        expires_at=holding.expires_at,
        period_end=holding.period_end,
        active_until=holding.active_until,
    )


def _counts_toward(definition: TierDefinition, counters: Mapping[str, object]) -> bool:
    lifecycle = definition.lifecycle
    keys = set(lifecycle.counters.qualifying) if lifecycle is not None and lifecycle.counters is not None else set()
    for level in definition.levels:
        if level.qualification is not None:
            keys.update(criterion.counter for criterion in level.qualification.criteria)
    return any(counters.get(key) for key in keys)


def _refresh_activity(
    tx: LedgerTx, definitions: ProgramTiers, program_id: str, state: ParticipantState, moment: datetime
) -> None:
    """ACTIVITY_REFRESH: each event of the participant pushes its timer ``duration`` past the event's time."""
    viewed = tx.touched(state.id) or state
    held = viewed.tiers.get(program_id)
    if not held:
        return
    for key, holding in list(held.items()):
        definition = definitions.get(key)
        if definition is None or holding.rank == 0 or _mode(definition) != "ACTIVITY_REFRESH":
            continue
        duration = _duration(definition.lifecycle)
        assert duration is not None
        until = moment + duration
        if holding.active_until is None or until > holding.active_until:
            refreshed = _with(holding, active_until=until)
            _put(tx, tx.edit(state), program_id, key, refreshed, "rule")


def _with(holding: TierHolding, **fields: object) -> TierHolding:
    return msgspec.structs.replace(holding, **fields)


# --- deadlines ------------------------------------------------------------------------------------------------


def tiers_due(state: ParticipantState, until: datetime) -> bool:
    """True when a holding of ``state`` has a deadline at or before ``until`` (O(holdings); most have none)."""
    for held in state.tiers.values():
        for holding in held.values():
            due = holding_due(holding)
            if due is not None and due <= until:
                return True
    return False


def sweep_tiers(
    tx: LedgerTx,
    state: ParticipantState,
    definitions: Mapping[str, ProgramTiers],
    now: datetime,
    fired: frozenset[str] = frozenset(),
) -> None:
    """Process every tier deadline of ``state`` due by ``now`` (the engine's clock), each exactly once.

    ``fired`` names the schedule items whose entries this sweep consumed: a holding among them that is not due
    (its deadline moved later) is put back on the schedule at its deadline.
    """
    for program_id in sorted(state.tiers):
        for key in sorted(state.tiers.get(program_id, {})):
            viewed = tx.touched(state.id) or state
            holding = viewed.tiers.get(program_id, {}).get(key)
            definition = definitions.get(program_id, {}).get(key)
            if holding is None or definition is None or definition.status == "ARCHIVED":
                continue  # an archived tier's levels stay as they are (docs/tiers.md)
            due = holding_due(holding)
            if due is not None and due <= now:
                new = _review_until(tx, tx.edit(state), program_id, definition, holding, now)
                due = holding_due(new) if new is not None else None
                if due is not None:
                    schedule_at(tx, due, schedule_item(state.id, program_id, key), state.id)
            elif due is not None and schedule_item(state.id, program_id, key) in fired:
                tx.edit(state)  # a transaction that changes nothing commits nothing, its schedule entry with it
                schedule_at(tx, due, schedule_item(state.id, program_id, key), state.id)


def _review_until(
    tx: LedgerTx,
    working: ParticipantState,
    program_id: str,
    definition: TierDefinition,
    holding: TierHolding,
    now: datetime,
) -> TierHolding | None:
    """Apply each deadline due by ``now`` in time order (a restart that spanned two period ends does both)."""
    current: TierHolding | None = holding
    for _ in range(_REVIEWS_PER_SWEEP_MAX):
        if current is None:
            break
        due = holding_due(current)
        if due is None or due > now:
            break
        current = _review(tx, working, program_id, definition, current, due)
        _put(tx, working, program_id, definition.key, current, "lifecycle")
    return current


def _review(
    tx: LedgerTx,
    working: ParticipantState,
    program_id: str,
    definition: TierDefinition,
    holding: TierHolding,
    due: datetime,
) -> TierHolding | None:
    """What one deadline (at ``due``) does to a holding: the earliest of its deadlines, one at a time."""
    lifecycle = definition.lifecycle
    period_based = _mode(definition) == "PERIOD_BASED"
    if holding.expires_at is not None and holding.expires_at == due:
        if period_based and holding.period_end is not None:
            return TierHolding(level="", rank=0, acquired_at=holding.acquired_at, period_end=holding.period_end)
        return None  # a manual set's removal: back to rank 0
    if holding.drop_at is not None and holding.drop_at == due:
        return _drop(working, definition, holding, due)
    realigned = _realigned(definition, holding, due)
    if realigned is not holding:
        return realigned
    assert lifecycle is not None
    counters = working.effective_counters(due)
    qualified = qualifying_level(definition.levels, counters)
    policy = lifecycle.downgrade_policy or _DEFAULT_POLICY
    target = downgrade_rank(definition.levels, holding.rank, qualified.rank if qualified else 0, policy)
    if holding.period_end is not None and holding.period_end == due:
        _roll_over(tx, working, lifecycle, qualified, counters)
        following = next_period_end(lifecycle.qualification_period or _DEFAULT_PERIOD, _duration(lifecycle), due, due)
        reviewed = _with(holding, period_end=following)
        delay_months = lifecycle.status_validity.extend_months if lifecycle.status_validity else 0
    else:
        assert holding.active_until is not None
        assert holding.active_until == due
        duration = _duration(lifecycle)
        assert duration is not None
        reviewed = _with(holding, active_until=due + duration)
        delay_months = 0
    if target >= holding.rank or holding.rank == 0:
        return reviewed
    drop_at = add_months(due, delay_months) + timedelta(days=policy.grace_days)
    level = level_by_rank(definition.levels, target)
    if drop_at > due:
        return _with(reviewed, drop_at=drop_at, drop_level=level.key if level else "")
    return _lowered(reviewed, level, period_based)


def _realigned(definition: TierDefinition, holding: TierHolding, due: datetime) -> TierHolding | None:
    """A deadline the tier's lifecycle no longer has (a PATCH changed or cleared it since): the holding with the
    deadline the lifecycle has now instead, or ``holding`` itself when its deadline is the lifecycle's."""
    mode = _mode(definition)
    if holding.period_end == due and mode != "PERIOD_BASED":
        holding = _with(holding, period_end=None)
    elif holding.active_until == due and mode != "ACTIVITY_REFRESH":
        holding = _with(holding, active_until=None)
    else:
        return holding
    if mode == "PERIOD_BASED" and holding.period_end is None:
        holding = _with(holding, period_end=_first_period_end(definition, due))
    elif mode == "ACTIVITY_REFRESH" and holding.active_until is None:
        duration = _duration(definition.lifecycle)
        assert duration is not None
        holding = _with(holding, active_until=due + duration)
    if holding.rank == 0 and mode != "PERIOD_BASED":
        return None  # a base holding only carries period ends
    return holding


def _drop(
    working: ParticipantState, definition: TierDefinition, holding: TierHolding, due: datetime
) -> TierHolding | None:
    """A pending drop comes due: requalified since (counters now meet the level) keeps it; else the drop, or
    the level the counters now reach if that is higher."""
    qualified = qualifying_level(definition.levels, working.effective_counters(due))
    rank_now = qualified.rank if qualified else 0
    if rank_now >= holding.rank:
        return _cancel_drop(holding)
    target = next((level for level in definition.levels if level.key == holding.drop_level), None)
    if qualified is not None and (target is None or qualified.rank > target.rank):
        target = qualified
    return _lowered(_cancel_drop(holding), target, _mode(definition) == "PERIOD_BASED")


def _lowered(holding: TierHolding, level: Level | None, period_based: bool) -> TierHolding | None:
    """``holding`` at ``level`` (None: rank 0; kept as a base holding only where period ends still matter)."""
    if level is None:
        if period_based:
            return TierHolding(level="", rank=0, acquired_at=holding.acquired_at, period_end=holding.period_end)
        return None
    return _with(holding, level=level.key, rank=level.rank, drop_at=None, drop_level=None)


def _roll_over(
    tx: LedgerTx,
    working: ParticipantState,
    lifecycle: Lifecycle,
    qualified: Level | None,
    counters: Mapping[str, object],
) -> None:
    """The period's qualifying counters roll over, in the review's transaction (so both commit or neither)."""
    if lifecycle.counters is None:
        return
    changed = rolled_over(dict(counters), lifecycle.counters, qualified)  # type: ignore[arg-type]
    for key, value in changed.items():
        old = working.counters.get(key)
        working.counters[key] = value
        tx.note_state(working.id, "counter", key, "set", old, value, source="lifecycle")
    if changed:
        working.counters_changed()


# --- the API ----------------------------------------------------------------------------------------------------


def set_manual(
    tx: LedgerTx,
    state: ParticipantState,
    definition: TierDefinition,
    level_key: str,
    expires_at: datetime | None,
    now: datetime,
) -> TierHolding:
    """``PUT …/state/tiers/{key}``: the level, removed at ``expires_at`` (replacing any pending expiry or drop).

    Raises:
        ActionFailed: the tier has no such level (the caller answers 400).
    """
    level = level_by_key(definition.levels, level_key)
    if level is None:
        raise ActionFailed(f"tier {definition.key!r} has no level {level_key!r}")
    working = tx.edit(state)
    old = working.tiers.get(definition.program_id, {}).get(definition.key)
    holding = _with(_earned(definition, level, now, old), expires_at=expires_at)
    _put(tx, working, definition.program_id, definition.key, holding, "api")
    return holding


def remove_manual(tx: LedgerTx, state: ParticipantState, definition: TierDefinition) -> None:
    """``DELETE …/state/tiers/{key}``: back to rank 0; pending expiries and drops are gone with the holding."""
    old = state.tiers.get(definition.program_id, {}).get(definition.key)
    if old is None or old.rank == 0:
        return
    working = tx.edit(state)
    base = None
    if _mode(definition) == "PERIOD_BASED" and old.period_end is not None:
        base = TierHolding(level="", rank=0, acquired_at=old.acquired_at, period_end=old.period_end)
    _put(tx, working, definition.program_id, definition.key, base, "api")
