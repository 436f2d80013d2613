"""A reward's max_total is shared by every participant: under concurrent redemptions it is never exceeded by a
single unit, and the counts (total and per participant) survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from scrip_actor import ItemRedemptionCreate, ParticipantCreate, RewardCreate, ScripError, open_engine
from scrip_actor.model import BalanceAdjust
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset


async def test_max_total_is_exact_under_concurrency_and_kept_across_a_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = small_config(tmp_path / "d")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        reward = await engine.rewards.create(
            program.id,
            RewardCreate(
                name="Seat", redemption_type="UNIT_BASED", asset_id=asset.id, unit_cost="1", status="ACTIVE",
                max_total=5, max_per_participant=1,
            ),
        )  # fmt: skip
        people = []
        for number in range(20):
            participant, _ = await engine.create_participant(ParticipantCreate(external_id=f"p{number}"))
            credit = BalanceAdjust(program_id=program.id, asset_id=asset.id, type="CREDIT", amount="3", description="d")
            await engine.adjust_balance(participant.id, credit)
            people.append(participant.id)
        outcomes: list[str] = []

        async def redeem(participant_id: str, times: int) -> None:
            for _ in range(times):
                try:
                    await engine.redemptions.create_item(
                        participant_id, ItemRedemptionCreate(program_id=program.id, reward_id=reward.id)
                    )
                    outcomes.append("ok")
                except ScripError as error:
                    outcomes.append(str(error.details.get("reason")))

        async with trio.open_nursery() as nursery:
            for participant_id in people:
                nursery.start_soon(redeem, participant_id, 2)
        assert outcomes.count("ok") == 5
        assert engine.rewards.get(program.id, reward.id).redeemed_count == 5
        assert (await engine.verify()).ok
        winners = [pid for pid in people if (await engine.balances(pid, asset.id))[0].available == "2"]
        assert len(winners) == 5  # one unit each: max_per_participant held too
    async with open_engine(config=config, clock=clock) as engine:
        assert engine.rewards.get(program.id, reward.id).redeemed_count == 5
        with pytest.raises(ScripError) as refused:
            await engine.redemptions.create_item(
                winners[0], ItemRedemptionCreate(program_id=program.id, reward_id=reward.id)
            )
        assert refused.value.details.get("reason") == "max_total_reached"
