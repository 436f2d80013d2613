"""Tier definitions (``…/programs/{id}/tiers``) and a participant's tiers set by hand (``…/state/tiers``).

Definitions are few and read on every event of their program, so all of them live in memory
(:attr:`Tiers.by_program`, handed to the step as it is: no copy per event) and are written straight to the
``tiers`` database, like programs and rewards. A change applies from the next event on; levels participants
already hold are not recomputed (the hosted rule).

A manual set or removal is a ledger transaction on the participant's working copy, published through the engine's
sink like an operator's edit of tags: it runs without awaiting between reading the participant and publishing, so
no event step interleaves, and it answers once durable. Its state-history entry and the schedule entry of an
``expires_at`` commit in the same record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from scrip_actor.config import Limits
from scrip_actor.durations import parse_duration
from scrip_actor.engine._catalog import Catalog, utc_or_none
from scrip_actor.engine._validation import new_id, validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.ledger import ActionFailed, Changes, LedgerTx, ParticipantState, World
from scrip_actor.store import Op, Store, Writer, encode
from scrip_actor.tier_effects import remove_manual, set_manual
from scrip_actor.tiers import (
    Level,
    LevelPatch,
    Lifecycle,
    ParticipantInactive,
    Qualification,
    TierArchived,
    TierCreate,
    TierDefinition,
    TierHolding,
    TierState,
    TierStateSet,
    TierUpdate,
    level_by_key,
)

__all__ = ["Tiers"]

TIERS_PER_PROGRAM_MAX = 50


RETENTION_DURATION_MIN = timedelta(seconds=1)  # as a budget interval's floor (scrip_actor/budgets.py)


class Tiers:
    """CRUD of tier definitions and the manual tier state of participants (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: Store,
        writer: Writer,
        clock: Callable[[], datetime],
        limits: Limits,
        world: World,
        participant: Callable[[str], ParticipantState | None],
        publish: Callable[[Changes, list[Op]], int],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._writer = writer
        self._clock = clock
        self._limits = limits
        self._world = world
        self._participant = participant
        self._publish = publish
        self.by_program: dict[str, dict[str, TierDefinition]] = {}

    def load(self) -> None:
        """Read every definition back (on open)."""
        for _, raw in self._store.scan("tiers"):
            definition = msgspec.json.decode(raw, type=TierDefinition)
            self.by_program.setdefault(definition.program_id, {})[definition.key] = definition

    # --- definitions ----------------------------------------------------------------------------------------

    async def create(self, program_id: str, request: TierCreate) -> TierDefinition:
        """Define a tier; 409 under an archived program, for a key the program already has, or a rank clash."""
        request = validated(request)
        program = self._catalog.program(program_id)
        if program.status == "ARCHIVED":
            raise Conflict(f"program {program_id} is archived")
        existing = self.by_program.get(program_id, {})
        if request.key in existing:
            raise Conflict(f"the program already has a tier {request.key!r}")
        if len(existing) >= TIERS_PER_PROGRAM_MAX:
            raise ValidationFailed(f"a program has at most {TIERS_PER_PROGRAM_MAX} tiers")
        now = self._clock()
        levels = [
            Level(id=new_id(), created_at=now, updated_at=now, **_level_fields(msgspec.structs.asdict(spec)))
            for spec in request.levels
        ]
        definition = TierDefinition(
            id=new_id(),
            program_id=program_id,
            key=request.key,
            display_name=request.display_name,
            levels=_checked_levels(levels),
            lifecycle=_checked_lifecycle(request.lifecycle, levels),
            created_at=now,
            updated_at=now,
        )
        await self._save(definition)
        return definition

    def list(self, program_id: str) -> list[TierDefinition]:
        """A program's tiers of every status, oldest first (the route filters by ``status``)."""
        self._catalog.program(program_id)
        tiers = self.by_program.get(program_id, {}).values()
        return sorted(tiers, key=lambda tier: (tier.created_at, tier.key))

    def get(self, program_id: str, key: str) -> TierDefinition:
        """One tier of a program by key; 404 if there is none."""
        self._catalog.program(program_id)
        definition = self.by_program.get(program_id, {}).get(key)
        if definition is None:
            raise NotFound("tier", key)
        return definition

    async def update(self, program_id: str, key: str, request: TierUpdate) -> TierDefinition:
        """Change the display name, upsert levels by key, replace (or with ``{}`` clear) the lifecycle."""
        request = validated(request)
        definition = self.get(program_id, key)
        if definition.status == "ARCHIVED":
            raise TierArchived(f"tier {key!r} is archived")
        now = self._clock()
        levels = {level.key: level for level in definition.levels}
        for patch in request.levels or []:
            levels[patch.key] = _patched(levels.get(patch.key), patch, now)
        changed = _checked_levels(list(levels.values()))
        lifecycle = definition.lifecycle if request.lifecycle is None else request.lifecycle
        updated = msgspec.structs.replace(
            definition,
            display_name=request.display_name if request.display_name is not None else definition.display_name,
            levels=changed,
            lifecycle=_checked_lifecycle(lifecycle, changed),
            updated_at=now,
        )
        await self._save(updated)
        return updated

    async def archive(self, program_id: str, key: str) -> TierDefinition:
        """ARCHIVED for good: its SET_TIER actions are skipped, manual sets refused, its lifecycle stops."""
        definition = self.get(program_id, key)
        if definition.status == "ARCHIVED":
            raise TierArchived(f"tier {key!r} is already archived")
        now = self._clock()
        archived = msgspec.structs.replace(definition, status="ARCHIVED", archived_at=now, updated_at=now)
        await self._save(archived)
        return archived

    async def _save(self, definition: TierDefinition) -> None:
        # Swapped whole (never changed in place): a step holding the old definition keeps a consistent one.
        program = dict(self.by_program.get(definition.program_id, {}))
        program[definition.key] = definition
        self.by_program[definition.program_id] = program
        op: Op = ("tiers", f"{definition.program_id}\0{definition.key}".encode(), encode(definition))
        await self._writer.wait_durable(self._writer.append([op]))

    # --- a participant's tiers ------------------------------------------------------------------------------

    def states(self, participant_id: str, program_id: str) -> list[TierState]:
        """The levels a participant holds in a program (rank above 0), by tier key."""
        state, _ = self._enrolled(participant_id, program_id)
        held = state.tiers.get(program_id, {})
        tiers = self.by_program.get(program_id, {})
        return [_state_view(tiers[key], held[key]) for key in sorted(held) if held[key].rank > 0 and key in tiers]

    def state(self, participant_id: str, program_id: str, key: str) -> TierState:
        """One tier's level; 404 when the participant holds no level of it."""
        state, _ = self._enrolled(participant_id, program_id)
        definition = self.get(program_id, key)
        holding = state.tiers.get(program_id, {}).get(key)
        if holding is None or holding.rank == 0:
            raise NotFound("tier state", key)
        return _state_view(definition, holding)

    async def set_state(
        self,
        participant_id: str,
        program_id: str,
        key: str,
        request: TierStateSet,
        record_ops: Callable[[TierState], list[Op]] | None = None,
    ) -> TierState:
        """Set a level by hand (replacing any pending expiry); removed at ``expires_at`` if given.

        ``record_ops(answer)``: more ops for the change's own record (partitioned mode: the log offset and the
        answer kept under it)."""
        request = validated(request)
        state, definition = self._changeable(participant_id, program_id, key)
        now = self._clock()
        expires_at = utc_or_none(request.expires_at, "expires_at")  # a naive or out-of-range time is a 400
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed.field("expires_at", "invalid", "expires_at must be in the future")
        tx = LedgerTx(self._world, now=now, id_seed=new_id(), program_id=program_id)
        try:
            holding = set_manual(tx, state, definition, request.level, expires_at, now)
        except ActionFailed as error:
            raise ValidationFailed.field("level", "unknown", str(error)) from None
        answer = _state_view(definition, holding)
        await self._commit(tx, now, [] if record_ops is None else record_ops(answer))
        return answer

    async def delete_state(
        self, participant_id: str, program_id: str, key: str, record_ops: Callable[[None], list[Op]] | None = None
    ) -> None:
        """Back to rank 0 (nothing to do if no level is held); pending expiries go with the level.
        ``record_ops(None)``: as for :meth:`set_state` (written even when there was nothing to remove)."""
        state, definition = self._changeable(participant_id, program_id, key)
        now = self._clock()
        tx = LedgerTx(self._world, now=now, id_seed=new_id(), program_id=program_id)
        remove_manual(tx, state, definition)
        extra_ops = [] if record_ops is None else record_ops(None)
        if not tx.is_empty():
            await self._commit(tx, now, extra_ops)
        elif extra_ops:
            await self._writer.wait_durable(self._writer.append(extra_ops))

    async def _commit(self, tx: LedgerTx, now: datetime, extra_ops: list[Op]) -> None:
        try:
            changes = tx.commit(now)
        except ActionFailed as error:  # pragma: no cover - a tier change moves no value
            raise Conflict(str(error)) from None
        await self._writer.wait_durable(self._publish(changes, extra_ops))

    def _enrolled(self, participant_id: str, program_id: str) -> tuple[ParticipantState, Any]:
        state = self._participant(participant_id)
        if state is None:
            raise NotFound("participant", participant_id)
        program = self._catalog.program(program_id)
        if program_id not in state.program_ids:
            raise ParticipantInactive(f"participant {participant_id} is not enrolled in program {program_id}")
        return state, program

    def _changeable(self, participant_id: str, program_id: str, key: str) -> tuple[ParticipantState, TierDefinition]:
        """The participant and tier of a manual change: 404s, then 409 participant_inactive and tier_archived."""
        state, program = self._enrolled(participant_id, program_id)
        definition = self.get(program_id, key)
        if state.status != "ACTIVE" or program.status != "ACTIVE":
            raise ParticipantInactive(
                f"participant {participant_id} is {state.status} and program {program_id} is {program.status}: "
                "tiers change only for ACTIVE participants of ACTIVE programs"
            )
        if definition.status == "ARCHIVED":
            raise TierArchived(f"tier {key!r} is archived")
        return state, definition


def _state_view(definition: TierDefinition, holding: TierHolding) -> TierState:
    level = level_by_key(definition.levels, holding.level)
    review = [moment for moment in (holding.period_end, holding.active_until) if moment is not None]
    return TierState(
        key=definition.key,
        program_id=definition.program_id,
        level=holding.level,
        rank=holding.rank,
        display_name=level.display_name if level else None,
        benefits=level.benefits if level else {},
        acquired_at=holding.acquired_at,
        expires_at=holding.expires_at,
        next_review_at=min(review) if review else None,
        drop_at=holding.drop_at,
    )


def _level_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A level's fields with an empty qualification (``{}``: no criteria) stored as none."""
    qualification = fields.get("qualification")
    if isinstance(qualification, Qualification) and not qualification.criteria:
        fields["qualification"] = None
    return fields


def _patched(level: Level | None, patch: LevelPatch, now: datetime) -> Level:
    given = {name: getattr(patch, name) for name in patch.__struct_fields__ if getattr(patch, name) is not None}
    if level is None:
        if patch.rank is None:
            raise ValidationFailed.field("levels.rank", "required", f"new level {patch.key!r} needs a rank")
        return Level(id=new_id(), created_at=now, updated_at=now, **_level_fields(given))
    return msgspec.structs.replace(level, **_level_fields(given), updated_at=now)


def _checked_levels(levels: list[Level]) -> list[Level]:
    """Keys and ranks unique (409 otherwise), sorted by rank."""
    if len({level.key for level in levels}) != len(levels):
        raise Conflict("level keys must be unique within a tier")
    if len({level.rank for level in levels}) != len(levels):
        raise Conflict("level ranks must be unique within a tier")
    if len(levels) > 50:
        raise ValidationFailed.field("levels", "too_many", "a tier has at most 50 levels")
    return sorted(levels, key=lambda level: level.rank)


def _checked_lifecycle(lifecycle: Lifecycle | None, levels: list[Level]) -> Lifecycle | None:
    """None for no lifecycle (``{}`` clears it); refuse (400) what could not run."""
    if lifecycle is None or lifecycle.retention is None:
        if lifecycle is not None and lifecycle != Lifecycle():
            raise ValidationFailed.field("lifecycle.retention", "required", "a lifecycle needs its retention")
        return None
    retention = lifecycle.retention
    duration_needed = retention.mode == "ACTIVITY_REFRESH" or (
        lifecycle.qualification_period is not None and lifecycle.qualification_period.type == "NONE"
    )
    if retention.duration is not None:
        try:
            duration = parse_duration(retention.duration)  # refuses zero, negative and over 100 years
        except ValueError:
            raise ValidationFailed.field(
                "lifecycle.retention.duration", "invalid", "a positive Go duration such as 720h"
            ) from None
        if duration < RETENTION_DURATION_MIN:  # each period or timer is a review: a tiny one never catches up
            raise ValidationFailed.field(
                "lifecycle.retention.duration", "invalid", f"at least {RETENTION_DURATION_MIN.total_seconds():g}s"
            )
    elif duration_needed:
        raise ValidationFailed.field(
            "lifecycle.retention.duration", "required", "ACTIVITY_REFRESH and period type NONE need a duration"
        )
    policy = lifecycle.downgrade_policy
    if policy is not None and policy.min_level is not None and policy.min_level not in {lv.key for lv in levels}:
        raise ValidationFailed.field("lifecycle.downgrade_policy.min_level", "unknown", "min_level names no level")
    return lifecycle
