"""Tiers, the pure part: definitions, what a participant holds, and the arithmetic of qualification and lifecycle.

A *tier* (``status``, ``loyalty``) is defined per program with ranked *levels* (``silver`` rank 1, ``gold`` rank
2). Rank 0 is the base: no level. A level may carry a ``qualification``: counter criteria combined with ALL or
ANY. After an event's rules the participant moves *up* to the highest level whose criteria pass
(:func:`qualifying_level`), never down. Down only happens through the tier's optional ``lifecycle``:

* ``PERIOD_BASED``: at each qualification period's end (:func:`next_period_end`) the level is reviewed against
  the counters of the period that ended (:func:`downgrade_rank`), and the qualifying counters roll over
  (:func:`rolled_over`: NONE resets them, EXCESS keeps what lies above the threshold of the level qualified for);
* ``ACTIVITY_REFRESH``: every event of the participant in the program pushes a deadline ``duration`` ahead; when
  it passes without an event the level is reviewed the same way.

A review that would lower the level waits ``status_validity.extend_months`` and ``grace_days`` first (a pending
*drop*); reaching the level's criteria again in that window cancels it. Nothing here does I/O, reads a clock or
touches a participant: scrip_actor.tier_effects applies these decisions inside a ledger transaction.
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from scrip_actor.errors import Conflict

__all__ = [
    "LEVELS_PER_TIER_MAX",
    "Criterion",
    "Level",
    "LevelPatch",
    "LevelSpec",
    "Lifecycle",
    "ParticipantInactive",
    "Qualification",
    "TierArchived",
    "TierCreate",
    "TierDefinition",
    "TierHolding",
    "TierState",
    "TierStateSet",
    "TierUpdate",
    "add_months",
    "downgrade_rank",
    "holding_due",
    "level_by_key",
    "level_by_rank",
    "next_period_end",
    "qualifies",
    "qualifying_level",
    "rolled_over",
    "threshold_decimal",
]

LEVELS_PER_TIER_MAX = 50
CRITERIA_PER_LEVEL_MAX = 20
_request: dict[str, Any] = {"frozen": True, "forbid_unknown_fields": True, "kw_only": True}

TierKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
LevelKey = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
CounterKey = Annotated[str, Meta(min_length=1, max_length=255)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=255)]
Rank = Annotated[int, Meta(ge=1, le=1_000_000)]
Color = Annotated[str, Meta(pattern=r"^#[0-9A-Fa-f]{6}$")]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
GoDuration = Annotated[str, Meta(min_length=1, max_length=32)]
Operator = Literal[">=", ">", "==", "<=", "<"]


class TierArchived(Conflict):
    """The tier is archived: it cannot be changed, set or archived again (HTTP 409)."""

    code = "tier_archived"


class ParticipantInactive(Conflict):
    """A manual tier change needs an ACTIVE participant enrolled in an ACTIVE program (HTTP 409)."""

    code = "participant_inactive"


# --- definitions ----------------------------------------------------------------------------------------------


class Criterion(Struct, **_request):
    """One counter test: ``counter operator threshold`` (an absent counter reads 0)."""

    counter: CounterKey
    operator: Operator = ">="
    threshold: int | float


class Qualification(Struct, **_request):
    """How a level is earned: ALL or ANY of its criteria. No criteria: the level is never earned automatically."""

    mode: Literal["ALL", "ANY"] = "ALL"
    criteria: Annotated[list[Criterion], Meta(max_length=CRITERIA_PER_LEVEL_MAX)] = []


class Retention(Struct, **_request):
    """How a level is kept: reviewed at period ends, or while events keep coming within ``duration``."""

    mode: Literal["PERIOD_BASED", "ACTIVITY_REFRESH"]
    duration: GoDuration | None = None


class QualificationPeriod(Struct, **_request):
    """The periods of PERIOD_BASED retention: calendar years, years from a fixed day, or rolling ``duration``s."""

    type: Literal["CALENDAR_YEAR", "FIXED_YEAR", "NONE"] = "CALENDAR_YEAR"
    start_month: Annotated[int, Meta(ge=1, le=12)] = 1
    start_day: Annotated[int, Meta(ge=1, le=31)] = 1


class StatusValidity(Struct, **_request):
    """A level lost at a review stays valid this many months past the boundary."""

    extend_months: Annotated[int, Meta(ge=0, le=120)] = 0


class DowngradePolicy(Struct, **_request):
    """What a review does to a level whose criteria no longer pass."""

    mode: Literal["DROP_TO_QUALIFYING", "DROP_ONE", "HOLD"] = "DROP_TO_QUALIFYING"
    grace_days: Annotated[int, Meta(ge=0, le=3650)] = 0
    min_level: LevelKey | None = None


class CounterRollover(Struct, **_request):
    """What happens to the ``qualifying`` counters at a period end."""

    rollover: Literal["NONE", "EXCESS"] = "NONE"
    qualifying: Annotated[list[CounterKey], Meta(max_length=CRITERIA_PER_LEVEL_MAX)] = []


class Lifecycle(Struct, **_request):
    """How levels are kept and lost. Without ``retention`` (e.g. ``{}``) there is no lifecycle: rules-only."""

    retention: Retention | None = None
    qualification_period: QualificationPeriod | None = None
    status_validity: StatusValidity | None = None
    downgrade_policy: DowngradePolicy | None = None
    counters: CounterRollover | None = None


class LevelSpec(Struct, **_request):
    """A level as created."""

    key: LevelKey
    rank: Rank
    display_name: DisplayName | None = None
    qualification: Qualification | None = None
    benefits: dict[str, Any] = {}
    color: Color | None = None
    icon_url: Url | None = None


class LevelPatch(Struct, **_request):
    """A level in a PATCH: upserted by key; a new level needs a rank. ``qualification: {}`` clears it."""

    key: LevelKey
    rank: Rank | None = None
    display_name: DisplayName | None = None
    qualification: Qualification | None = None
    benefits: dict[str, Any] | None = None
    color: Color | None = None
    icon_url: Url | None = None


class TierCreate(Struct, **_request):
    """``POST /v1/programs/{id}/tiers``."""

    key: TierKey
    display_name: DisplayName | None = None
    levels: Annotated[list[LevelSpec], Meta(min_length=1, max_length=LEVELS_PER_TIER_MAX)]
    lifecycle: Lifecycle | None = None


class TierUpdate(Struct, **_request):
    """``PATCH /v1/programs/{id}/tiers/{key}``: omitted or null leaves a field; ``lifecycle: {}`` clears it."""

    display_name: DisplayName | None = None
    levels: Annotated[list[LevelPatch], Meta(max_length=LEVELS_PER_TIER_MAX)] | None = None
    lifecycle: Lifecycle | None = None


class Level(Struct, kw_only=True):
    """A level as stored and answered."""

    id: str
    key: str
    rank: int
    display_name: str | None = None
    qualification: Qualification | None = None
    benefits: dict[str, Any] = {}
    color: str | None = None
    icon_url: str | None = None
    created_at: datetime
    updated_at: datetime


class TierDefinition(Struct, kw_only=True):
    """A tier of a program (the hosted "tier type"): its levels by rank, its lifecycle if any."""

    id: str
    program_id: str
    key: str
    display_name: str | None = None
    status: Literal["ACTIVE", "ARCHIVED"] = "ACTIVE"
    levels: list[Level]  # by rank, lowest first
    lifecycle: Lifecycle | None = None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


# --- a participant's state ------------------------------------------------------------------------------------


class TierHolding(Struct, kw_only=True, array_like=True, frozen=True):
    """What a participant holds of one tier, with the lifecycle's bookkeeping (stored in its record).

    ``rank`` 0 with ``level`` "" is the base: no level, kept only so a PERIOD_BASED tier's period ends still
    reach the participant (its counters roll over whether it earned a level or not). Each ``*_at`` is a deadline
    the sweep acts on: ``expires_at`` (a manual set's removal), ``period_end`` (PERIOD_BASED review),
    ``active_until`` (ACTIVITY_REFRESH review), ``drop_at`` (a pending drop to ``drop_level`` after validity and
    grace). Time is UTC.
    """

    level: str
    rank: int
    acquired_at: datetime
    expires_at: datetime | None = None
    period_end: datetime | None = None
    active_until: datetime | None = None
    drop_at: datetime | None = None
    drop_level: str | None = None


class TierState(Struct, kw_only=True):
    """``GET …/state/tiers/{key}``: a participant's level of a tier."""

    key: str
    program_id: str
    level: str
    rank: int
    display_name: str | None = None
    benefits: dict[str, Any] = {}
    acquired_at: datetime
    expires_at: datetime | None = None
    next_review_at: datetime | None = None  # ours: when the lifecycle next looks at the level (period end/timer)
    drop_at: datetime | None = None  # ours: a pending downgrade (validity, grace), cancelled by requalifying


class TierStateSet(Struct, **_request):
    """``PUT …/state/tiers/{key}?program_id=``: set a level by hand, removed at ``expires_at`` if given."""

    level: LevelKey
    expires_at: datetime | None = None


# --- qualification --------------------------------------------------------------------------------------------

_ZERO = Decimal(0)


@functools.lru_cache(maxsize=4096)
def threshold_decimal(threshold: int | float) -> Decimal:
    """A criterion's threshold as the exact decimal it was written as (``0.1`` is 0.1, not the binary double);
    cached, since every event of a program with tiers compares against the same few."""
    return Decimal(str(threshold))


def _passes(criterion: Criterion, counters: dict[str, Decimal]) -> bool:
    value = counters.get(criterion.counter, _ZERO)
    threshold = threshold_decimal(criterion.threshold)
    operator = criterion.operator
    if operator == ">=":
        return value >= threshold
    if operator == ">":
        return value > threshold
    if operator == "==":
        return value == threshold
    if operator == "<=":
        return value <= threshold
    assert operator == "<"
    return value < threshold


def qualifies(level: Level, counters: dict[str, Decimal]) -> bool:
    """True when ``counters`` meet the level's qualification (a level without criteria never qualifies)."""
    qualification = level.qualification
    if qualification is None or not qualification.criteria:
        return False
    results = (_passes(criterion, counters) for criterion in qualification.criteria)
    return all(results) if qualification.mode == "ALL" else any(results)


def qualifying_level(levels: list[Level], counters: dict[str, Decimal]) -> Level | None:
    """The highest-ranked level whose criteria ``counters`` meet, or None (rank 0)."""
    best: Level | None = None
    for level in levels:
        if (best is None or level.rank > best.rank) and qualifies(level, counters):
            best = level
    return best


def level_by_key(levels: list[Level], key: str | None) -> Level | None:
    """The level keyed ``key``, or None (also for None: a holding of no level)."""
    return next((level for level in levels if level.key == key), None)


def level_by_rank(levels: list[Level], rank: int) -> Level | None:
    """The level of exactly ``rank``, or None."""
    return next((level for level in levels if level.rank == rank), None)


def downgrade_rank(levels: list[Level], current_rank: int, qualifying_rank: int, policy: DowngradePolicy) -> int:
    """The rank a review leaves: never above ``current_rank``, never below the policy's floor (if held).

    DROP_TO_QUALIFYING: the qualifying rank. DROP_ONE: the next level down, or the qualifying rank if higher.
    HOLD: the current rank (the lifecycle never lowers it; SET_TIER and the API still can).
    """
    if qualifying_rank >= current_rank or policy.mode == "HOLD":
        return current_rank
    if policy.mode == "DROP_ONE":
        lower = [level.rank for level in levels if level.rank < current_rank]
        target = max(max(lower, default=0), qualifying_rank)
    else:
        target = qualifying_rank
    floor = next((level.rank for level in levels if level.key == policy.min_level), 0)
    target = max(target, min(floor, current_rank))
    assert 0 <= target <= current_rank
    return target


def rolled_over(counters: dict[str, Decimal], rollover: CounterRollover, qualified: Level | None) -> dict[str, Decimal]:
    """The qualifying counters' values after a period end (only those that change).

    NONE: each is 0. EXCESS: what lies above the threshold the qualified level sets for that counter; a counter
    the level sets no threshold for (or no level qualified) starts again at 0, since nothing above a threshold
    was earned. Never negative.
    """
    result: dict[str, Decimal] = {}
    thresholds: dict[str, Decimal] = {}
    if rollover.rollover == "EXCESS" and qualified is not None and qualified.qualification is not None:
        for criterion in qualified.qualification.criteria:
            thresholds[criterion.counter] = threshold_decimal(criterion.threshold)
    for key in rollover.qualifying:
        value = counters.get(key)
        if value is None:
            continue
        threshold = thresholds.get(key)
        new = max(_ZERO, value - threshold) if threshold is not None else _ZERO
        if new != value:
            result[key] = new
    return result


# --- time -----------------------------------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, the day clamped to the month's length (Jan 31 + 1 = Feb 28/29)."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _anniversary(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def next_period_end(
    period: QualificationPeriod, duration: timedelta | None, start: datetime, after: datetime
) -> datetime:
    """The first period boundary strictly after ``after``.

    CALENDAR_YEAR: each 1 January 00:00 UTC. FIXED_YEAR: each ``start_month``/``start_day`` 00:00 UTC (a 31st in
    a shorter month is its last day). NONE: rolling periods of ``duration`` from ``start``.
    """
    if period.type == "NONE":
        assert duration is not None
        assert duration > timedelta(0)
        if after < start:
            return start + duration
        periods = (after - start) // duration + 1
        return start + duration * periods
    month, day = (1, 1) if period.type == "CALENDAR_YEAR" else (period.start_month, period.start_day)
    boundary = _anniversary(after.year, month, day)
    if boundary <= after:
        boundary = _anniversary(after.year + 1, month, day)
    assert boundary > after
    return boundary


def holding_due(holding: TierHolding) -> datetime | None:
    """The holding's next deadline (the earliest set), or None."""
    moments = [
        moment
        for moment in (holding.expires_at, holding.period_end, holding.active_until, holding.drop_at)
        if moment is not None
    ]
    return min(moments) if moments else None
