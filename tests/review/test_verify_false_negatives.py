"""verify must not pass a store the engine itself cannot run on (or that has silently lost work).

Each test builds a healthy store with the engine, closes it, makes one surgical change with LMDB directly, and runs
``verify``. Today each change passes verify, although the engine then crashes on it or never does the work.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from scrip_actor import CreditAction, ParticipantCreate
from scrip_actor._records import decode_state_change, state_history_key
from scrip_actor.ids import SequenceIds
from scrip_actor.model import BalanceAdjust, Lot, RedemptionCreate, ReversalCreate
from scrip_actor.store import PROCESSED_BELOW_KEY, Store, be64, encode, unbe64
from scrip_actor.tiers import LevelSpec, TierCreate, TierStateSet
from scrip_actor.verify import verify
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


async def _healthy_store(data_dir: Path, clock: ManualClock) -> dict[str, str]:
    async with running(data_dir, clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        _, other = await program_with_asset(engine, mode="LOT", scale=0, symbol="OTH")
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="10", expires_at="1h")])
        earned = await send(engine, program, "u", {}, key="earn")
        assert earned.status == "COMPLETED"
        assert (await engine.verify()).ok
        return {"participant": earned.participant_id or "", "asset": asset.id, "other": other.id, "program": program.id}


def _write(data_dir: Path, ops: list[tuple[str, bytes, bytes | None]]) -> None:
    store = Store(data_dir, map_size_bytes=1 << 30, sync=False, max_readers=16)
    try:
        store.write([ops])
    finally:
        store.close()


def _scan(data_dir: Path, db: str) -> list[tuple[bytes, bytes]]:
    store = Store(data_dir, map_size_bytes=1 << 30, sync=False, max_readers=16)
    try:
        return list(store.scan(db))
    finally:
        store.close()


async def test_inbox_marker_without_its_event(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _healthy_store(data_dir, clock)
    _write(data_dir, [("inbox_pending", be64(999), b"")])
    assert not verify(str(data_dir)).ok


async def test_open_lot_of_an_asset_with_no_balance(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    ids = await _healthy_store(data_dir, clock)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    stray = Lot(
        id="00000000-0000-8000-8000-000000000001",
        participant_id=ids["participant"],
        asset_id=ids["other"],
        program_id=ids["program"],
        number=1,
        amount_minor=100,
        remaining_minor=100,
        amount="100",
        remaining="100",
        status="AVAILABLE",
        created_at=moment,
        expires_at=None,
        matures_at=None,
        event_id=None,
    )
    key = f"{ids['participant']}{ids['other']}".encode() + be64(1)
    _write(data_dir, [("lots", key, encode(stray))])
    assert not verify(str(data_dir)).ok


async def test_open_expiring_lot_without_a_schedule_record(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _healthy_store(data_dir, clock)
    [(key, _)] = _scan(data_dir, "schedule")
    _write(data_dir, [("schedule", key, None)])
    assert not verify(str(data_dir)).ok


async def test_idempotency_record_naming_a_missing_event(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    ids = await _healthy_store(data_dir, clock)
    key = f"{ids['program']}\0other-key".encode()
    _write(data_dir, [("idempotency", key, be64(999))])
    assert not verify(str(data_dir)).ok


async def test_an_unprocessed_event_below_the_processed_below_mark(tmp_path: Path, clock: ManualClock) -> None:
    """An event with no outcome below the mark would never be found by the open's scan: verify must say so."""
    data_dir = tmp_path / "d"
    await _healthy_store(data_dir, clock)
    [(key, _)] = _scan(data_dir, "event_outcomes")
    [(_, mark)] = [(k, v) for k, v in _scan(data_dir, "meta") if k == PROCESSED_BELOW_KEY]
    assert unbe64(mark) > unbe64(key)  # the engine moved the mark past the event once it was processed
    _write(data_dir, [("event_outcomes", key, None)])  # its outcome lost: it looks unprocessed, but below the mark
    report = verify(str(data_dir))
    assert not report.ok
    assert any("below the processed-below mark" in problem for problem in report.problems), report.problems


