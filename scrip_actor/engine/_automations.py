"""Automations (``…/programs/{id}/automations``): their definitions, and when each fires next (docs/automations.md).

Definitions are few, so all of them live in memory and are written whole to ``automations``, like tiers. When
each fires next is a durable schedule, ``automation_schedule[be64(due_ms) + automation id]``, written in the same
record as the definition; the runner (engine/_automation_runs.py) reads it from the store in key order, so what is
due is found without a heap in memory whatever its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from scrip_actor.automations import (
    VALID_SCOPES,
    Automation,
    AutomationCreate,
    AutomationUpdate,
    check_cron,
    next_cron,
    schedule_config,
    to_ms,
    view,
    zone,
)
from scrip_actor.config import Limits
from scrip_actor.engine._catalog import Catalog, utc_or_none
from scrip_actor.engine._queries import page_in_memory, page_size
from scrip_actor.engine._validation import new_id, validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.ledger import FollowUp
from scrip_actor.model import Event, Page
from scrip_actor.rules import compile_condition
from scrip_actor.store import Op, Store, Writer, be64, encode

__all__ = ["AUTOMATIONS_PER_PROGRAM_MAX", "Automations", "schedule_key"]

AUTOMATIONS_PER_PROGRAM_MAX = 1000
MANUAL = b"\0manual"  # the suffix of a schedule entry made by POST …/trigger (fires once, schedules nothing)
REFRESH = b"\0refresh"  # participant_state: (re-)enrol the participants (at create, on refresh, then periodically)
SUBSCRIBER = b"\0p"  # participant_state: + participant id, that subscription's next fire


def schedule_key(due_ms: int, automation_id: str, manual: bool | bytes = False) -> bytes:
    """``be64(due_ms) + automation id`` and the tail of its kind (``manual``: True for MANUAL, or a tail)."""
    tail = MANUAL if manual is True else (manual or b"")
    return be64(due_ms) + automation_id.encode() + tail


class Automations:
    """CRUD of automations and their schedule entries (see the module docstring).

    Args:
        check_event_data: the admission's check of event data (size, depth, JSON) as CEL sees it.
        known_participant: whether a participant id exists.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: Store,
        writer: Writer,
        clock: Callable[[], datetime],
        limits: Limits,
        check_event_data: Callable[[Any, str], Any],
        known_participant: Callable[[str], bool],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._writer = writer
        self._clock = clock
        self._limits = limits
        self._check_event_data = check_event_data
        self._known_participant = known_participant
        self.by_id: dict[str, Automation] = {}
        self.thresholds: dict[str, list[Automation]] = {}  # program id -> its active THRESHOLD automations
        self.on_scheduled: Callable[[], None] | None = None  # wakes the runner when a sooner fire is scheduled

    def load(self) -> None:
        """Read every automation back (on open)."""
        for _, raw in self._store.scan("automations"):
            automation = msgspec.json.decode(raw, type=Automation)
            self.by_id[automation.id] = automation
        for program_id in {a.program_id for a in self.by_id.values() if a.schedule_type == "THRESHOLD"}:
            self._index_thresholds(program_id)

    def _index_thresholds(self, program_id: str) -> None:
        watching = [
            a
            for a in self.by_id.values()
            if a.program_id == program_id and a.schedule_type == "THRESHOLD" and a.status == "active"
        ]
        if watching:
            self.thresholds[program_id] = watching
        else:
            self.thresholds.pop(program_id, None)

    # --- reads ----------------------------------------------------------------------------------------------

    def get(self, program_id: str, automation_id: str) -> Automation:
        """One automation of a program; 404 if the program has none of that id."""
        self._catalog.program(program_id)
        automation = self.by_id.get(automation_id)
        if automation is None or automation.program_id != program_id:
            raise NotFound("automation", automation_id)
        return view(automation)

    def list(
        self,
        program_id: str,
        *,
        trigger_type: str | None = None,
        scope: str | None = None,
        status: str | None = None,
        source: str | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A program's automations, newest first; the filters apply together (``search``: a part of the name)."""
        self._catalog.program(program_id)
        needle = search.casefold() if search else None
        found = [
            automation
            for automation in self.by_id.values()
            if automation.program_id == program_id
            and (trigger_type is None or automation.trigger_type == trigger_type)
            and (scope is None or automation.scope == scope)
            and (status is None or automation.status == status)
            and (source is None or automation.source == source)
            and (needle is None or needle in automation.name.casefold())
        ]
        page = page_in_memory(
            found, limit=page_size(limit, self._limits), cursor=cursor, key=_by_creation, shape=tuple[str, str]
        )
        page.data = [view(automation) for automation in page.data]
        return page

    # --- writes ---------------------------------------------------------------------------------------------

    async def create(self, program_id: str, request: AutomationCreate, source: str = "api") -> Automation:
        """Define an automation; it is scheduled now (an ``immediate`` one fires at once)."""
        request = validated(request)
        program = self._catalog.program(program_id)
        if program.status == "ARCHIVED":
            raise Conflict(f"program {program_id} is archived")
        siblings = [a for a in self.by_id.values() if a.program_id == program_id and a.status != "archived"]
        if any(a.name == request.name for a in siblings):
            raise Conflict(f"the program already has an automation named {request.name!r}")
        if len(siblings) >= AUTOMATIONS_PER_PROGRAM_MAX:
            raise ValidationFailed(f"a program has at most {AUTOMATIONS_PER_PROGRAM_MAX} automations")
        trigger, now = request.trigger, self._clock()
        if request.scope not in VALID_SCOPES[trigger.type]:
            raise ValidationFailed.field(
                "scope", "invalid", f"a {trigger.type} automation cannot have scope {request.scope!r}"
            )
        automation = Automation(
            id=new_id(),
            program_id=program_id,
            name=request.name,
            description=request.description,
            trigger_type=trigger.type,
            scope=request.scope,
            event_name=request.event_name,
            payload=request.payload,
            cron_expression=trigger.cron_expression,
            schedule_type=trigger.schedule_type,
            schedule_config=trigger.schedule_config,
            timezone=trigger.timezone or "UTC",
            trigger_at=utc_or_none(trigger.trigger_at, "trigger.trigger_at"),
            participant_id=request.participant_id,
            participant_filter=request.participant_filter,
            guard_condition=request.guard_condition,
            filter_hints=request.filter_hints,
            source=source,  # type: ignore[arg-type]
            created_at=now,
            updated_at=now,
        )
        automation = self._checked(automation, "trigger.")
        if automation.trigger_type == "participant_state":  # the runner enrols the participants at once
            await self.save(automation, schedule=now, manual=REFRESH)
            return view(automation)
        automation.next_run_at = self._first_fire(automation, now)
        if automation.trigger_type == "immediate":
            automation.execution_status = "pending"  # fires at once: cancellable until it starts
        await self.save(automation, schedule=automation.next_run_at)
        return view(automation)

    async def update(self, program_id: str, automation_id: str, request: AutomationUpdate) -> Automation:
        """Change fields; a new cron or trigger_at reschedules. Pausing keeps a fan-out already running going."""
        request = validated(request)
        current = self._changeable(program_id, automation_id)
        changes = {name: getattr(request, name) for name in request.__struct_fields__}
        changes = {name: value for name, value in changes.items() if value is not None}
        if not changes:
            raise ValidationFailed("give at least one field to change")
        pairs = (("cron_expression", "cron"), ("timezone", "cron"), ("trigger_at", "one_time"))
        for name, kind in (*pairs, ("schedule_config", "participant_state")):
            if name in changes and current.trigger_type != kind:
                raise ValidationFailed.field(name, "invalid", f"{name} applies to {kind} automations only")
        if "trigger_at" in changes:
            changes["trigger_at"] = utc_or_none(changes["trigger_at"], "trigger_at")
        now = self._clock()
        updated = self._checked(msgspec.structs.replace(current, **changes, updated_at=now), "")
        timing = {"cron_expression", "timezone", "trigger_at", "status"} & set(changes)
        if updated.trigger_type == "participant_state":
            refresh = updated.status == "active" and bool(
                {"status", "schedule_config", "participant_filter"} & set(changes)
            )
            await self.save(updated, schedule=now if refresh else None, manual=REFRESH)
        elif timing:
            fire = None
            if updated.status == "active" and (updated.trigger_type == "cron" or updated.processed_at is None):
                fire = self._first_fire(updated, now) if updated.trigger_type != "immediate" else None
            updated.next_run_at = fire
            await self.save(updated, schedule=fire, unschedule=current.next_run_at)
        else:
            await self.save(updated)
        return view(updated)

    async def archive(self, program_id: str, automation_id: str) -> Automation:
        """``DELETE``: archived for good (no more fires; a fan-out already running finishes). Archiving an archived
        automation answers it as it is (a DELETE repeated after a lost answer changes nothing)."""
        if self.get(program_id, automation_id).status == "archived":
            return view(self.by_id[automation_id])
        current = self._changeable(program_id, automation_id)
        now = self._clock()
        archived = msgspec.structs.replace(current, status="archived", next_run_at=None, updated_at=now)
        await self.save(archived, unschedule=current.next_run_at)
        return view(archived)

    async def trigger(self, program_id: str, automation_id: str) -> Automation:
        """Fire now (the hosted rules: active; a participants fan-out not already pending or running; cron with
        program scope moves its next run to now; one_time with program scope is refused)."""
        current = self.get(program_id, automation_id)
        busy = current.execution_status in ("pending", "executing")
        if (
            current.status != "active"
            or (current.scope == "participants" and busy)
            or (current.trigger_type == "one_time" and current.scope == "program")
            or current.trigger_type == "participant_state"
        ):
            raise ValidationFailed("Automation cannot be triggered (must be active and idle or cron+program)")
        now = self._clock()
        stored = self.by_id[automation_id]
        if stored.last_run_at is not None and stored.last_run_at >= now:  # a new fire time: new idempotency keys
            now = stored.last_run_at + timedelta(milliseconds=1)
        updated = msgspec.structs.replace(stored, execution_status="pending", updated_at=now)
        manual = not (current.trigger_type == "cron" and current.scope == "program")
        if not manual:
            updated.next_run_at = now
        await self.save(updated, schedule=now, unschedule=None if manual else stored.next_run_at, manual=manual)
        return view(updated)

    async def request_refresh(self, program_id: str, automation_id: str) -> None:
        """``POST …/refresh-subscriptions``: enrol the participants again now (participant_state and active only)."""
        current = self.get(program_id, automation_id)
        if current.trigger_type != "participant_state":
            raise ValidationFailed(
                f"refresh-subscriptions is for participant_state automations, not {current.trigger_type}"
            )
        if current.status != "active":
            raise ValidationFailed(f"automation {automation_id} is {current.status}: only an active one is refreshed")
        await self.save(self.by_id[automation_id], schedule=self._clock(), manual=REFRESH)

    async def save(
        self,
        automation: Automation,
        *,
        schedule: datetime | None = None,
        unschedule: datetime | None = None,
        manual: bool | bytes = False,
        ops: list[Op] | None = None,
    ) -> None:
        """Write ``automation`` (with its schedule entry moved from ``unschedule`` to ``schedule``) and ``ops``,
        as one record; return once durable."""
        await self._writer.wait_durable(
            self._writer.append(self.save_ops(automation, schedule, unschedule, manual, ops))
        )

    def save_ops(
        self,
        automation: Automation,
        schedule: datetime | None,
        unschedule: datetime | None,
        manual: bool | bytes = False,
        ops: list[Op] | None = None,
    ) -> list[Op]:
        """The ops of :meth:`save`, with the definition swapped in memory now (synchronous: for a record that
        also carries other ops, such as a rule action's event outcome)."""
        record: list[Op] = [("automations", automation.id.encode(), encode(automation))]
        if unschedule is not None:
            record.append(("automation_schedule", schedule_key(to_ms(unschedule), automation.id), None))
        if schedule is not None:
            record.append(("automation_schedule", schedule_key(to_ms(schedule), automation.id, manual), b""))
        record.extend(ops or [])
        self.by_id[automation.id] = automation  # swapped whole: a run holding the old one keeps a consistent one
        if automation.schedule_type == "THRESHOLD" or automation.program_id in self.thresholds:
            self._index_thresholds(automation.program_id)
        if schedule is not None and self.on_scheduled is not None:
            self.on_scheduled()
        return record

    def follow_up_ops(self, event: Event, follow_ups: list[FollowUp]) -> list[Op]:
        """A step's SCHEDULE_EVENT / BROADCAST actions as automations (``source: rule_action``), for the record
        of the event's outcome: created with it or not at all. Synchronous (the publisher calls it).

        SCHEDULE_EVENT is a one_time automation at the event's time plus ``delay`` (so it is dated from the
        event, like every effect), with program scope to the participant; BROADCAST an immediate fan-out to the
        program. Their ids derive from the event's id and the action's place, so they are the same however
        often the step would be run. Once fired they are removed (docs/automations.md): one per event could
        otherwise fill memory.
        """
        ops: list[Op] = []
        now = self._clock()
        for index, follow_up in enumerate(follow_ups):
            automation_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"scrip:follow-up:{event.id}:{index}"))
            fire = event.event_timestamp + timedelta(seconds=follow_up.delay_s)
            kind = "BROADCAST" if follow_up.broadcast else "SCHEDULE_EVENT"
            automation = Automation(
                id=automation_id,
                program_id=event.program_id,
                name=f"{kind} {follow_up.event_name!r} of event {event.id} #{index + 1}",
                description=f"made by rule {follow_up.rule_id} for event {event.id}",
                trigger_type="immediate" if follow_up.broadcast else "one_time",
                scope="participants" if follow_up.broadcast else "program",
                event_name=follow_up.event_name,
                payload=follow_up.payload,
                trigger_at=None if follow_up.broadcast else fire,
                participant_id=None if follow_up.broadcast else follow_up.participant_id,
                source="rule_action",
                next_run_at=now if follow_up.broadcast else fire,
                created_at=now,
                updated_at=now,
            )
            ops.extend(self.save_ops(automation, automation.next_run_at, None))
        return ops

    # --- checks ---------------------------------------------------------------------------------------------

    def _changeable(self, program_id: str, automation_id: str) -> Automation:
        current = self.get(program_id, automation_id)
        if current.status == "archived":
            raise Conflict(f"automation {automation_id} is archived")
        return self.by_id[automation_id]

    def _checked(self, automation: Automation, prefix: str) -> Automation:
        """Every field's rule, with a 400 naming the field (``prefix``: ``trigger.`` on create)."""
        kind = automation.trigger_type
        zone(automation.timezone, prefix + "timezone")
        if kind == "cron":
            if automation.cron_expression is None:
                raise ValidationFailed.field(prefix + "cron_expression", "required", "a cron automation needs one")
            automation.cron_expression = check_cron(automation.cron_expression, prefix + "cron_expression")
        elif automation.cron_expression is not None or automation.timezone != "UTC":
            raise ValidationFailed.field(prefix + "cron_expression", "invalid", "cron_expression is for cron only")
        if kind == "participant_state":
            schedule_config(automation.schedule_type, automation.schedule_config, prefix + "schedule_config")
        elif automation.schedule_type is not None or automation.schedule_config is not None:
            raise ValidationFailed.field(prefix + "schedule_type", "invalid", "schedule_type is for participant_state")
        if kind == "one_time":
            if automation.trigger_at is None:
                raise ValidationFailed.field(prefix + "trigger_at", "required", "a one_time automation needs one")
        elif automation.trigger_at is not None:
            raise ValidationFailed.field(prefix + "trigger_at", "invalid", "trigger_at is for one_time only")
        if automation.scope == "program":
            if automation.participant_id is None:
                raise ValidationFailed.field(
                    "participant_id", "required", "a program-scope automation sends its event to one participant"
                )
            if not self._known_participant(automation.participant_id):
                raise NotFound("participant", automation.participant_id)
            if automation.participant_filter is not None or automation.guard_condition is not None:
                raise ValidationFailed.field(
                    "participant_filter", "invalid", "participant_filter and guard_condition need participants scope"
                )
        elif automation.participant_id is not None:
            raise ValidationFailed.field("participant_id", "invalid", "participant_id is for program scope only")
        for field in ("participant_filter", "guard_condition"):
            text = getattr(automation, field)
            if text is not None:
                if len(text) > self._limits.condition_length_max:
                    raise ValidationFailed.field(field, "too_large", f"{field} is longer than the condition limit")
                compile_condition(text, field, self._catalog.cel_compiler)
        self._check_event_data(event_data(automation), "payload")
        return automation

    def _first_fire(self, automation: Automation, now: datetime) -> datetime | None:
        if automation.trigger_type == "immediate":
            return now
        if automation.trigger_type == "one_time":
            assert automation.trigger_at is not None
            if automation.trigger_at <= now:
                raise ValidationFailed.field("trigger_at", "invalid", "trigger_at must be in the future")
            return automation.trigger_at
        assert automation.cron_expression is not None
        fire = next_cron(automation.cron_expression, automation.timezone, now)
        if fire is None:
            raise ValidationFailed.field("cron_expression", "invalid", "the cron expression never fires")
        return fire


def event_data(automation: Automation) -> dict[str, Any]:
    """The generated event's data: the payload with ``type`` = the event name (the name wins over a payload key)."""
    return {**automation.payload, "type": automation.event_name}


def _by_creation(automation: Automation) -> tuple[Any, ...]:
    return (automation.created_at.isoformat(), automation.id)
