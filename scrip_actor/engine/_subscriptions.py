"""participant_state automations: one subscription per enrolled participant, each with its own next fire.

Subscriptions live in the store only (``automation_subscriptions[automation id NUL participant id]``), never all in
memory: a birthday automation over a million members costs a million small records, not a million objects. Each
active one has its schedule entry (``be64(due) + automation id + NUL p + participant id``) in
``automation_schedule``, written in the same record as the subscription.

Enrolment (*refresh*) walks the program's participants a batch at a time, like a fan-out: those that pass
``participant_filter`` are subscribed (one whose attribute changed is rescheduled), those that no longer pass are
unsubscribed. It runs at create, on ``POST …/refresh-subscriptions``, on a PATCH of the filter, config or status,
and then every ``automations.subscription_refresh_interval_s``, so new members are enrolled on their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from itertools import islice

import msgspec
import trio

from scrip_actor import cursors
from scrip_actor.automations import (
    Automation,
    AutomationRun,
    ScheduleConfig,
    Subscription,
    attribute_month_day,
    from_ms,
    next_attribute_date,
    next_cron,
    schedule_config,
    threshold_of,
    to_ms,
)
from scrip_actor.config import AutomationSettings, Limits
from scrip_actor.durations import parse_duration
from scrip_actor.engine._automations import REFRESH, SUBSCRIBER, Automations, event_data, schedule_key
from scrip_actor.engine._queries import page_size
from scrip_actor.ledger import ParticipantState
from scrip_actor.model import Page
from scrip_actor.store import Op, Store, Writer, encode

__all__ = ["Subscriptions"]

_decoder = msgspec.json.Decoder(Subscription)


def _key(automation_id: str, participant_id: str) -> bytes:
    return f"{automation_id}\0{participant_id}".encode()


class Subscriptions:
    """Enrolment and firing of participant_state automations (see the module docstring).

    Args:
        passes: whether a participant passes a run's filters (the runner's CEL check).
        send: admits one participant's event of a fire; True if new.
    """

    def __init__(
        self,
        *,
        automations: Automations,
        store: Store,
        writer: Writer,
        clock: Callable[[], datetime],
        settings: AutomationSettings,
        limits: Limits,
        participant: Callable[[str], ParticipantState | None],
        passes: Callable[[AutomationRun, ParticipantState], bool],
        send: Callable[[AutomationRun, str], Awaitable[bool]],
    ) -> None:
        self._automations = automations
        self._store = store
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._limits = limits
        self._participant = participant
        self._passes = passes
        self._send = send

    # --- reads -------------------------------------------------------------------------------------------------

    def list(self, automation: Automation, status: str | None, limit: int, cursor: str | None) -> Page:
        """An automation's subscriptions in participant id order (a scan bounded by the page)."""
        limit = page_size(limit, self._limits)
        prefix = automation.id.encode() + b"\0"
        start = prefix + cursors.decode(cursor, tuple[str])[0].encode() if cursor else None
        found: list[Subscription] = []
        more = False
        for _, raw in self._store.scan("automation_subscriptions", prefix, start=start):
            subscription = _decoder.decode(raw)
            if status is not None and subscription.status != status:
                continue
            if len(found) == limit:
                more = True
                break
            found.append(subscription)
        next_cursor = cursors.encode((found[-1].participant_id,)) if more else None
        return Page(data=found, has_more=more, next_cursor=next_cursor)

    # --- enrolment ---------------------------------------------------------------------------------------------

    async def refresh(self, automation: Automation, refresh_key: bytes) -> None:
        """Enrol the program's participants that pass the filter, drop those that no longer do (module docstring)."""
        config = schedule_config(automation.schedule_type, automation.schedule_config, "schedule_config")
        run = _probe(automation)
        now = self._clock()
        cursor: bytes | None = None
        while True:
            keys = [
                key
                for key, _ in islice(self._store.scan("participants", start=cursor), self._settings.fanout_batch_size)
            ]
            ops: list[Op] = []
            for key in keys:
                state = self._participant(key.decode())
                if state is None or automation.program_id not in state.program_ids:
                    continue
                ops.extend(self._enrolment_ops(automation, config, run, state, now))
            if ops:
                await self._writer.wait_durable(self._writer.append(ops))
            await trio.lowlevel.checkpoint()
            if len(keys) < self._settings.fanout_batch_size:
                break
            cursor = keys[-1]
        again = now + timedelta(seconds=self._settings.subscription_refresh_interval_s)
        current = self._automations.by_id[automation.id]
        updated = msgspec.structs.replace(current, last_evaluated_at=now)
        schedule = again if current.status == "active" else None
        delete: list[Op] = [("automation_schedule", refresh_key, None)]
        await self._writer.wait_durable(
            self._writer.append(self._automations.save_ops(updated, schedule, None, REFRESH, ops=delete))
        )

    def _enrolment_ops(
        self, automation: Automation, config: ScheduleConfig, run: AutomationRun, state: ParticipantState, now: datetime
    ) -> list[Op]:
        key = _key(automation.id, state.id)
        raw = self._store.get_raw("automation_subscriptions", key)
        existing = _decoder.decode(raw) if raw is not None else None
        if not self._passes(run, state):
            if existing is None:
                return []
            ops: list[Op] = [("automation_subscriptions", key, None)]
            if existing.next_trigger_at is not None:
                ops.append(
                    ("automation_schedule", self._entry(automation.id, existing.next_trigger_at, state.id), None)
                )
            return ops
        basis = state.attributes.get(config.attribute) if config.attribute else None
        if existing is not None and existing.basis == basis and existing.status in ("active", "completed"):
            if existing.next_trigger_at is not None:
                return [("automation_schedule", self._entry(automation.id, existing.next_trigger_at, state.id), b"")]
            if existing.status == "active" and automation.schedule_type == "THRESHOLD":
                return self.threshold_ops(automation, config, existing, state, now)  # reached while not watched
            return []
        subscription = existing or Subscription(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"scrip:subscription:{automation.id}:{state.id}")),
            automation_id=automation.id,
            participant_id=state.id,
            created_at=now,
        )
        ops = []
        if existing is not None and existing.next_trigger_at is not None:
            ops.append(("automation_schedule", self._entry(automation.id, existing.next_trigger_at, state.id), None))
        after = max(now, existing.last_triggered_at) if existing and existing.last_triggered_at else now
        fire = _next_fire(automation, config, basis, after, subscription.created_at)
        waits = automation.schedule_type == "THRESHOLD"  # no time of its own: the counter decides
        subscription = msgspec.structs.replace(
            subscription,
            basis=basis,
            next_trigger_at=fire,
            status="active" if fire is not None or waits else "failed",
            last_error=None
            if fire is not None or waits
            else f"attribute {config.attribute!r} is not a date (MM-DD or YYYY-MM-DD)",
        )
        if waits:
            return [*ops, *self.threshold_ops(automation, config, subscription, state, now)]
        ops.append(("automation_subscriptions", key, encode(subscription)))
        if fire is not None:
            ops.append(("automation_schedule", self._entry(automation.id, fire, state.id), b""))
        return ops

    def threshold_ops(
        self,
        automation: Automation,
        config: ScheduleConfig,
        subscription: Subscription,
        state: ParticipantState,
        now: datetime,
    ) -> list[Op]:
        """A THRESHOLD subscription's record, armed to fire now if the participant's counter has reached it."""
        key = _key(automation.id, state.id)
        assert config.counter is not None
        value = state.counters.get(config.counter)
        if value is None or value < threshold_of(config) or subscription.next_trigger_at is not None:
            return [("automation_subscriptions", key, encode(subscription))]
        armed = msgspec.structs.replace(subscription, next_trigger_at=now)
        return [
            ("automation_subscriptions", key, encode(armed)),
            ("automation_schedule", self._entry(automation.id, now, state.id), b""),
        ]

    def counters_changed(
        self, program_ids: Iterable[str], at: datetime | None, states: list[ParticipantState]
    ) -> list[Op]:
        """The publisher's hook, with every event's outcome (its program) and every operator edit of participants
        (their programs): arm the THRESHOLD subscriptions whose counter the change made reach its threshold, in the
        change's own record. O(1) for a program without THRESHOLD automations. ``at``: when (None: now)."""
        thresholds = self._automations.thresholds
        if not thresholds:
            return []  # no THRESHOLD automation anywhere: the event path's common case, one test
        watching: list[Automation] = []
        for program_id in program_ids:
            watching.extend(thresholds.get(program_id, ()))
        if not watching:
            return []
        ops: list[Op] = []
        now = at or self._clock()
        for automation in watching:
            config = schedule_config(automation.schedule_type, automation.schedule_config, "schedule_config")
            assert config.counter is not None
            threshold = threshold_of(config)
            for state in states:
                value = state.counters.get(config.counter)
                if value is None or value < threshold:
                    continue  # below it: nothing to arm, and no store read on the event path
                raw = self._store.get_raw("automation_subscriptions", _key(automation.id, state.id))
                if raw is None:
                    continue  # not enrolled (yet): the next refresh enrols it, and checks the counter then
                subscription = _decoder.decode(raw)
                if subscription.status == "active" and subscription.next_trigger_at is None:
                    armed = self.threshold_ops(automation, config, subscription, state, now)
                    if len(armed) > 1:
                        ops.extend(armed)
        if ops and self._automations.on_scheduled is not None:
            self._automations.on_scheduled()
        return ops

    def _entry(self, automation_id: str, due: datetime, participant_id: str) -> bytes:
        return schedule_key(to_ms(due), automation_id, SUBSCRIBER + participant_id.encode())

    # --- one subscription's fire --------------------------------------------------------------------------------

    async def fire(self, automation: Automation, participant_id: str, due_ms: int, skip: bool) -> bool:
        """Send a subscription's event (unless ``skip``: a missed fire under the skip policy), then schedule its next
        fire in the same record as its new state; True if an event was sent."""
        entry = self._entry(automation.id, from_ms(due_ms), participant_id)
        key = _key(automation.id, participant_id)
        raw = self._store.get_raw("automation_subscriptions", key)
        subscription = _decoder.decode(raw) if raw is not None else None
        ops: list[Op] = [("automation_schedule", entry, None)]
        if subscription is None or subscription.status != "active" or automation.status != "active":
            await self._writer.wait_durable(self._writer.append(ops))  # paused: a refresh on resume reschedules
            return False
        run = _probe(automation, due_ms)
        state = self._participant(participant_id)
        sent = False
        if not skip and state is not None and self._passes(run, state):
            sent = await self._send(run, participant_id)
        config = schedule_config(automation.schedule_type, automation.schedule_config, "schedule_config")
        now = self._clock()
        fire = _next_fire(automation, config, subscription.basis, max(now, from_ms(due_ms)), subscription.created_at)
        updated = msgspec.structs.replace(
            subscription,
            next_trigger_at=fire,
            last_triggered_at=from_ms(due_ms) if sent else subscription.last_triggered_at,
            trigger_count=subscription.trigger_count + int(sent),
            status="active" if fire is not None else "completed",
        )
        ops.append(("automation_subscriptions", key, encode(updated)))
        if fire is not None:
            ops.append(("automation_schedule", self._entry(automation.id, fire, participant_id), b""))
        await self._writer.wait_durable(self._writer.append(ops))
        return sent


