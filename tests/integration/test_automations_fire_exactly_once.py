"""Automations with a manual clock: cron across DST, missed fires, fan-outs that are filtered, cancelled, resumed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import trio

from scrip_actor import CounterAction, CreditAction, DebitAction, Engine, EventSubmit, ParticipantCreate, open_engine
from scrip_actor.automations import AutomationCreate, AutomationUpdate, Trigger, next_cron
from scrip_actor.config import AutomationSettings
from scrip_actor.errors import ValidationFailed
from scrip_actor.model import BroadcastAction, ScheduleEventAction
from tests.conftest import ManualClock, small_config
from tests.helpers import available, program_with_asset, rule, send

NEW_YORK = "America/New_York"


def _config(data_dir: Path, **automations: Any) -> Any:
    config = small_config(data_dir)
    return msgspec.structs.replace(config, automations=AutomationSettings(poll_interval_s=3600, **automations))


async def _members(engine: Engine, program_id: str, count: int, **fields: Any) -> list[str]:
    ids = []
    for n in range(count):
        participant, _ = await engine.create_participant(
            ParticipantCreate(external_id=f"member-{n:04}", program_id=program_id, **fields)
        )
        ids.append(participant.id)
    return ids


async def _system_events(engine: Engine, program_id: str) -> list[Any]:
    await engine.wait_idle()
    events: list[Any] = []
    cursor = None
    while True:
        page = await engine.list_events(program_id=program_id, event_type="SYSTEM", limit=200, cursor=cursor)
        events.extend(page.data)
        if not page.has_more:
            return events
        cursor = page.next_cursor


async def _progress(engine: Engine, program_id: str, automation_id: str, processed: int) -> None:
    """Wait until a fan-out has handled ``processed`` participants."""
    while True:
        if (engine.automations.get(program_id, automation_id).participants_processed or 0) >= processed:
            return
        await trio.sleep(0.001)


async def _processed(engine: Engine, event_id: str) -> Any:
    """An event once its outcome is there (without waiting for the whole engine to be idle)."""
    while True:
        event = await engine.get_event(event_id)
        if event.status not in ("PENDING", "PROCESSING"):
            return event
        await trio.sleep(0.001)


def test_cron_in_new_york_at_0230_fires_at_0300_on_spring_forward_and_once_on_fall_back() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist: the fire moves to 03:00 EDT (07:00 UTC).
    spring = next_cron("30 2 * * *", NEW_YORK, datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    assert spring == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    # The days around it keep 02:30 local: EST before (07:30 UTC), EDT after (06:30 UTC).
    assert next_cron("30 2 * * *", NEW_YORK, datetime(2026, 3, 7, 5, 0, tzinfo=UTC)) == datetime(
        2026, 3, 7, 7, 30, tzinfo=UTC
    )
    assert next_cron("30 2 * * *", NEW_YORK, spring) == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST. 02:30 happens once (EST); 01:30 twice, and fires once (EDT).
    assert next_cron("30 2 * * *", NEW_YORK, datetime(2026, 11, 1, 4, 0, tzinfo=UTC)) == datetime(
        2026, 11, 1, 7, 30, tzinfo=UTC
    )
    first = next_cron("30 1 * * *", NEW_YORK, datetime(2026, 11, 1, 4, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert next_cron("30 1 * * *", NEW_YORK, first) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


async def test_a_daily_cron_across_spring_forward_sends_one_event_per_day(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        (member,) = await _members(engine, program.id, 1)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="nightly",
                trigger=Trigger(type="cron", cron_expression="30 2 * * *", timezone=NEW_YORK),
                scope="program",
                participant_id=member,
                event_name="nightly",
            ),
        )
        assert automation.next_run_at == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)
        for _ in range(4 * 24):  # four days, an hour at a time
            clock.advance(timedelta(hours=1))
            await engine.automation_runs.run_due()
        times = sorted(event.event_timestamp for event in await _system_events(engine, program.id))
        assert times == [
            datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT: 02:30 does not exist that day
            datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
            datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
        ]


@pytest.mark.parametrize(("policy", "expected"), [("run_late", 1), ("skip", 0)])
async def test_a_one_time_fire_due_while_the_engine_was_down_runs_late_or_is_skipped(
    tmp_path: Path, clock: ManualClock, policy: str, expected: int
) -> None:
    config = _config(tmp_path / "data", missed_fire_policy=policy)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await _members(engine, program.id, 3)
        created = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="promo",
                trigger=Trigger(type="one_time", trigger_at=clock.now + timedelta(hours=1)),
                scope="participants",
                event_name="promo",
            ),
        )
    clock.advance(timedelta(days=2))  # down when it was due
    async with open_engine(config=config, clock=clock) as engine:
        await engine.automation_runs.run_due()
        events = await _system_events(engine, program.id)
        assert len(events) == 3 * expected
        assert all(event.event_timestamp == created.trigger_at for event in events)  # dated when it was due
        after = engine.automations.get(program.id, created.id)
        assert after.processed_at is not None
        assert (after.last_error is not None) == (policy == "skip")
        assert await engine.automation_runs.run_due() == 0  # a one_time automation fires once


async def test_a_cron_missed_for_days_runs_late_once_then_keeps_its_schedule(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = _config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        (member,) = await _members(engine, program.id, 1)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="hourly",
                trigger=Trigger(type="cron", cron_expression="0 * * * *"),
                scope="program",
                participant_id=member,
                event_name="tick",
            ),
        )
    clock.advance(timedelta(days=3, minutes=30))  # 72 hourly fires missed
    async with open_engine(config=config, clock=clock) as engine:
        assert await engine.automation_runs.run_due() == 1
        assert len(await _system_events(engine, program.id)) == 1
        after = engine.automations.get(program.id, automation.id)
        assert after.next_run_at == datetime(2026, 1, 4, 1, 0, tzinfo=UTC)  # the next hour after now


async def test_a_fan_out_sends_each_matching_participant_exactly_one_system_event(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=_config(tmp_path / "data", fanout_batch_size=7), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "event.type == 'bonus'", [CreditAction(asset_id=asset.id, amount="5")])
        members = await _members(engine, program.id, 40)
        for n, member in enumerate(members):
            if n % 4 == 0:
                await engine.add_tags(member, ["vip"])
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="vip bonus",
                trigger=Trigger(type="immediate"),
                scope="participants",
                participant_filter="'vip' in participant.tags",
                event_name="bonus",
                payload={"campaign": "spring", "type": "overridden"},
            ),
        )
        await engine.automation_runs.run_due()
        events = await _system_events(engine, program.id)
        assert sorted(event.participant_id for event in events) == sorted(members[::4])
        assert {event.event_data["type"] for event in events} == {"bonus"}
        assert all(event.status == "COMPLETED" and event.event_type == "SYSTEM" for event in events)
        assert await available(engine, "member-0000", asset) == "5.00"
        assert await available(engine, "member-0001", asset) == "0.00"
        done = engine.automations.get(program.id, automation.id)
        assert (done.execution_status, done.participants_processed, done.events_created) == ("completed", 40, 10)
        # Triggering it again is a new fire: a second event each, under new keys.
        await engine.automations.trigger(program.id, automation.id)
        await engine.automation_runs.run_due()
        assert len(await _system_events(engine, program.id)) == 20
        client_events = await engine.list_events(program_id=program.id, event_type="EXTERNAL")
        assert client_events.data == []


async def test_a_guard_condition_false_at_fire_time_skips_the_participant(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        members = await _members(engine, program.id, 3)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="guarded",
                trigger=Trigger(type="one_time", trigger_at=clock.now + timedelta(minutes=5)),
                scope="participants",
                guard_condition="!('optout' in participant.tags)",
                event_name="hello",
            ),
        )
        await engine.add_tags(members[1], ["optout"])  # after creation, before the fire
        clock.advance(timedelta(minutes=5))
        assert await engine.automation_runs.run_due() == 1
        events = await _system_events(engine, program.id)
        assert sorted(e.participant_id for e in events) == sorted([members[0], members[2]])
        assert engine.automations.get(program.id, automation.id).processed_at == clock.now


async def test_a_fan_out_cancelled_half_way_stops_at_its_next_batch(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data", fanout_batch_size=10), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await _members(engine, program.id, 200)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(name="blast", trigger=Trigger(type="immediate"), scope="participants", event_name="x"),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.automation_runs.run_due)
            await _progress(engine, program.id, automation.id, 50)
            cancelled = await engine.automation_runs.cancel(program.id, automation.id)
            assert cancelled.execution_status == "cancelled"
        after = engine.automations.get(program.id, automation.id)
        assert after.execution_status == "cancelled"
        assert after.status == "active"
        sent = len(await _system_events(engine, program.id))
        assert 50 <= sent < 200
        assert sent == after.events_created
        with pytest.raises(ValidationFailed):  # nothing is running any more
            await engine.automation_runs.cancel(program.id, automation.id)


@pytest.mark.parametrize(("batch", "stop_after"), [(10, 1), (10, 45), (7, 70), (150, 16)])
async def test_a_fan_out_interrupted_by_a_close_resumes_and_nobody_gets_a_second_event(
    tmp_path: Path, clock: ManualClock, batch: int, stop_after: int
) -> None:
    config = _config(tmp_path / "data", fanout_batch_size=batch)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        members = await _members(engine, program.id, 150)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(name="blast", trigger=Trigger(type="immediate"), scope="participants", event_name="x"),
        )
        with trio.move_on_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(engine.automation_runs.run_due)
                while engine.automation_runs.events_created < stop_after:
                    await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()  # stop mid fan-out, as a close would
        sent = engine.automation_runs.events_created  # admitted before the stop (a few more than stop_after)
    async with open_engine(config=config, clock=clock) as engine:
        await engine.automation_runs.resume()  # the worker also does this on open; either finishes it
        events = await _system_events(engine, program.id)
        assert sorted(event.participant_id for event in events) == sorted(members)
        # At most the batch after the durable cursor is admitted again: as replays, never as new events.
        assert engine.statistics().events_accepted == len(members) - sent
        assert engine.statistics().idempotent_replays <= batch
        assert engine.automations.get(program.id, automation.id).execution_status == "completed"


async def test_invalid_automations_are_refused_with_the_field_named(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        (member,) = await _members(engine, program.id, 1)

        async def refused(field: str, **fields: Any) -> None:
            base: dict[str, Any] = {"name": "a", "scope": "participants", "event_name": "e"}
            base.update(fields)
            with pytest.raises(ValidationFailed) as raised:
                await engine.automations.create(program.id, msgspec.convert(base, AutomationCreate))
            assert field in str(raised.value.details) or field in str(raised.value), raised.value

        await refused("cron_expression", trigger={"type": "cron", "cron_expression": "61 * * * *"})
        await refused("cron_expression", trigger={"type": "cron", "cron_expression": "CRON_TZ=UTC 0 * * * *"})
        await refused("cron_expression", trigger={"type": "cron", "cron_expression": "0 0 * * * *"})
        await refused("cron_expression", trigger={"type": "cron"})
        await refused("timezone", trigger={"type": "cron", "cron_expression": "0 * * * *", "timezone": "Mars/Base"})
        await refused("trigger_at", trigger={"type": "one_time"})
        await refused("trigger_at", trigger={"type": "one_time", "trigger_at": "2025-01-01T00:00:00Z"})
        await refused("scope", trigger={"type": "immediate"}, scope="program", participant_id=member)
        await refused("participant_id", trigger={"type": "cron", "cron_expression": "0 * * * *"}, scope="program")
        await refused("participant_filter", trigger={"type": "immediate"}, participant_filter="participant.tags +")
        await refused("guard_condition", trigger={"type": "immediate"}, guard_condition="nope(")
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="a",
                trigger=Trigger(type="cron", cron_expression="0 * * * *"),
                scope="program",
                participant_id=member,
                event_name="e",
            ),
        )
        with pytest.raises(ValidationFailed):
            await engine.automations.update(program.id, automation.id, AutomationUpdate(trigger_at=clock.now))
        await engine.automations.update(program.id, automation.id, AutomationUpdate(status="paused"))
        with pytest.raises(ValidationFailed):  # a paused automation cannot be triggered
            await engine.automations.trigger(program.id, automation.id)


async def test_schedule_event_and_broadcast_actions_become_rule_action_automations(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        members = await _members(engine, program.id, 3)
        await rule(
            engine,
            program,
            "event.type == 'signup'",
            [ScheduleEventAction(event_name="day_after", delay="24h", payload={"step": 2})],
        )
        await rule(engine, program, "event.type == 'launch'", [BroadcastAction(event_name="announce")])
        await rule(engine, program, "event.type == 'day_after'", [CreditAction(asset_id=asset.id, amount="3")])
        signup = await send(engine, program, "member-0001", {"type": "signup"}, at=clock.now)
        assert signup.status == "COMPLETED"
        (pending,) = engine.automations.list(program.id, source="rule_action").data
        assert (pending.trigger_type, pending.scope, pending.participant_id) == ("one_time", "program", members[1])
        assert pending.trigger_at == clock.now + timedelta(hours=24)
        clock.advance(timedelta(hours=23))
        assert await engine.automation_runs.run_due() == 0
        clock.advance(timedelta(hours=1))
        assert await engine.automation_runs.run_due() == 1
        (follow_up,) = await _system_events(engine, program.id)
        assert follow_up.event_data == {"step": 2, "type": "day_after"}
        assert await available(engine, "member-0001", asset) == "3.00"
        assert engine.automations.list(program.id, source="rule_action").data == []  # fired: removed
        await send(engine, program, "member-0000", {"type": "launch"})
        await engine.automation_runs.run_due()
        announced = [e for e in await _system_events(engine, program.id) if e.event_data["type"] == "announce"]
        assert sorted(e.participant_id for e in announced) == sorted(members)


async def test_a_failed_event_schedules_nothing(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await _members(engine, program.id, 1)
        actions = [ScheduleEventAction(event_name="later"), DebitAction(asset_id=asset.id, amount="5")]
        await rule(engine, program, "true", actions)
        event = await send(engine, program, "member-0000", {"type": "x"})
        assert event.status == "FAILED"  # the debit has nothing to spend: the follow-up goes with it
        assert engine.automations.list(program.id).data == []


async def test_a_bad_follow_up_delay_is_refused_when_the_rule_is_made(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        for delay in ("soon", "-1h", "900000h"):
            with pytest.raises(ValidationFailed) as raised:
                await rule(engine, program, "true", [ScheduleEventAction(event_name="x", delay=delay)])
            assert "actions[0].delay" in str(raised.value.details)


async def test_a_birthday_automation_over_a_year_sends_each_member_one_event_on_their_day(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2027, 1, 1, tzinfo=UTC))  # 2027 has no February 29
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        birthdays = {"m-a": "03-15", "m-b": "1990-12-31", "m-c": "02-29", "m-d": "2001-01-01", "m-e": "not a date"}
        ids = {}
        for external_id, birthday in birthdays.items():
            participant, _ = await engine.create_participant(
                ParticipantCreate(external_id=external_id, program_id=program.id, attributes={"birthday": birthday})
            )
            ids[external_id] = participant.id
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="birthday",
                trigger=Trigger(
                    type="participant_state",
                    schedule_type="ATTRIBUTE_DATE",
                    schedule_config={"attribute": "birthday", "time": "09:00", "timezone": "Europe/Paris"},
                ),
                scope="participants",
                event_name="birthday",
            ),
        )
        await engine.automation_runs.run_due()  # the enrolment
        late, _ = await engine.create_participant(  # joins in March: enrolled by the daily refresh
            ParticipantCreate(external_id="m-f", program_id=program.id, attributes={"birthday": "07-04"})
        )
        subscriptions = engine.automation_runs.subscriptions.list(automation, None, 50, None).data
        assert {s.participant_id: s.status for s in subscriptions} == {
            ids["m-a"]: "active", ids["m-b"]: "active", ids["m-c"]: "active", ids["m-d"]: "active", ids["m-e"]: "failed"
        }  # fmt: skip
        for _ in range(365 * 4):  # a year, six hours at a time
            clock.advance(timedelta(hours=6))
            await engine.automation_runs.run_due()
        events = await _system_events(engine, program.id)
        days = {event.participant_id: event.event_timestamp for event in events}
        assert len(events) == len(days) == 5  # one each; none for the member whose birthday is not a date
        paris = ZoneInfo("Europe/Paris")
        assert {pid: (t.astimezone(paris).month, t.astimezone(paris).day, t.astimezone(paris).hour) for pid, t in days.items()} == {
            ids["m-a"]: (3, 15, 9),
            ids["m-b"]: (12, 31, 9),
            ids["m-c"]: (2, 28, 9),  # February 29 falls on the 28th in a year without it
            ids["m-d"]: (1, 1, 9),
            late.id: (7, 4, 9),
        }  # fmt: skip
        (m_c,) = [
            s
            for s in engine.automation_runs.subscriptions.list(automation, None, 50, None).data
            if s.participant_id == ids["m-c"]
        ]
        assert m_c.trigger_count == 1
        assert m_c.next_trigger_at == datetime(2028, 2, 29, 8, 0, tzinfo=UTC)  # 2028 has one


async def test_an_immediate_fan_out_cancelled_before_it_starts_sends_nothing(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await _members(engine, program.id, 5)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(name="blast", trigger=Trigger(type="immediate"), scope="participants", event_name="x"),
        )
        assert automation.execution_status == "pending"
        await engine.automation_runs.cancel(program.id, automation.id)
        await engine.automation_runs.run_due()
        assert await _system_events(engine, program.id) == []
        assert engine.automations.get(program.id, automation.id).execution_status == "cancelled"
        await engine.automations.trigger(program.id, automation.id)  # a new fire after the cancel runs
        await engine.automation_runs.run_due()
        assert len(await _system_events(engine, program.id)) == 5


async def test_pause_resume_and_archive_control_a_cron_automation(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        (member,) = await _members(engine, program.id, 1)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="hourly",
                trigger=Trigger(type="cron", cron_expression="0 * * * *"),
                scope="program",
                participant_id=member,
                event_name="tick",
            ),
        )
        paused = await engine.automations.update(program.id, automation.id, AutomationUpdate(status="paused"))
        assert paused.next_run_at is None
        clock.advance(timedelta(hours=3))
        assert await engine.automation_runs.run_due() == 0  # nothing fires while paused
        resumed = await engine.automations.update(program.id, automation.id, AutomationUpdate(status="active"))
        assert resumed.next_run_at == datetime(2026, 1, 1, 4, 0, tzinfo=UTC)  # from now, not the missed hours
        clock.advance(timedelta(hours=1))
        assert await engine.automation_runs.run_due() == 1
        await engine.automations.update(program.id, automation.id, AutomationUpdate(payload={"v": 2}))
        clock.advance(timedelta(hours=1))
        await engine.automation_runs.run_due()
        assert [e.event_data for e in sorted(await _system_events(engine, program.id), key=lambda e: e.sequence)] == [
            {"type": "tick"},
            {"v": 2, "type": "tick"},
        ]
        await engine.automations.archive(program.id, automation.id)
        clock.advance(timedelta(hours=5))
        assert await engine.automation_runs.run_due() == 0
        assert len(await _system_events(engine, program.id)) == 2


async def test_client_events_are_processed_while_a_fan_out_runs(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=_config(tmp_path / "data", fanout_batch_size=20), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await engine.submit_batch(
            [
                EventSubmit(program_id=program.id, external_id=f"m{n:05}", idempotency_key=f"join{n}", event_data={})
                for n in range(1500)
            ]
        )
        await engine.wait_idle()
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(name="blast", trigger=Trigger(type="immediate"), scope="participants", event_name="x"),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.automation_runs.run_due)
            await _progress(engine, program.id, automation.id, 20)
            served = 0
            while engine.automations.get(program.id, automation.id).execution_status == "executing" and served < 5:
                submitted = await engine.submit(
                    EventSubmit(
                        program_id=program.id, external_id="a-client", idempotency_key=f"c{served}", event_data={}
                    )
                )
                event = await _processed(engine, submitted.id)
                assert event.status == "COMPLETED" and event.event_type == "EXTERNAL"
                client_participant = event.participant_id
                served += 1
            running = engine.automations.get(program.id, automation.id).execution_status == "executing"
        assert served == 5 and running  # five client events went through before the fan-out ended
        # The fan-out still reached every member, once. The client's participant was created while it ran, so it is
        # reached only if its id sorts after the cursor at that moment (docs/automations.md): once or not at all.
        reached = Counter(event.participant_id for event in await _system_events(engine, program.id))
        assert set(reached.values()) == {1}
        assert len(reached.keys() - {client_participant}) == 1500


async def test_a_threshold_subscription_fires_once_when_the_counter_reaches_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "event.type == 'visit'", [CounterAction(key="visits", value="1")])
        members = await _members(engine, program.id, 2)
        await engine.set_counter(members[1], "visits", "5")  # already past it when enrolled
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="third visit",
                trigger=Trigger(
                    type="participant_state",
                    schedule_type="THRESHOLD",
                    schedule_config={"counter": "visits", "threshold": "3"},
                ),
                scope="participants",
                event_name="loyal",
            ),
        )
        await engine.automation_runs.run_due()  # enrolment: member 1 is armed at once
        await engine.automation_runs.run_due()
        assert [e.participant_id for e in await _system_events(engine, program.id)] == [members[1]]
        for visit in range(5):
            await send(engine, program, "member-0000", {"type": "visit"})
            await engine.automation_runs.run_due()
            loyal = [e for e in await _system_events(engine, program.id) if e.participant_id == members[0]]
            assert len(loyal) == (1 if visit >= 2 else 0)  # on the third visit, and only then
        states = {
            s.participant_id: s for s in engine.automation_runs.subscriptions.list(automation, None, 10, None).data
        }
        assert states[members[0]].status == states[members[1]].status == "completed"
        assert states[members[0]].trigger_count == 1


async def test_a_counter_set_by_the_api_arms_a_threshold_at_once(tmp_path: Path, clock: ManualClock) -> None:
    """An operator's counter set reaches the THRESHOLD the way an event's does: in its own record, no refresh."""
    async with open_engine(config=_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        members = await _members(engine, program.id, 2)
        automation = await engine.automations.create(
            program.id,
            AutomationCreate(
                name="vip at 10",
                trigger=Trigger(
                    type="participant_state",
                    schedule_type="THRESHOLD",
                    schedule_config={"counter": "spend", "threshold": "10"},
                ),
                scope="participants",
                event_name="vip",
            ),
        )
        await engine.automation_runs.run_due()  # enrolment: both below (no counter yet)
        await engine.automation_runs.run_due()
        assert await _system_events(engine, program.id) == []
        await engine.set_counter(members[0], "spend", "9.99")  # below: nothing armed
        await engine.automation_runs.run_due()
        assert await _system_events(engine, program.id) == []
        await engine.set_counter(members[0], "spend", "10")  # reaches it: armed in the set's record
        await engine.automation_runs.run_due()
        assert [e.participant_id for e in await _system_events(engine, program.id)] == [members[0]]
        await engine.set_counter(members[0], "spend", "50")  # completed: never again
        await engine.automation_runs.run_due()
        assert len(await _system_events(engine, program.id)) == 1
        states = {
            s.participant_id: s for s in engine.automation_runs.subscriptions.list(automation, None, 10, None).data
        }
        assert states[members[0]].status == "completed"
        assert states[members[1]].status == "active"
