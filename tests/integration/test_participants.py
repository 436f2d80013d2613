"""Participants: upsert, profile, status, tags, counters, attributes, lists — through the embedded API."""

from __future__ import annotations

import pytest

from scrip_actor import (
    Conflict,
    CreditAction,
    Engine,
    NotFound,
    ParticipantCreate,
    ParticipantUpdate,
    ProgramCreate,
    ValidationFailed,
)
from tests.helpers import program_with_asset, rule, send


async def test_upsert_on_external_id(engine: Engine) -> None:
    program = await engine.create_program(ProgramCreate(name="p"))
    first, created = await engine.create_participant(
        ParticipantCreate(
            external_id="ext-1",
            program_id=program.id,
            email="a@example.com",
            tags=["VIP", "Early"],
            attributes={"city": "Lyon"},
        )
    )
    assert created
    assert first.tags == ["early", "vip"]
    assert first.program_ids == [program.id]
    again, created_again = await engine.create_participant(
        ParticipantCreate(external_id="ext-1", first_name="Ada", attributes={"lang": "fr"})
    )
    assert not created_again
    assert again.id == first.id
    assert again.attributes == {"city": "Lyon", "lang": "fr"}
    assert again.first_name == "Ada"
    assert again.email == "a@example.com"
    assert (await engine.get_participant_by_external_id("ext-1")).id == first.id
    with pytest.raises(NotFound):
        await engine.get_participant("nope")
    with pytest.raises(NotFound):
        await engine.create_participant(ParticipantCreate(external_id="x", program_id="no-such-program"))
    with pytest.raises(ValidationFailed):
        await engine.create_participant(ParticipantCreate(external_id=""))
    with pytest.raises(ValidationFailed):
        await engine.create_participant(ParticipantCreate(external_id="x" * 256))


async def test_state_operations(engine: Engine) -> None:
    participant, _ = await engine.create_participant(ParticipantCreate(external_id="u"))
    pid = participant.id
    assert (await engine.add_tags(pid, ["Gold", "gold", "new"])).tags == ["gold", "new"]
    assert (await engine.remove_tag(pid, "NEW")).tags == ["gold"]
    assert (await engine.remove_tag(pid, "absent")).tags == ["gold"]
    assert (await engine.replace_tags(pid, ["a", "B"])).tags == ["a", "b"]
    assert (await engine.set_counter(pid, "visits", "3.5")).counters == {"visits": "3.5"}
    assert (await engine.set_counter(pid, "big", "123456789012345678901234567890.123456789")).counters[
        "big"
    ] == "123456789012345678901234567890.123456789"
    assert "visits" not in (await engine.delete_counter(pid, "visits")).counters
    with pytest.raises(ValidationFailed):
        await engine.set_counter(pid, "bad", "lots")
    assert (await engine.set_attributes(pid, {"a": "1", "b": "2"})).attributes == {"a": "1", "b": "2"}
    assert (await engine.delete_attribute(pid, "a")).attributes == {"b": "2"}
    with pytest.raises(ValidationFailed):
        await engine.set_attributes(pid, {"k": 5})  # type: ignore[dict-item]
    updated = await engine.update_participant(
        pid, ParticipantUpdate(display_name="Ada", tags=["x"], attributes={"c": "3"})
    )
    assert updated.display_name == "Ada"
    assert updated.tags == ["x"]
    assert updated.attributes == {"b": "2", "c": "3"}
    cleared = await engine.update_participant(pid, ParticipantUpdate(display_name=""))
    assert cleared.display_name is None
    with pytest.raises(ValidationFailed):
        await engine.set_participant_status(pid, "GONE")


async def test_rename_external_id(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    await send(engine, program, "old", {})
    other, _ = await engine.create_participant(ParticipantCreate(external_id="taken"))
    participant = await engine.get_participant_by_external_id("old")
    with pytest.raises(Conflict):
        await engine.update_participant(participant.id, ParticipantUpdate(external_id="taken"))
    renamed = await engine.update_participant(participant.id, ParticipantUpdate(external_id="new"))
    assert renamed.external_id == "new"
    with pytest.raises(NotFound):
        await engine.get_participant_by_external_id("old")
    await send(engine, program, "new", {})
    assert (await engine.get_participant(participant.id)).balances[0].available == "2.00"
    assert other.id != participant.id


async def test_state_limits_apply_to_rules_and_api(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from scrip_actor import Config, TagAction, open_engine
    from scrip_actor.config import Limits
    from tests.conftest import small_config

    base = small_config(tmp_path / "data")
    config = Config(storage=base.storage, engine=base.engine, limits=Limits(tags_per_participant_max=2))
    async with open_engine(config=config, clock=clock) as engine:
        participant, _ = await engine.create_participant(ParticipantCreate(external_id="u", tags=["a", "b"]))
        with pytest.raises(ValidationFailed):
            await engine.add_tags(participant.id, ["c"])
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "true", [TagAction(tag="c")])
        event = await send(engine, program, "u", {})
        assert event.status == "FAILED"
        assert "tags" in (event.error_message or "")


async def test_lists_paginate_stably(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    for n in range(7):
        await send(engine, program, f"user{n}", {"n": n})
    seen: list[str] = []
    page = await engine.list_events(program_id=program.id, limit=3)
    while True:
        seen.extend(event.id for event in page.data)
        if not page.has_more:
            break
        await send(engine, program, "late", {"late": True})  # inserts between pages do not shift them
        page = await engine.list_events(program_id=program.id, limit=3, cursor=page.next_cursor)
    assert len(seen) == 7 == len(set(seen))
    entries = await engine.list_journal_entries(asset_id=asset.id, limit=5)
    assert len(entries.data) == 5
    assert entries.has_more
    rest = await engine.list_journal_entries(asset_id=asset.id, limit=200, cursor=entries.next_cursor)
    assert len(rest.data) == 9 - 5
    assert not rest.has_more
    assert [e.sequence for e in entries.data + rest.data] == sorted(
        (e.sequence for e in entries.data + rest.data), reverse=True
    )
    participants = await engine.list_participants(program_id=program.id, limit=4)
    assert len(participants.data) == 4
    assert participants.has_more
    more = await engine.list_participants(program_id=program.id, limit=4, cursor=participants.next_cursor)
    assert len({p.id for p in participants.data + more.data}) == 8
    with pytest.raises(ValidationFailed):
        await engine.list_events(limit=0)
    with pytest.raises(ValidationFailed):
        await engine.list_events(limit=201)
    failed = await engine.list_events(status="FAILED")
    assert failed.data == []


async def test_event_filters_by_rule_and_event_time(engine: Engine) -> None:
    from datetime import timedelta

    program, asset = await program_with_asset(engine)
    big = await rule(engine, program, "event.amount >= 100.0", [CreditAction(asset_id=asset.id, amount="1")])
    start = engine._clock()
    small_event = await send(engine, program, "u", {"amount": 5}, at=start)
    big_event = await send(engine, program, "u", {"amount": 500}, at=start + timedelta(days=2))
    matched = await engine.list_events(rule_id=big.id)
    assert [e.id for e in matched.data] == [big_event.id]
    early = await engine.list_events(event_to=start + timedelta(days=1))
    assert [e.id for e in early.data] == [small_event.id]
    late = await engine.list_events(event_from=start + timedelta(days=1))
    assert [e.id for e in late.data] == [big_event.id]