async def test_an_operation_answer_naming_an_entry_that_does_not_exist(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    async with running(data_dir, clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        participant, _ = await engine.create_participant(ParticipantCreate(external_id="op"))
        credit = BalanceAdjust(
            program_id=program.id, asset_id=asset.id, type="CREDIT", amount="5", description="d", idempotency_key="k"
        )
        answer = await engine.adjust_balance(participant.id, credit)
        assert (await engine.verify()).ok
    [(key, raw)] = _scan(data_dir, "operation_keys")
    forged = raw.replace(answer.journal_entry_id.encode(), answer.journal_entry_id[:-4].encode() + b"ffff")
    _write(data_dir, [("operation_keys", key, forged)])
    report = verify(str(data_dir))
    assert not report.ok
    assert any("does not exist" in problem for problem in report.problems)


async def test_a_redemption_record_that_disagrees_with_the_journal(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    async with running(data_dir, clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        participant, _ = await engine.create_participant(ParticipantCreate(external_id="rd"))
        credit = BalanceAdjust(program_id=program.id, asset_id=asset.id, type="CREDIT", amount="9", description="d")
        await engine.adjust_balance(participant.id, credit)
        spend = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="4", description="a pen")
        redemption, _ = await engine.redemptions.create(participant.id, spend)
        await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="r", amount="1"))
        assert (await engine.verify()).ok
    [(key, raw)] = _scan(data_dir, "redemptions")
    _write(data_dir, [("redemptions", key, raw.replace(b'"reversed_minor":1', b'"reversed_minor":3'))])
    report = verify(str(data_dir))
    assert not report.ok
    assert any("the journal gave back 1" in problem for problem in report.problems)


async def test_state_history_entries_that_do_not_fit_the_store(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    async with running(data_dir, clock) as engine:
        participant = await engine.create_participant(ParticipantCreate(external_id="ann", tags=["new"]))
        assert (await engine.verify()).ok
    [(key, raw)] = _scan(data_dir, "state_history")
    change = decode_state_change(key, raw, SequenceIds(0))
    assert (change.participant_id, change.key, change.source) == (participant[0].id, "new", "api")
    for bad in (
        # past the last number the store issued
        [("state_history", state_history_key(change.participant_id, change.sequence + 1), raw)],
        [("state_history", state_history_key("nobody", change.sequence), raw)],  # a participant that does not exist
        [("state_history", key + b"x", raw)],  # under a key that is not one
        [("state_history", key, b"{}")],
        [("state_history", key, raw.replace(b'"new"', b'"old"'))],  # the newest entry says a tag it does not hold
    ):
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(data_dir, copy)
        _write(copy, bad)
        assert not verify(str(copy)).ok, bad
    assert verify(str(data_dir)).ok


async def test_a_tier_whose_newest_state_change_names_another_level(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    async with running(data_dir, clock) as engine:
        program, _ = await program_with_asset(engine)
        levels = [LevelSpec(key="silver", rank=1), LevelSpec(key="gold", rank=2)]
        await engine.tiers.create(program.id, TierCreate(key="status", levels=levels))
        [participant, _] = await engine.create_participant(ParticipantCreate(external_id="ann", program_id=program.id))
        await engine.tiers.set_state(participant.id, program.id, "status", TierStateSet(level="gold"))
        assert (await engine.verify()).ok
    [(key, raw)] = [(key, raw) for key, raw in _scan(data_dir, "state_history") if b'"tier"' in raw]
    assert b'"gold"' in raw
    _write(data_dir, [("state_history", key, raw.replace(b'"gold"', b'"silver"'))])  # the history says silver
    report = verify(str(data_dir))
    assert not report.ok
    assert any("tier 'status'" in problem for problem in report.problems), report.problems
