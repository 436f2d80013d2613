"""``list_participants`` is newest first from the ``participants_by_created`` index (schema 9): participants made
by events and by the API are both in it, and a schema-8 store (which had no such index) gets it backfilled on
open, so its participants list the same way; the new index must also survive verify."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import lmdb
import msgspec

from scrip_actor import ParticipantCreate, open_engine
from scrip_actor.store import SCHEMA_VERSION
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, send


async def _made(data_dir: Path, clock: ManualClock) -> list[str]:
    """Three participants, one a minute: by the API, by an event, by the API again. Returns their external ids."""
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await engine.create_participant(ParticipantCreate(external_id="first"))
        clock.advance(timedelta(minutes=1))
        await send(engine, program, "second", {})  # created by processing the event
        clock.advance(timedelta(minutes=1))
        await engine.create_participant(ParticipantCreate(external_id="third"))
        newest_first = [p.external_id for p in (await engine.list_participants()).data]
        assert newest_first == ["third", "second", "first"]
        oldest_first = [p.external_id for p in (await engine.list_participants(descending=False)).data]
        assert oldest_first == ["first", "second", "third"]
    return newest_first


def _as_schema_8(data_dir: Path) -> None:
    """What a schema-8 store looked like: no participants_by_created database."""
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"participants_by_created", txn=txn), delete=True)
        txn.put(b"schema", msgspec.json.encode(8), db=env.open_db(b"meta", txn=txn))
    env.close()


async def test_a_schema_8_store_lists_participants_newest_first_after_its_migration(
    tmp_path: Path, clock: ManualClock
) -> None:
    assert SCHEMA_VERSION >= 9
    data_dir = tmp_path / "data"
    before = await _made(data_dir, clock)
    _as_schema_8(data_dir)
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        assert [p.external_id for p in (await engine.list_participants()).data] == before
        first_page = await engine.list_participants(limit=2)
        rest = await engine.list_participants(limit=2, cursor=first_page.next_cursor)
        assert [p.external_id for p in first_page.data + rest.data] == before
        report = await engine.verify()
        assert report.ok, report.problems


async def test_verify_names_a_participant_missing_from_the_index(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "data"
    await _made(data_dir, clock)
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        index = env.open_db(b"participants_by_created", txn=txn)
        first_key = next(iter(txn.cursor(db=index).iternext(values=False)))
        txn.delete(first_key, db=index)
    env.close()
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        report = await engine.verify()
    assert not report.ok
    assert any("participants_by_created" in problem for problem in report.problems), report.problems