def _probe(automation: Automation, fire_ms: int = 0) -> AutomationRun:
    """The run a subscription's fire sends (its filters and event), never stored."""
    return AutomationRun(
        automation_id=automation.id,
        program_id=automation.program_id,
        fire_ms=fire_ms,
        scope="participants",
        event_data=event_data(automation),
        participant_filter=automation.participant_filter,
        guard_condition=None if fire_ms == 0 else automation.guard_condition,  # the guard is for fire time only
    )


def _next_fire(
    automation: Automation, config: ScheduleConfig, basis: str | None, after: datetime, subscribed: datetime
) -> datetime | None:
    """The subscription's next fire strictly after ``after`` (None: never, e.g. no date in the attribute)."""
    if automation.schedule_type == "ATTRIBUTE_DATE":
        month_day = attribute_month_day(basis)
        return next_attribute_date(month_day, config, after) if month_day is not None else None
    if automation.schedule_type == "THRESHOLD":
        return None  # fires once, when armed by the counter (Subscriptions.threshold_ops)
    if automation.schedule_type == "INTERVAL":
        assert config.interval is not None
        step = parse_duration(config.interval)
        periods = max(1, int((after - subscribed) / step) + 1)
        return subscribed + step * periods
    assert config.cron_expression is not None
    return next_cron(config.cron_expression, config.timezone or "UTC", after)
