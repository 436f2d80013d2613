"""A rule stored under older, looser bounds still lets the engine open: the action whose stored value today's
bounds refuse fails each event it runs for, with the reason, and the rest of the rule set keeps working. And an
events-list cursor that is not an events cursor is the cursor 400, like every other malformed cursor."""

from __future__ import annotations

from pathlib import Path

import lmdb
import msgspec
import pytest

from scrip_actor import CreditAction, EventSubmit, TagAction, ValidationFailed, open_engine
from scrip_actor.cursors import encode
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send


async def test_a_stored_tag_beyond_todays_bound_fails_its_events_but_not_the_open(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "event.kind == 'tag'", [TagAction(tag="vip")], order=10)
        await rule(engine, program, "event.kind == 'earn'", [CreditAction(asset_id=asset.id, amount="1")], order=20)
    # What an older version could store: "İ" * 255 passed the length check before lowercasing doubled it.
    env = lmdb.open(str(tmp_path / "data" / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        rules_db = env.open_db(b"rules", txn=txn)
        for key, raw in list(txn.cursor(db=rules_db)):
            stored = msgspec.json.decode(raw)
            if stored["actions"][0]["type"] == "TAG":
                stored["actions"][0]["tag"] = "İ" * 255
                txn.put(key, msgspec.json.encode(stored), db=rules_db)
    env.close()
    async with open_engine(config=config, clock=clock) as engine:
        tagged = await send(engine, program, "u", {"kind": "tag"})
        assert tagged.status == "FAILED"
        assert "once lowercased" in (tagged.error_message or "")
        earned = await send(engine, program, "u", {"kind": "earn"})
        assert earned.status == "COMPLETED", earned.error_message


async def test_a_cursor_of_another_list_is_refused_by_the_events_list(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await engine.submit(EventSubmit(program_id=program.id, external_id="u", idempotency_key="k", event_data={}))
        foreign = encode((b"a-participant-id",))  # the shape of a participants-list cursor
        with pytest.raises(ValidationFailed) as refused:
            await engine.list_events(cursor=foreign)
        assert refused.value.details["fields"][0]["field"] == "cursor"
