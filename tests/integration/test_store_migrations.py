"""A store written by an earlier version is migrated on open, exactly: after it, verify passes and the API returns
the very records that version returned; new events, replays and idempotency conflicts work on the migrated store.

The fixture ``stores/store_v4.tar.gz`` was written by the code before schema 5 (commit 28db917) with
``stores/make_store.py``, which also recorded what that version's API said (``expected.json``): events with
matched, unmatched, skipped (error, time window) and stopped rules, a FAILED and a retried event, LOT credits
that matured, a funded wallet. A schema-3 store is the same store without the indexes schema 4 added.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import pytest

from scrip_actor import EventSubmit, IdempotencyConflict, open_engine, verify
from scrip_actor.ids import KIND_EVENT, SequenceIds
from scrip_actor.store import SCHEMA_VERSION, be64, events_by_external_key, idempotency_key, unbe64
from tests.conftest import ManualClock, small_config

FIXTURE = Path(__file__).parent / "stores" / "store_v4.tar.gz"


def _unpack(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    expected = msgspec.json.decode((tmp_path / "expected.json").read_bytes())
    for lots in expected["lots"].values():
        for lot in lots:  # fields lots gained since schema 4 (holds, issue 12) read back at their defaults
            lot.update(_LOT_FIELDS_ADDED_SINCE)
    for participant in expected["participants"]:  # and fields participants gained (issue 13)
        participant.update(_PARTICIPANT_FIELDS_ADDED_SINCE)
    return tmp_path / "data", expected


_LOT_FIELDS_ADDED_SINCE = {"reference_id": None, "provisional": False, "parent_lot_id": None}
_PARTICIPANT_FIELDS_ADDED_SINCE: dict[str, Any] = {"counter_resets": {}}


def _make_schema_3(data_dir: Path) -> None:
    """What a schema-3 store looked like: schema 4 without its three event-list indexes."""
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        for name in (b"events_by_external", b"events_by_rule", b"events_failed"):
            txn.drop(env.open_db(name, txn=txn), delete=True)
        txn.put(b"schema", msgspec.json.encode(3), db=env.open_db(b"meta", txn=txn))
    env.close()


async def _dump(engine: Any, expected: dict[str, Any]) -> dict[str, Any]:
    program_id = expected["events"][0]["program_id"]
    cash_id = next(lot["asset_id"] for lots in expected["lots"].values() for lot in lots)
    events = (await engine.list_events(limit=100)).data
    # By id, as the expected dump (made when the list was in id order; since schema 9 it is newest first).
    participants = sorted((await engine.list_participants(limit=100)).data, key=lambda participant: participant.id)
    dumped = msgspec.json.decode(
        msgspec.json.encode(
            {
                "events": [await engine.get_event(event.id) for event in events],
                "participants": participants,
                "lots": {participant.id: await engine.lots(participant.id, cash_id) for participant in participants},
                "journal": (await engine.list_journal_entries(limit=100)).data,
                "wallet": await engine.wallet_balances(program_id),
            }
        )
    )
    for participant in dumped["participants"]:
        assert participant.pop("tiers") == {}  # schema 9's field: an older store's participants hold no tier
    for event in dumped["events"]:
        assert event.pop("event_type") == "EXTERNAL"  # schema 10's field: an older store's events are clients'
    return dumped  # type: ignore[no-any-return]


@pytest.mark.parametrize("written_by", ["schema 4", "schema 3"])
async def test_an_older_store_is_migrated_on_open_and_reads_back_the_same(
    tmp_path: Path, clock: ManualClock, written_by: str
) -> None:
    data_dir, expected = _unpack(tmp_path)
    if written_by == "schema 3":
        _make_schema_3(data_dir)
    config = small_config(data_dir)
    async with open_engine(config=config, clock=clock) as engine:
        assert await _dump(engine, expected) == expected
        report = await engine.verify()
        assert report.ok, report.problems
        # The indexes a schema-3 store lacked serve the filters.
        ann = [event for event in expected["events"] if event["external_id"] == "ann"]
        listed = (await engine.list_events(external_id="ann")).data
        assert [event.id for event in listed] == [event["id"] for event in ann]
        failed = (await engine.list_events(status="FAILED")).data
        assert [event.external_id for event in failed] == ["cid"]
    assert verify(str(data_dir), config).ok  # and from outside, after close


async def test_a_migrated_store_takes_new_events_and_keeps_its_idempotency(tmp_path: Path, clock: ManualClock) -> None:
    data_dir, expected = _unpack(tmp_path)
    first = expected["events"][-1]  # newest first: the last is the first admitted
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        program_id = first["program_id"]
        replay = await engine.submit(
            EventSubmit(
                program_id=program_id,
                external_id=first["external_id"],
                idempotency_key=first["idempotency_key"],
                event_data=first["event_data"],
            )
        )
        assert replay.id == first["id"]
        assert replay.status == "COMPLETED"
        with pytest.raises(IdempotencyConflict):
            await engine.submit(
                EventSubmit(
                    program_id=program_id,
                    external_id=first["external_id"],
                    idempotency_key=first["idempotency_key"],
                    event_data={"type": "purchase", "amount": 999.0},
                )
            )
        new = await engine.submit(
            EventSubmit(
                program_id=program_id,
                external_id="ann",
                idempotency_key="after-migration",
                event_data={"type": "purchase", "amount": 150.0},
            )
        )
        await engine.wait_idle()
        processed = await engine.get_event(new.id)
        assert processed.status == "COMPLETED"
        assert [e.status for e in processed.rule_evaluations] == [
            e["status"] for e in expected["events"][-2]["rule_evaluations"]
        ]
        assert (await engine.verify()).ok


def test_verify_reads_an_unmigrated_store_as_another_schema_not_as_damage(tmp_path: Path) -> None:
    data_dir, _ = _unpack(tmp_path)
    report = verify(str(data_dir), small_config(data_dir))
    assert not report.ok
    assert report.problems == [
        f"store schema v4, this version needs v{SCHEMA_VERSION}: run `scrip serve` once to migrate it "
        "(the migration runs when the server opens the store)"
    ]


async def test_events_waiting_in_an_older_store_are_processed_once_after_the_migration(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A schema-4 store closed (or killed) with events still in its inbox: after the migration they have no inbox
    record (schema 5 finds first attempts from the processed-below mark), and they are processed exactly once."""
    data_dir, expected = _unpack(tmp_path)
    template = expected["events"][0]
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        events = env.open_db(b"events", txn=txn)
        last = unbe64(next(iter(txn.cursor(db=events).iterprev(values=False))))
        prefix = msgspec.json.decode(txn.get(b"id_prefix", db=env.open_db(b"meta", txn=txn)), type=int)
        ids = SequenceIds(prefix)
        for n in (1, 2):  # two events admitted by the old code and not yet processed when it stopped
            sequence = last + n
            event = {
                **template,
                "id": ids.make(KIND_EVENT, sequence),
                "sequence": sequence,
                "external_id": "waiting",
                "idempotency_key": f"waiting-{n}",
                "status": "RECEIVED",
                "participant_id": None,
                "error_message": None,
                "rule_evaluations": [],
                "journal_entry_ids": [],
                "processed_at": None,
                "attempts": 0,
            }
            txn.put(be64(sequence), msgspec.json.encode(event), db=events)
            txn.put(be64(sequence), b"", db=env.open_db(b"inbox_pending", txn=txn))
            txn.put(events_by_external_key("waiting", sequence), b"", db=env.open_db(b"events_by_external", txn=txn))
            key = idempotency_key(template["program_id"], f"waiting-{n}")
            txn.put(
                key, msgspec.json.encode((sequence, event["payload_hash"])), db=env.open_db(b"idempotency", txn=txn)
            )
    env.close()
    config = small_config(data_dir)
    async with open_engine(config=config, clock=clock) as engine:
        await engine.wait_idle()
        waiting = (await engine.list_events(external_id="waiting")).data
        assert all(event.status in ("COMPLETED", "FAILED") for event in waiting), [e.error_message for e in waiting]
        # The wallet the fixture funded covers one more cash credit, not two: the second, newer one fails on it.
        assert [event.error_message is None for event in waiting] == [False, True]
        assert "program wallet" in (waiting[0].error_message or "")
        assert [event.attempts for event in waiting] == [1, 1]
        assert (await engine.verify()).ok
    async with open_engine(config=config, clock=clock) as engine:  # and not again on the next open
        await engine.wait_idle()
        assert [event.attempts for event in (await engine.list_events(external_id="waiting")).data] == [1, 1]
    assert verify(str(data_dir), config).ok
