"""Acceptance 1: the quickstart, end to end on a real store."""

from __future__ import annotations

from scrip_actor import (
    AssetCreate,
    CreditAction,
    Engine,
    EventSubmit,
    ProgramCreate,
    RuleCreate,
)


async def test_quickstart_credit_and_not_matched(engine: Engine) -> None:
    program = await engine.create_program(ProgramCreate(name="Rewards"))
    asset = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol="PTS",
            inventory_mode="SIMPLE",
            issuance_policy="UNLIMITED",
            scale=2,
        )
    )
    rule = await engine.create_rule(
        RuleCreate(
            program_id=program.id,
            name="Big purchase",
            condition="event.type == 'purchase' && event.amount >= 100.0",
            actions=[CreditAction(asset_id=asset.id, amount="10")],
        )
    )
    first = await engine.submit(
        EventSubmit(
            program_id=program.id,
            external_id="user_123",
            idempotency_key="k1",
            event_data={"type": "purchase", "amount": 105.00},
        )
    )
    assert first.status == "PENDING"
    await engine.wait_idle()
    done = await engine.get_event(first.id)
    assert done.status == "COMPLETED", done.error_message
    assert [e.status for e in done.rule_evaluations] == ["MATCHED"]
    assert done.rule_evaluations[0].rule_version == 1
    participant = await engine.get_participant_by_external_id("user_123")
    assert [(b.asset_id, b.available, b.held, b.deferred) for b in participant.balances] == [
        (asset.id, "10.00", "0.00", "0.00")
    ]
    assert len(done.journal_entry_ids) == 1
    entry = await engine.get_journal_entry(done.journal_entry_ids[0])
    legs = sorted((p.entity_type, p.entity_id, p.amount) for p in entry.postings)
    assert legs == [("PARTICIPANT", participant.id, "10.00"), ("SYSTEM", "SYSTEM_ISSUANCE", "-10.00")]
    assert entry.event_id == first.id
    assert entry.rule_id == rule.id
    assert entry.program_id == program.id

    small = await engine.submit(
        EventSubmit(
            program_id=program.id,
            external_id="user_123",
            idempotency_key="k2",
            event_data={"type": "purchase", "amount": 99},
        )
    )
    integer = await engine.submit(
        EventSubmit(
            program_id=program.id,
            external_id="user_123",
            idempotency_key="k3",
            event_data={"type": "purchase", "amount": 105},
        )
    )
    await engine.wait_idle()
    small_done = await engine.get_event(small.id)
    assert small_done.status == "COMPLETED"
    assert [e.status for e in small_done.rule_evaluations] == ["NOT_MATCHED"]
    assert small_done.journal_entry_ids == []
    integer_done = await engine.get_event(integer.id)
    assert integer_done.status == "COMPLETED"
    assert [e.status for e in integer_done.rule_evaluations] == ["MATCHED"]
    participant = await engine.get_participant_by_external_id("user_123")
    assert participant.balances[0].available == "20.00"
    report = await engine.verify()
    assert report.ok, report.problems
    assert report.journal_entries == 2
