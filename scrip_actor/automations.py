"""Automations: the records, the requests, and when a trigger is due (pure; docs/automations.md).

An automation makes events no client sends: ``cron`` (a 5-field expression in an IANA timezone), ``one_time``
(at ``trigger_at``), ``immediate`` (once, when created) and ``participant_state`` (a subscription per participant:
ATTRIBUTE_DATE, INTERVAL, CRON, THRESHOLD; engine/_subscriptions.py). Its scope is ``program`` (one event per
fire, to the ``participant_id`` it names) or ``participants`` (a fan-out to every participant of the program that passes
``participant_filter`` and, at fire time, ``guard_condition``). The engine's stage (engine/_automations.py) stores
and runs them; this module only validates and computes times.

Cron follows Debian cron in a zone with daylight saving time (the cronsim library's rule): a time of day that does
not exist on the spring-forward day (02:30 in America/New_York) fires at the first minute that does (03:00 EDT);
one that occurs twice on the fall-back day (01:30) fires once, at its first occurrence (EDT).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError
from msgspec import Meta, Struct

from scrip_actor.amounts import parse_decimal
from scrip_actor.durations import parse_duration
from scrip_actor.errors import ValidationFailed

__all__ = [
    "Automation",
    "AutomationCreate",
    "AutomationRun",
    "AutomationUpdate",
    "ScheduleConfig",
    "Subscription",
    "Trigger",
    "next_cron",
    "zone",
]

TriggerType = Literal["cron", "one_time", "immediate", "participant_state"]
ScheduleType = Literal["ATTRIBUTE_DATE", "INTERVAL", "CRON", "THRESHOLD"]
Scope = Literal["program", "participants"]
AutomationStatus = Literal["active", "paused", "archived"]
ExecutionStatus = Literal["idle", "pending", "executing", "completed", "failed", "cancelled"]
Name = Annotated[str, Meta(min_length=1, max_length=255)]
Description = Annotated[str, Meta(max_length=1000)]
Expression = Annotated[str, Meta(min_length=1, max_length=4096)]
CronText = Annotated[str, Meta(min_length=1, max_length=255)]
ZoneName = Annotated[str, Meta(min_length=1, max_length=64)]
_request = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}

# Which scopes each trigger allows (the hosted table).
VALID_SCOPES: dict[str, frozenset[str]] = {
    "cron": frozenset({"program", "participants"}),
    "one_time": frozenset({"program", "participants"}),
    "immediate": frozenset({"participants"}),
    "participant_state": frozenset({"participants"}),
}


class Trigger(Struct, **_request):  # type: ignore[call-arg]
    """How an automation fires: ``type`` and that type's fields (cron_expression/timezone, or trigger_at)."""

    type: TriggerType
    cron_expression: CronText | None = None
    timezone: ZoneName | None = None
    trigger_at: datetime | None = None
    schedule_type: ScheduleType | None = None
    schedule_config: dict[str, Any] | None = None


