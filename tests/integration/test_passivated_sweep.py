from datetime import timedelta
from pathlib import Path

from scrip_actor import CreditAction, EventSubmit, open_engine
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule


async def test_lots_of_passivated_participants_still_expire(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data", actors_resident_max=3)
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10", expires_at="1h")])
        await engine.submit_batch(
            [
                EventSubmit(
                    program_id=program.id,
                    external_id=f"user{n}",
                    idempotency_key=f"k{n}",
                    event_data={},
                    event_timestamp=clock.now,
                )
                for n in range(30)
            ]
        )
        await engine.wait_idle()
        assert engine.statistics().passivations > 0
        clock.advance(timedelta(hours=2))
        engine.sweep_due()
        await engine.wait_idle()
        for n in range(30):
            participant = await engine.get_participant_by_external_id(f"user{n}")
            assert participant.balances[0].available == "0"
        report = await engine.verify()
        assert report.ok, report.problems
