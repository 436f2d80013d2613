"""verify recomputes the reports' running totals (schema 9) and names each one that was tampered with.

Each test builds a healthy store with the engine (verify passes), changes one report record with LMDB directly, and
expects verify to fail naming that record: a report would otherwise answer wrong with no one the wiser.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from scrip_actor.verify import verify
from tests.conftest import ManualClock
from tests.review.conftest import running
from tests.review.test_verify_false_negatives import _healthy_store, _scan, _write


async def _tampered(tmp_path: Path, clock: ManualClock, db: str, change: str, prefix: bytes = b"") -> list[str]:
    data_dir = tmp_path / "d"
    await _healthy_store(data_dir, clock)
    assert verify(str(data_dir)).ok
    stored = [(key, raw) for key, raw in _scan(data_dir, db) if key.startswith(prefix)]
    assert stored, f"a healthy store has {db} records"
    key, raw = stored[-1]
    if change == "delete":
        _write(data_dir, [(db, key, None)])
    else:
        value = msgspec.json.decode(raw)
        value = [value[0] + 1, *value[1:]] if isinstance(value, list) else value + 1
        _write(data_dir, [(db, key, msgspec.json.encode(value))])
    report = verify(str(data_dir))
    assert not report.ok
    return report.problems


async def test_a_changed_hour_row(tmp_path: Path, clock: ManualClock) -> None:
    problems = await _tampered(tmp_path, clock, "report_hours", "change")
    assert any("report_hours" in problem for problem in problems), problems


async def test_a_lost_lot_expiry_cell(tmp_path: Path, clock: ManualClock) -> None:
    problems = await _tampered(tmp_path, clock, "report_expiry", "delete")
    assert any("report_expiry" in problem and "stored nothing" in problem for problem in problems), problems


async def test_a_changed_holder_count(tmp_path: Path, clock: ManualClock) -> None:
    problems = await _tampered(tmp_path, clock, "report_counts", "change", b"holders")
    assert any("report_counts" in problem for problem in problems), problems


async def test_an_event_missing_from_the_time_index(tmp_path: Path, clock: ManualClock) -> None:
    problems = await _tampered(tmp_path, clock, "events_by_time", "delete")
    assert any("events_by_time" in problem for problem in problems), problems


async def test_the_engine_reopens_with_the_totals_it_wrote(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    ids = await _healthy_store(data_dir, clock)
    async with running(data_dir, clock) as engine:
        (summary,) = [row for row in await engine.reports.ledger_summary() if row.asset_id == ids["asset"]]
        assert (summary.total_issued, summary.current_balance, summary.participant_count) == ("10", "10", 1)
        assert (await engine.verify()).ok