class ScheduleConfig(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A participant_state schedule's keys (ours: the hosted ones were not published; docs/automations.md).

    ATTRIBUTE_DATE: ``attribute`` (a participant attribute ``MM-DD`` or ``YYYY-MM-DD``), ``time`` (``HH:MM``,
    default 00:00) and ``timezone``; INTERVAL: ``interval`` (a duration, the first fire one interval after the
    subscription); CRON: ``cron_expression`` and ``timezone``; THRESHOLD: ``counter`` and ``threshold`` (a decimal
    string: fires once when the participant's counter reaches it).
    """

    attribute: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    time: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    timezone: ZoneName | None = None
    interval: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    cron_expression: CronText | None = None
    counter: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    threshold: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


def threshold_of(config: ScheduleConfig, field: str = "schedule_config.threshold") -> Decimal:
    """A THRESHOLD schedule's threshold, a decimal string (400 otherwise)."""
    assert config.threshold is not None
    return parse_decimal(config.threshold, field)


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
    filter_hints: Annotated[list[dict[str, Any]], Meta(max_length=20)] | None = None


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
    schedule_config: dict[str, Any] | None = None
    participant_filter: Expression | None = None
    guard_condition: Expression | None = None
    filter_hints: Annotated[list[dict[str, Any]], Meta(max_length=20)] | None = None


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
    schedule_type: ScheduleType | None = None
    schedule_config: dict[str, Any] | None = None
    filter_hints: list[dict[str, Any]] | None = None  # kept and shown; not needed to filter (compiled CEL)
    last_evaluated_at: datetime | None = None
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


class Subscription(Struct, kw_only=True):
    """A participant_state automation's enrolment of one participant (``automation_subscriptions``)."""

    id: str
    automation_id: str
    participant_id: str
    status: Literal["active", "completed", "failed"] = "active"
    next_trigger_at: datetime | None = None
    last_triggered_at: datetime | None = None
    trigger_count: int = 0
    retry_count: int = 0
    last_error: str | None = None
    created_at: datetime
    basis: str | None = None  # what next_trigger_at was computed from (the attribute's value): a change reschedules


def schedule_config(schedule_type: str | None, raw: dict[str, Any] | None, field: str) -> ScheduleConfig:
    """A participant_state trigger's config, checked for its type (400 naming ``field`` otherwise)."""
    if schedule_type is None:
        raise ValidationFailed.field(field.replace("schedule_config", "schedule_type"), "required", "give one")
    try:
        config = msgspec.convert(raw or {}, ScheduleConfig)
    except msgspec.ValidationError as error:
        raise ValidationFailed.field(field, "invalid", str(error)) from None
    needed = {"ATTRIBUTE_DATE": "attribute", "INTERVAL": "interval", "CRON": "cron_expression", "THRESHOLD": "counter"}[
        schedule_type
    ]
    if getattr(config, needed) is None:
        raise ValidationFailed.field(f"{field}.{needed}", "required", f"a {schedule_type} schedule needs {needed}")
    zone(config.timezone, f"{field}.timezone")
    if config.cron_expression is not None:
        check_cron(config.cron_expression, f"{field}.cron_expression")
    if schedule_type == "THRESHOLD":
        if config.threshold is None:
            raise ValidationFailed.field(f"{field}.threshold", "required", "a THRESHOLD schedule needs threshold")
        threshold_of(config, f"{field}.threshold")
    if config.interval is not None:
        try:
            parse_duration(config.interval)
        except ValueError as error:
            raise ValidationFailed.field(f"{field}.interval", "invalid", str(error)) from None
    return config


def attribute_month_day(value: str | None) -> tuple[int, int] | None:
    """``MM-DD`` or ``YYYY-MM-DD`` (a date or the start of a timestamp) as (month, day); None if neither."""
    if value is None:
        return None
    text = value.strip()
    parts = text[5:10] if len(text) >= 10 and text[4] == "-" else text[:5]
    try:
        month, day = (int(piece) for piece in parts.split("-"))
        date(2024, month, day)  # a leap year: 02-29 is a date
    except ValueError:
        return None
    return month, day


def next_attribute_date(month_day: tuple[int, int], config: ScheduleConfig, after: datetime) -> datetime:
    """The first anniversary of ``month_day`` at ``config.time`` in its zone strictly after ``after`` (UTC).

    February 29 falls on February 28 in a year without it: once a year, never skipped.
    """
    tz = zone(config.timezone)
    hour, minute = (int(piece) for piece in (config.time or "00:00").split(":"))
    month, day = month_day
    year = after.astimezone(tz).year
    while True:
        fire_day = day if (month, day) != (2, 29) or calendar.isleap(year) else 28
        local = datetime(year, month, fire_day, hour, minute, tzinfo=tz)
        fire = local.astimezone(UTC)
        if fire > after:
            return fire
        year += 1


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
