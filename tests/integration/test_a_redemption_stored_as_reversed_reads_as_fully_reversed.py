"""A redemption fully reversed before the status took the hosted API's name (``REVERSED``, until 2026-12-04) is
read back from the store as ``FULLY_REVERSED``, and its participant's list filtered by that status finds it; new
ones are stored with the new name (docs/money-out.md)."""

from __future__ import annotations

from pathlib import Path

import lmdb

from scrip_actor import open_engine
from scrip_actor._data_dir import ENV_DIR_NAME
from scrip_actor.model import CreditAction, RedemptionCreate, ReversalCreate
from tests.conftest import small_config
from tests.helpers import program_with_asset, rule, send


async def test_an_old_reversed_status_reads_as_the_hosted_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    async with open_engine(config=small_config(data_dir)) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10")])
        await send(engine, program, "cy", {})
        participant = await engine.get_participant_by_external_id("cy")
        request = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="4", description="d")
        redemption, _ = await engine.redemptions.create(participant.id, request)
        await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="all"))
        assert engine.redemptions.get(redemption.id).status == "FULLY_REVERSED"

    env = lmdb.open(str(data_dir / ENV_DIR_NAME), max_dbs=64, subdir=True, create=False)
    with env.begin(write=True) as txn:
        handle = env.open_db(b"redemptions", txn=txn, create=False)
        raw = txn.get(redemption.id.encode(), db=handle)
        assert raw is not None and b'"status":"FULLY_REVERSED"' in raw
        txn.put(redemption.id.encode(), raw.replace(b'"status":"FULLY_REVERSED"', b'"status":"REVERSED"'), db=handle)
    env.close()

    async with open_engine(config=small_config(data_dir)) as engine:
        assert engine.redemptions.get(redemption.id).status == "FULLY_REVERSED"
        listed = engine.redemptions.list_for(participant.id, status="FULLY_REVERSED")
        assert [item.id for item in listed.data] == [redemption.id]
        assert (await engine.verify()).ok
