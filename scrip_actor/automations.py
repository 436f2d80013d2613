"""Automations: the records, the requests, and when a trigger is due (pure; docs/automations.md).

An automation makes events no client sends: ``cron`` (a 5-field expression in an IANA timezone), ``one_time``
(at ``trigger_at``) and ``immediate`` (once, when created). Its scope is ``program`` (one event per fire, to the
``participant_id`` it names) or ``participants`` (a fan-out to every participant of the program that passes
``participant_filter`` and, at fire time, ``guard_condition``). The engine's stage (engine/_automations.py) stores
and runs them; this module only validates and computes times.

Cron follows Debian cron in a zone with daylight saving time (the cronsim library's rule): a time of day that does
not exist on the spring-forward day (02:30 in America/New_York) fires at the first minute that does (03:00 EDT);
one that occurs twice on the fall-back day (01:30) fires once, at its first occurrence (EDT).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError
from msgspec import Meta, Struct

from scrip_actor.errors import ValidationFailed

__all__ = [
    "Automation",
    "AutomationCreate",
    "AutomationRun",
    "AutomationUpdate",
    "Trigger",
    "next_cron",
    "zone",
]

TriggerType = Literal["cron", "one_time", "immediate"]
Scope = Literal["program", "participants"]
AutomationStatus = Literal["active", "paused", "archived"]
ExecutionStatus = Literal["idle", "pending", "executing", "completed", "failed", "cancelled"]
Name = Annotated[str, Meta(min_length=1, max_length=255)]
Description = Annotated[str, Meta(max_length=1000)]
Expression = Annotated[str, Meta(min_length=1, max_length=4096)]
CronText = Annotated[str, Meta(min_length=1, max_length=255)]
ZoneName = Annotated[str, Meta(min_length=1, max_length=64)]
_request = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}

# Which scopes each trigger allows (the hosted table; participant_state is not built here).
VALID_SCOPES: dict[str, frozenset[str]] = {
    "cron": frozenset({"program", "participants"}),
    "one_time": frozenset({"program", "participants"}),
    "immediate": frozenset({"participants"}),
}


class Trigger(Struct, **_request):  # type: ignore[call-arg]
    """How an automation fires: ``type`` and that type's fields (cron_expression/timezone, or trigger_at)."""

    type: TriggerType
    cron_expression: CronText | None = None
    timezone: ZoneName | None = None
    trigger_at: datetime | None = None


class AutomationCreate(Struct, **_request):  # type: ignore[call-arg]
    """``POST /v1/programs/{id}/automations``."""

    name: Name
    trigger: Trigger
    scope: Scope
    event_name: Name
    payload: dict[str, Any] = {}
    description: Description | None = None
    participant_filter: Expression | None = None
    guard_condition: Expression | None = None
    participant_id: str | None = None


class AutomationUpdate(Struct, **_request):  # type: ignore[call-arg]
    """``PATCH …/automations/{id}``: any of these; ``status`` only active or paused (DELETE archives)."""

    name: Name | None = None
    description: Description | None = None
    event_name: Name | None = None
    payload: dict[str, Any] | None = None
    status: Literal["active", "paused"] | None = None
    cron_expression: CronText | None = None
    timezone: ZoneName | None = None
    trigger_at: datetime | None = None
    participant_filter: Expression | None = None
    guard_condition: Expression | None = None


class Automation(Struct, kw_only=True):
    """An automation as stored and served (the hosted fields; fan-out progress for the participants scope)."""

    id: str
    program_id: str
    name: str
    description: str | None = None
    trigger_type: TriggerType
    scope: Scope
    event_name: str
    payload: dict[str, Any] = {}
    cron_expression: str | None = None
    timezone: str = "UTC"
    trigger_at: datetime | None = None
    participant_id: str | None = None
    participant_filter: str | None = None
    guard_condition: str | None = None
    status: AutomationStatus = "active"
    source: Literal["api", "rule_action"] = "api"
    execution_status: ExecutionStatus = "idle"
    execution_started_at: datetime | None = None
    execution_completed_at: datetime | None = None
    execution_error: str | None = None
    participants_total: int | None = None
    participants_processed: int | None = None
    events_created: int | None = None
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    last_error: str | None = None
    processed_at: datetime | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime


class AutomationRun(Struct, kw_only=True, frozen=True):
    """One fire of an automation, durable while it runs (``automation_runs``): what it sends, and how far it got.

    The event it sends is fixed when the fire starts (name, payload, filter, guard, target), so a run resumed after
    a crash sends exactly the events it would have sent, under the same idempotency keys.
    """

    automation_id: str
    program_id: str
    fire_ms: int
    scope: Scope
    event_data: dict[str, Any]
    participant_id: str | None = None
    participant_filter: str | None = None
    guard_condition: str | None = None
    status: Literal["executing", "completed", "cancelled", "failed"] = "executing"
    cursor: str | None = None  # the last participant key handled (store order); None: from the first
    participants_processed: int = 0
    events_created: int = 0
    error: str | None = None


def zone(name: str | None, field: str = "timezone") -> ZoneInfo:
    """An IANA zone (default UTC); an unknown name is a 400."""
    if name is None or name == "UTC":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed.field(field, "invalid", f"{name!r} is not an IANA timezone") from None


def check_cron(expression: str, field: str = "cron_expression") -> str:
    """A 5-field cron expression (minute hour day month weekday); inline CRON_TZ=/TZ= and 6 fields refused."""
    text = " ".join(expression.split())
    if "TZ=" in text.upper():
        raise ValidationFailed.field(field, "invalid", "set the zone with timezone, not CRON_TZ= or TZ= in the text")
    if len(text.split()) != 5:
        raise ValidationFailed.field(field, "invalid", "a cron expression has 5 fields: minute hour day month weekday")
    try:
        next(CronSim(text, datetime(2026, 1, 1, tzinfo=UTC)))
    except (CronSimError, StopIteration) as error:
        raise ValidationFailed.field(
            field, "invalid", f"{expression!r} is not a valid cron expression: {error}"
        ) from None
    return text


def next_cron(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (UTC), or None if the expression never fires again."""
    local = after.astimezone(zone(timezone)).replace(microsecond=0)
    try:
        return next(CronSim(expression, local)).astimezone(UTC)
    except StopIteration:
        return None


def to_ms(moment: datetime) -> int:
    """A UTC time as integer milliseconds (schedule keys, idempotency keys)."""
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def view(automation: Automation) -> Automation:
    """A copy for a caller (the stored one is replaced whole on every change, never edited in place)."""
    return msgspec.structs.replace(automation)
