"""Acceptance 4: order, stop_after_match, time windows, atomicity, idempotency, participants, amounts, CEL errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scrip_actor import (
    Conflict,
    CounterAction,
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    IdempotencyConflict,
    ParticipantCreate,
    ProgramUpdate,
    RuleUpdate,
    SetAttributeAction,
    TagAction,
    Target,
    ValidationFailed,
)
from tests.conftest import ManualClock
from tests.helpers import available, program_with_asset, rule, send


async def test_rules_run_in_order_and_stop_after_match(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    catch_all = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")], order=1000)
    dining = await rule(
        engine,
        program,
        "event.mcc == 'dining'",
        [CreditAction(asset_id=asset.id, amount="5")],
        order=100,
        stop_after_match=True,
    )
    bonus = await rule(engine, program, "event.amount > 10.0", [TagAction(tag="Big")], order=50)
    event = await send(engine, program, "u", {"mcc": "dining", "amount": 20})
    assert [(e.rule_id, e.status) for e in event.rule_evaluations] == [
        (bonus.id, "MATCHED"),
        (dining.id, "MATCHED"),
        (catch_all.id, "STOPPED"),
    ]
    assert event.rule_evaluations[2].stopped_by_rule_id == dining.id
    assert await available(engine, "u", asset) == "5.00"
    assert (await engine.get_participant_by_external_id("u")).tags == ["big"]
    other = await send(engine, program, "u", {"mcc": "fuel", "amount": 1})
    assert [e.status for e in other.rule_evaluations] == ["NOT_MATCHED", "NOT_MATCHED", "MATCHED"]
    assert await available(engine, "u", asset) == "6.00"


async def test_conditions_see_state_as_processing_began(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(
        engine,
        program,
        "event.type == 'signup' && !('welcome' in participant.tags)",
        [CreditAction(asset_id=asset.id, amount="100"), TagAction(tag="welcome")],
        order=1,
    )
    await rule(engine, program, "'welcome' in participant.tags", [CreditAction(asset_id=asset.id, amount="1")], order=2)
    first = await send(engine, program, "u", {"type": "signup"})
    assert [e.status for e in first.rule_evaluations] == ["MATCHED", "NOT_MATCHED"]
    second = await send(engine, program, "u", {"type": "signup"})
    assert [e.status for e in second.rule_evaluations] == ["NOT_MATCHED", "MATCHED"]
    assert await available(engine, "u", asset) == "101.00"


async def test_time_windows_use_the_event_time(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine)
    start = clock.now + timedelta(days=1)
    await rule(
        engine,
        program,
        "true",
        [CreditAction(asset_id=asset.id, amount="1")],
        active_from=start,
        active_to=start + timedelta(days=1),
    )
    before = await send(engine, program, "u", {}, at=clock.now)
    inside = await send(engine, program, "u", {}, at=start + timedelta(hours=1))
    after = await send(engine, program, "u", {}, at=start + timedelta(days=1))
    assert (before.rule_evaluations[0].status, before.rule_evaluations[0].reason) == ("SKIPPED", "OUTSIDE_TIME_WINDOW")
    assert inside.rule_evaluations[0].status == "MATCHED"
    assert after.rule_evaluations[0].reason == "OUTSIDE_TIME_WINDOW"


async def test_condition_errors_skip_the_rule_not_the_event(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "event.missing > 1.0", [CreditAction(asset_id=asset.id, amount="1")], order=1)
    await rule(
        engine, program, "event.kind == 'x' || event.missing", [CreditAction(asset_id=asset.id, amount="2")], order=2
    )
    await rule(
        engine,
        program,
        "has(event.missing) && event.missing > 1.0",
        [CreditAction(asset_id=asset.id, amount="4")],
        order=3,
    )
    event = await send(engine, program, "u", {"kind": "x"})
    assert event.status == "COMPLETED"
    first, second, third = event.rule_evaluations
    assert first.status == "SKIPPED"
    assert first.reason is not None
    assert first.reason.startswith("CONDITION_ERROR")
    assert second.status == "MATCHED"  # error || true absorbs the error
    assert third.status == "NOT_MATCHED"
    assert await available(engine, "u", asset) == "2.00"


async def test_event_is_atomic(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="5"), TagAction(tag="first")], order=1)
    await rule(
        engine,
        program,
        "true",
        [CounterAction(key="visits", value="1"), DebitAction(asset_id=asset.id, amount="50")],
        order=2,
    )
    event = await send(engine, program, "u", {})
    assert event.status == "FAILED"
    assert event.error_message is not None
    assert "action #2 (DEBIT)" in event.error_message
    assert "insufficient" in event.error_message
    participant = await engine.get_participant_by_external_id("u")
    assert participant.balances == []
    assert participant.tags == []
    assert participant.counters == {}
    assert program.id in participant.program_ids  # the participant itself exists and is enrolled
    assert event.journal_entry_ids == []
    assert (await engine.list_journal_entries(participant_id=participant.id)).data == []
    assert (await engine.verify()).ok


async def test_idempotency(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    request = EventSubmit(
        program_id=program.id,
        external_id="u",
        idempotency_key="order-1",
        event_data={"a": 1, "b": {"c": "x", "d": [1, 2]}},
    )
    first = await engine.submit(request)
    reordered = EventSubmit(
        program_id=program.id,
        external_id="u",
        idempotency_key="order-1",
        event_data={"b": {"d": [1.0, 2], "c": "x"}, "a": 1.0},
    )
    again = await engine.submit(reordered)
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict) as conflict:
        await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="order-1", event_data={"a": 2})
        )
    assert conflict.value.code == "idempotency_conflict"
    await engine.wait_idle()
    assert await available(engine, "u", asset) == "1.00"
    # The same key in another program is another event.
    other_program, _ = await program_with_asset(engine, symbol="OTHER")
    elsewhere = await engine.submit(
        EventSubmit(program_id=other_program.id, external_id="u", idempotency_key="order-1", event_data={"a": 2})
    )
    assert elsewhere.id != first.id


async def test_unknown_participants_and_program_status(engine: Engine) -> None:
    program, asset = await program_with_asset(engine, unknown="REJECT")
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    rejected = await send(engine, program, "stranger", {})
    assert rejected.status == "FAILED"
    assert "does not exist" in (rejected.error_message or "")
    known, created = await engine.create_participant(ParticipantCreate(external_id="known"))
    assert created
    accepted = await send(engine, program, "known", {})
    assert accepted.status == "COMPLETED"
    assert program.id in (await engine.get_participant(known.id)).program_ids
    await engine.update_program(program.id, ProgramUpdate(status="SUSPENDED"))
    suspended = await send(engine, program, "known", {})
    assert suspended.status == "FAILED"
    assert "SUSPENDED" in (suspended.error_message or "")


async def test_suspended_participant_blocks_money_not_metadata(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(
        engine, program, "event.kind == 'tag'", [TagAction(tag="vip"), SetAttributeAction(key="tier", value="gold")]
    )
    await rule(engine, program, "event.kind == 'earn'", [CreditAction(asset_id=asset.id, amount="1")])
    await rule(engine, program, "event.kind == 'count'", [CounterAction(key="n", value="1")])
    participant, _ = await engine.create_participant(ParticipantCreate(external_id="u"))
    await engine.set_participant_status(participant.id, "SUSPENDED")
    assert (await send(engine, program, "u", {"kind": "tag"})).status == "COMPLETED"
    earn = await send(engine, program, "u", {"kind": "earn"})
    assert earn.status == "FAILED"
    assert "SUSPENDED" in (earn.error_message or "")
    assert (await send(engine, program, "u", {"kind": "count"})).status == "FAILED"
    await engine.set_participant_status(participant.id, "CLOSED")
    assert (await send(engine, program, "u", {"kind": "earn"})).status == "FAILED"
    state = await engine.get_participant(participant.id)
    assert state.tags == ["vip"]
    assert state.attributes == {"tier": "gold"}
    assert state.balances == []


async def test_amount_errors_name_rule_and_action(engine: Engine) -> None:
    program, asset = await program_with_asset(engine, max_transaction_amount="50")
    with pytest.raises(ValidationFailed) as scale:
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1.001")])
    assert scale.value.code == "invalid_scale"
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="0")])
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="-1")])
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="51")])
    await rule(
        engine, program, "true", [CreditAction(asset_id=asset.id, amount="event.amount * 0.015")], name="cashback"
    )
    bad_scale = await send(engine, program, "u", {"amount": 10.1})
    assert bad_scale.status == "FAILED"
    assert "rule 'cashback' action #1 (CREDIT)" in (bad_scale.error_message or "")
    assert "scale" in (bad_scale.error_message or "")
    too_big = await send(engine, program, "u", {"amount": 4000})
    assert "max_transaction_amount" in (too_big.error_message or "")
    negative = await send(engine, program, "u", {"amount": -100})
    assert "positive" in (negative.error_message or "")
    fine = await send(engine, program, "u", {"amount": 1000})
    assert fine.status == "COMPLETED"
    assert await available(engine, "u", asset) == "15.00"


async def test_invalid_cel_is_refused_with_its_position(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    with pytest.raises(ValidationFailed) as error:
        await rule(engine, program, "event.amount >= ", [CreditAction(asset_id=asset.id, amount="1")])
    [field] = error.value.details["fields"]
    assert field["field"] == "condition"
    assert field["line"] == 1
    assert field["column"] >= 1
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "event.type = 'purchase'", [CreditAction(asset_id=asset.id, amount="1")])
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="event.amount *")])
    assert engine.validate_condition("event.type == 'x'")["valid"]
    assert not engine.validate_condition("((")["valid"]


async def test_rule_order_versions_and_history(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    first = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    second = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="2")])
    assert (first.order, second.order) == (10, 20)
    with pytest.raises(Conflict):
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")], order=10)
    with pytest.raises(Conflict):
        await engine.update_rule(second.id, RuleUpdate(order=10))
    await engine.update_rule(first.id, RuleUpdate(status="SUSPENDED"))
    moved = await engine.update_rule(second.id, RuleUpdate(order=10, condition="event.x == 1.0"))
    assert moved.version == 2
    event = await send(engine, program, "u", {"x": 1})
    assert [(e.rule_id, e.rule_version) for e in event.rule_evaluations] == [(second.id, 2)]
    history = await engine.rule_history(second.id)
    assert [v.version for v in history.data] == [2, 1]
    assert history.data[0].changes == ["condition", "order"]
    assert history.data[1].snapshot.order == 20
    archived = await engine.update_rule(first.id, RuleUpdate(status="ARCHIVED"))
    assert archived.status == "ARCHIVED"
    with pytest.raises(Conflict):
        await engine.update_rule(first.id, RuleUpdate(name="again"))


async def test_target_credits_another_participant_atomically(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(
        engine,
        program,
        "event.type == 'referral'",
        [
            CreditAction(asset_id=asset.id, amount="25", target=Target(external_id="event.referrer_id")),
            CreditAction(asset_id=asset.id, amount="5"),
        ],
    )
    event = await send(engine, program, "newbie", {"type": "referral", "referrer_id": "friend"})
    assert event.status == "COMPLETED", event.error_message
    assert await available(engine, "friend", asset) == "25.00"
    assert await available(engine, "newbie", asset) == "5.00"
    assert (await engine.verify()).ok


async def test_counters_and_attributes_from_expressions(engine: Engine) -> None:
    program, _ = await program_with_asset(engine)
    await rule(
        engine,
        program,
        "event.type == 'purchase'",
        [
            CounterAction(key="purchase_count", value="1"),
            CounterAction(key="lifetime_spend", value="event.amount"),
            SetAttributeAction(key="last_store", value_expression="event.store"),
        ],
    )
    await send(engine, program, "u", {"type": "purchase", "amount": 10.25, "store": "berlin"})
    await send(engine, program, "u", {"type": "purchase", "amount": 4, "store": "paris"})
    participant = await engine.get_participant_by_external_id("u")
    assert participant.counters == {"lifetime_spend": "14.25", "purchase_count": "2"}
    assert participant.attributes == {"last_store": "paris"}


async def test_rule_versions_record_the_inbox_position_they_apply_from(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    created = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    before = await send(engine, program, "u", {})
    await engine.update_rule(created.id, RuleUpdate(condition="false"))
    after = await send(engine, program, "u", {})
    history = await engine.rule_history(created.id)
    second, first = history.data
    assert first.applies_from_sequence <= before.sequence < second.applies_from_sequence <= after.sequence
    assert [e.status for e in before.rule_evaluations] == ["MATCHED"]
    assert [e.status for e in after.rule_evaluations] == ["NOT_MATCHED"]
