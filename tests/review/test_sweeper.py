"""Lots must expire and mature on their own, whenever the sweeper happens to look."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from scrip_actor import CreditAction
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


async def test_a_sweep_just_before_a_sub_millisecond_due_time_does_not_lose_the_lot(
    tmp_path: Path, clock: ManualClock
) -> None:
    clock.now += timedelta(microseconds=500)  # receipt times (and so default event times) carry microseconds
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10", expires_at="1h")])
        earned = await send(engine, program, "u", {})  # event_timestamp defaults to the receipt time
        due = clock.now + timedelta(hours=1)
        clock.now = due.replace(microsecond=0)  # the sweeper's tick lands 0.5 ms before the lot's expiry
        engine.sweep_due()
        await engine.wait_idle()
        clock.now = due + timedelta(minutes=5)
        engine.sweep_due()
        await engine.wait_idle()
        [lot] = await engine.lots(earned.participant_id or "", asset.id)
        assert lot.status == "EXPIRED", lot
