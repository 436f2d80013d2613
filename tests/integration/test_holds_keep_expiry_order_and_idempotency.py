"""Holds on the engine: a held lot still expires when it would have (from HELD, to breakage), an operation's
answer is replayed after a restart, and an operation runs in turn with its participant's queued events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from scrip_actor import EventSubmit, ParticipantCreate, open_engine
from scrip_actor.errors import IdempotencyConflict, InsufficientFunds
from scrip_actor.model import BalanceAdjust, BalanceOperation, CreditAction
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send


async def test_a_held_lot_expires_from_held_when_its_lot_would_have(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "d"), clock=clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10", expires_at="24h")])
        await send(engine, program, "ann", {}, at=clock.now)
        participant = await engine.get_participant_by_external_id("ann")
        hold = BalanceOperation(
            program_id=program.id, asset_id=asset.id, description="auth", amount="4", reference_id="a"
        )
        result = await engine.balance_operation("HOLD", participant.id, hold)
        assert (result.balance.available, result.balance.held) == ("6", "4")

        clock.advance(timedelta(hours=25))
        engine.sweep_due()
        await engine.wait_idle()
        balance = (await engine.balances(participant.id, asset.id))[0]
        assert (balance.available, balance.held) == ("0", "0")
        lots = await engine.lots(participant.id, asset.id)
        assert sorted((lot.status, lot.amount) for lot in lots) == [("EXPIRED", "10"), ("EXPIRED", "4")]
        expiries = (await engine.list_journal_entries(participant_id=participant.id)).data
        buckets = sorted(
            p.bucket
            for e in expiries
            if e.action_type == "EXPIRATION"
            for p in e.postings
            if p.entity_id == participant.id
        )
        assert buckets == ["AVAILABLE", "HELD"]
        # Nothing left to hold: the expired lots are not spendable.
        with pytest.raises(InsufficientFunds):
            await engine.balance_operation("HOLD", participant.id, hold)
        assert (await engine.verify()).ok


async def test_an_operation_answer_is_replayed_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "d")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        participant, _ = await engine.create_participant(ParticipantCreate(external_id="bo"))
        credit = BalanceAdjust(
            program_id=program.id,
            asset_id=asset.id,
            type="CREDIT",
            amount="12.50",
            description="goodwill",
            idempotency_key="k",
        )
        first = await engine.adjust_balance(participant.id, credit)
    async with open_engine(config=config, clock=clock) as engine:
        again = await engine.adjust_balance(participant.id, credit)
        assert again == first
        assert (await engine.balances(participant.id, asset.id))[0].available == "12.50"
        with pytest.raises(IdempotencyConflict):
            await engine.adjust_balance(participant.id, msgspec.structs.replace(credit, amount="13"))
        assert (await engine.verify()).ok


async def test_an_operation_waits_for_the_events_queued_before_it(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "d"), clock=clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="5")])
        await send(engine, program, "cy", {})
        participant = await engine.get_participant_by_external_id("cy")
        # Three events queued, not yet processed; the hold of 20 needs all of them (5 + 3 x 5).
        for key in ("q1", "q2", "q3"):
            await engine.submit(
                EventSubmit(program_id=program.id, external_id="cy", idempotency_key=key, event_data={})
            )
        hold = BalanceOperation(program_id=program.id, asset_id=asset.id, description="all of it", amount="20")
        result = await engine.balance_operation("HOLD", participant.id, hold)
        assert (result.balance.available, result.balance.held) == ("0", "20")
        assert (await engine.verify()).ok
