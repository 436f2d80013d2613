"""Reversals on the engine: a restored lot whose expiry passed meanwhile goes straight to breakage with its own
EXPIRATION entry, and concurrent partial reversals of one redemption never give back more than was spent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio

from scrip_actor import ScripError, open_engine
from scrip_actor.model import CreditAction, RedemptionCreate, ReversalCreate
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send


async def test_a_lot_restored_after_its_expiry_expires_again_at_once(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "d"), clock=clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "event.short", [CreditAction(asset_id=asset.id, amount="5", expires_at="1h")])
        await rule(engine, program, "!event.short", [CreditAction(asset_id=asset.id, amount="5")])
        await send(engine, program, "ann", {"short": True}, at=clock.now)
        await send(engine, program, "ann", {"short": False}, at=clock.now)
        participant = await engine.get_participant_by_external_id("ann")
        request = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="8", description="a mug")
        redemption, created = await engine.redemptions.create(participant.id, request)
        assert created
        clock.advance(timedelta(hours=2))  # the first lot (5, spent whole) has expired since
        reversal, _ = await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="returned"))
        assert [item.amount for item in reversal.lots_restored or []] == ["3", "5"]  # newest first
        balance = (await engine.balances(participant.id, asset.id))[0]
        assert balance.available == "5"  # the 3 of the lasting lot are back, plus its unspent 2; the 5 expired
        entries = (await engine.list_journal_entries(participant_id=participant.id, limit=3)).data
        assert [entry.action_type for entry in entries][:2] == ["EXPIRATION", "REDEMPTION_REVERSAL"]
        assert (await engine.verify()).ok


async def test_concurrent_partial_reversals_never_exceed_the_redemption(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "d"), clock=clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="100")])
        await send(engine, program, "bo", {})
        participant = await engine.get_participant_by_external_id("bo")
        request = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="10", description="d")
        redemption, _ = await engine.redemptions.create(participant.id, request)
        outcomes: list[str] = []

        async def reverse_three() -> None:
            try:
                await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="part", amount="3"))
                outcomes.append("ok")
            except ScripError as error:
                outcomes.append(error.code)

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(reverse_three)
        assert sorted(outcomes) == ["bad_request"] * 3 + ["ok"] * 3  # 3 x 3 = 9 of 10; a fourth would be 12
        assert engine.redemptions.get(redemption.id).reversed_amount == "9"
        assert (await engine.balances(participant.id, asset.id))[0].available == "99"
        assert (await engine.verify()).ok
