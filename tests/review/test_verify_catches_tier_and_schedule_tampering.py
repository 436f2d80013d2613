"""verify checks tier definitions, the levels participants hold, and the durable schedule behind every deadline.

A healthy store (verify passes) has a LOT credit with an expiry and a level set by hand until a date, so both kinds
of schedule record exist. Each test breaks one thing with LMDB directly and expects verify to name it: a tier
whose deadline lost its schedule record would never be reviewed, and nobody would notice.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec

from scrip_actor.store import be64
from scrip_actor.tiers import LevelSpec, TierCreate, TierStateSet
from scrip_actor.verify import verify
from tests.conftest import ManualClock
from tests.review.conftest import running
from tests.review.test_verify_false_negatives import _healthy_store, _scan, _write


async def _store_with_a_tier(data_dir: Path, clock: ManualClock) -> dict[str, str]:
    ids = await _healthy_store(data_dir, clock)
    async with running(data_dir, clock) as engine:
        levels = [LevelSpec(key="silver", rank=1), LevelSpec(key="gold", rank=2)]
        await engine.tiers.create(ids["program"], TierCreate(key="status", levels=levels))
        until = clock() + timedelta(days=30)
        request = TierStateSet(level="gold", expires_at=until)
        await engine.tiers.set_state(ids["participant"], ids["program"], "status", request)
        assert (await engine.verify()).ok
    assert verify(str(data_dir)).ok
    return ids


def _problems(data_dir: Path) -> list[str]:
    report = verify(str(data_dir))
    assert not report.ok
    return report.problems


async def test_a_tier_deadline_without_its_schedule_record(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _store_with_a_tier(data_dir, clock)
    (tier_key,) = [key for key, _ in _scan(data_dir, "schedule") if b"tier/" in key]
    _write(data_dir, [("schedule", tier_key, None)])
    assert any("is not scheduled" in problem for problem in _problems(data_dir))


async def test_a_schedule_record_of_a_missing_participant(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _store_with_a_tier(data_dir, clock)
    _write(data_dir, [("schedule", be64(1) + b"some-lot-id", b"nobody")])
    assert any("'nobody' does not exist" in problem for problem in _problems(data_dir))


async def test_a_schedule_record_of_an_unknown_kind(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    ids = await _store_with_a_tier(data_dir, clock)
    _write(data_dir, [("schedule", be64(1) + b"coupon/x", ids["participant"].encode())])
    assert any("neither a lot nor a tier deadline" in problem for problem in _problems(data_dir))


async def test_a_level_the_tier_does_not_have(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    ids = await _store_with_a_tier(data_dir, clock)
    ((key, raw),) = _scan(data_dir, "tiers")
    definition = msgspec.json.decode(raw)
    definition["levels"] = [level for level in definition["levels"] if level["key"] != "gold"]
    _write(data_dir, [("tiers", key, msgspec.json.encode(definition))])
    problems = _problems(data_dir)
    assert any(ids["participant"] in problem and "'gold'" in problem for problem in problems), problems


async def test_a_malformed_definition(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _store_with_a_tier(data_dir, clock)
    ((key, raw),) = _scan(data_dir, "tiers")
    definition = msgspec.json.decode(raw)
    definition["levels"][1]["rank"] = 1  # two levels of rank 1
    _write(data_dir, [("tiers", key, msgspec.json.encode(definition)), ("tiers", b"elsewhere", raw)])
    problems = _problems(data_dir)
    assert any("not distinct" in problem for problem in problems), problems
    assert any("stored under the key b'elsewhere'" in problem for problem in problems), problems


async def test_a_holding_of_a_deleted_tier(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    await _store_with_a_tier(data_dir, clock)
    ((key, _),) = _scan(data_dir, "tiers")
    _write(data_dir, [("tiers", key, None)])
    assert any("no such tier definition" in problem for problem in _problems(data_dir))
