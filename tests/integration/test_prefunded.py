"""Acceptance 2: PREFUNDED assets draw from the program wallet and fail when it is short."""

from __future__ import annotations

import pytest

from scrip_actor import CreditAction, Engine, InsufficientFunds, ValidationFailed
from tests.helpers import available, program_with_asset, rule, send


async def test_prefunded_wallet_limits_credits(engine: Engine) -> None:
    program, asset = await program_with_asset(engine, policy="PREFUNDED")
    funded = await engine.fund(program.id, asset.id, "15", "initial funding")
    assert funded.available == "15.00"
    assert funded.journal_entry_id
    await rule(
        engine,
        program,
        "event.type == 'purchase' && event.amount >= 100.0",
        [CreditAction(asset_id=asset.id, amount="10")],
    )
    first = await send(engine, program, "u1", {"type": "purchase", "amount": 105.0})
    second = await send(engine, program, "u1", {"type": "purchase", "amount": 105.0})
    assert first.status == "COMPLETED"
    assert second.status == "FAILED"
    assert second.error_message is not None
    assert "wallet" in second.error_message
    assert "5.00" in second.error_message
    assert second.journal_entry_ids == []
    [wallet] = await engine.wallet_balances(program.id)
    assert wallet.available == "5.00"
    assert wallet.issuance_policy == "PREFUNDED"
    assert await available(engine, "u1", asset) == "10.00"
    report = await engine.verify()
    assert report.ok, report.problems


async def test_burn_never_below_zero_and_unlimited_has_no_wallet(engine: Engine) -> None:
    program, asset = await program_with_asset(engine, policy="PREFUNDED")
    await engine.fund(program.id, asset.id, "3.50")
    burned = await engine.burn(program.id, asset.id, "1.25", "cleanup")
    assert burned.available == "2.25"
    with pytest.raises(InsufficientFunds):
        await engine.burn(program.id, asset.id, "2.26")
    with pytest.raises(ValidationFailed):
        await engine.fund(program.id, asset.id, "0")
    with pytest.raises(ValidationFailed) as scale_error:
        await engine.fund(program.id, asset.id, "1.001")
    assert scale_error.value.code == "invalid_scale"
    _, unlimited = await program_with_asset(engine, symbol="FREE")
    with pytest.raises(ValidationFailed):
        await engine.fund(program.id, unlimited.id, "1")
    entries = await engine.list_journal_entries(program_id=program.id)
    assert [e.action_type for e in entries.data] == ["BURN", "FUND"]
    assert (await engine.verify()).ok


async def test_failed_event_can_be_retried_after_the_cause_is_fixed(engine: Engine) -> None:
    from scrip_actor import Conflict

    program, asset = await program_with_asset(engine, policy="PREFUNDED")
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10")])
    failed = await send(engine, program, "u1", {})
    assert failed.status == "FAILED"
    assert failed.attempts == 1
    await engine.fund(program.id, asset.id, "10")
    retried = await engine.retry_event(failed.id)
    assert retried.id == failed.id
    assert retried.status == "PENDING"
    with pytest.raises(Conflict):
        await engine.retry_event(failed.id)  # already queued again
    await engine.wait_idle()
    done = await engine.get_event(failed.id)
    assert done.status == "COMPLETED"
    assert done.attempts == 2
    assert await available(engine, "u1", asset) == "10.00"
    with pytest.raises(Conflict):
        await engine.retry_event(failed.id)  # COMPLETED events are never processed twice
