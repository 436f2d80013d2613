"""Acceptance 3: LOT assets — FIFO spending, expiry into breakage, maturity from DEFERRED, all on their own."""

from __future__ import annotations

from datetime import timedelta

from scrip_actor import CreditAction, DebitAction, Engine
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send


async def test_fifo_expiry_and_maturity(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine, mode="LOT", scale=0)
    await rule(
        engine, program, "event.type == 'expiring'", [CreditAction(asset_id=asset.id, amount="100", expires_at="720h")]
    )
    await rule(engine, program, "event.type == 'forever'", [CreditAction(asset_id=asset.id, amount="50")])
    await rule(engine, program, "event.type == 'spend'", [DebitAction(asset_id=asset.id, amount="event.points")])
    await rule(
        engine, program, "event.type == 'vesting'", [CreditAction(asset_id=asset.id, amount="7", matures_at="48h")]
    )
    t1 = clock.now
    await send(engine, program, "u", {"type": "expiring"}, at=t1)
    clock.advance(timedelta(days=1))
    await send(engine, program, "u", {"type": "forever"}, at=clock.now)
    spent = await send(engine, program, "u", {"type": "spend", "points": 30}, at=clock.now)
    assert spent.status == "COMPLETED", spent.error_message
    participant = await engine.get_participant_by_external_id("u")
    lots = await engine.lots(participant.id, asset.id)
    assert [(lot.amount, lot.remaining, lot.status) for lot in lots] == [
        ("100", "70", "AVAILABLE"),
        ("50", "50", "AVAILABLE"),
    ]

    vesting = await send(engine, program, "u", {"type": "vesting"}, at=clock.now)
    assert vesting.status == "COMPLETED"
    [balance] = (await engine.get_participant(participant.id)).balances
    assert (balance.available, balance.deferred) == ("120", "7")
    # Deferred value cannot be spent: 120 available, asking 121 fails.
    too_much = await send(engine, program, "u", {"type": "spend", "points": 121}, at=clock.now)
    assert too_much.status == "FAILED"
    assert "insufficient" in (too_much.error_message or "")

    # Two days later the vesting lot matures on its own (the sweeper runs without any event).
    clock.advance(timedelta(days=2, seconds=1))
    engine.sweep_due()
    await engine.wait_idle()
    [balance] = (await engine.get_participant(participant.id)).balances
    assert (balance.available, balance.deferred) == ("127", "0")
    maturity = await engine.list_journal_entries(participant_id=participant.id)
    assert maturity.data[0].action_type == "MATURITY"

    # After t1 + 30 days the first lot's remainder (70) goes to breakage in an EXPIRATION entry.
    clock.now = t1 + timedelta(days=30, seconds=1)
    engine.sweep_due()
    await engine.wait_idle()
    lots = await engine.lots(participant.id, asset.id)
    assert [(lot.remaining, lot.status) for lot in lots] == [("0", "EXPIRED"), ("50", "AVAILABLE"), ("7", "AVAILABLE")]
    [balance] = (await engine.get_participant(participant.id)).balances
    assert balance.available == "57"
    entries = await engine.list_journal_entries(participant_id=participant.id, limit=1)
    [expiration] = entries.data
    assert expiration.action_type == "EXPIRATION"
    assert {p.entity_id: p.amount for p in expiration.postings} == {participant.id: "-70", "SYSTEM_BREAKAGE": "70"}
    assert expiration.created_at == t1 + timedelta(days=30)
    report = await engine.verify()
    assert report.ok, report.problems


async def test_expired_value_is_never_spendable_before_the_sweep(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine, mode="LOT", scale=0)
    await rule(engine, program, "event.type == 'earn'", [CreditAction(asset_id=asset.id, amount="10", expires_at="1h")])
    await rule(engine, program, "event.type == 'spend'", [DebitAction(asset_id=asset.id, amount="5")])
    await send(engine, program, "u", {"type": "earn"}, at=clock.now)
    # The event says it happens two hours later; the wall clock (and so the sweeper) has not moved.
    late = await send(engine, program, "u", {"type": "spend"}, at=clock.now + timedelta(hours=2))
    assert late.status == "FAILED"
    assert (await engine.verify()).ok


async def test_expiry_survives_restart(tmp_path, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    from scrip_actor import open_engine
    from tests.conftest import small_config

    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10", expires_at="24h")])
        event = await send(engine, program, "u", {}, at=clock.now)
        assert event.status == "COMPLETED"
    clock.advance(timedelta(days=2))
    async with open_engine(config=config, clock=clock) as engine:
        engine.sweep_due()
        await engine.wait_idle()
        participant = await engine.get_participant_by_external_id("u")
        assert participant.balances[0].available == "0"
        assert (await engine.verify()).ok
