"""Filtered event lists are served from indexes (external id, matched rule, FAILED) or from memory (PENDING,
PROCESSING), and any other filter looks at a bounded number of events per call, so no query's cost grows with
the store. (A store written before the indexes existed gets them on open: tests/integration/test_store_migrations.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lmdb

from scrip_actor import CreditAction, DebitAction, Engine, EventSubmit, open_engine, verify
from scrip_actor.engine import _EVENT_SCAN_MAX
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule


async def _submit(engine: Engine, program_id: str, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    requests = [
        EventSubmit(program_id=program_id, external_id=who, idempotency_key=f"k{n}", event_data=data)
        for n, (who, data) in enumerate(items)
    ]
    results = await engine.submit_batch(requests)
    assert all(not isinstance(result, Exception) for result in results)
    await engine.wait_idle()
    return results


async def _all_pages(engine: Engine, **filters: Any) -> tuple[list[Any], int]:
    """Every event a filter gives, following cursors; and how many calls it took."""
    events: list[Any] = []
    cursor, calls = None, 0
    while True:
        page = await engine.list_events(cursor=cursor, **filters)
        calls += 1
        events.extend(page.data)
        if not page.has_more:
            return events, calls
        cursor = page.next_cursor
        assert cursor is not None


async def test_filters_give_exactly_the_matching_events_newest_first(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    big = await rule(engine, program, "event.amount >= 100", [CreditAction(asset_id=asset.id, amount="1")])
    broken = await rule(  # more than anyone has: the events it matches FAIL
        engine, program, "event.amount == 7", [DebitAction(asset_id=asset.id, amount="1000")], order=20
    )
    items = [(f"user{n % 7}", {"amount": [5, 7, 150][n % 3]}) for n in range(120)]
    results = await _submit(engine, program.id, items)
    by_sequence = {result.sequence: items[n] for n, result in enumerate(results)}

    for who in ("user3", "nobody"):
        events, _ = await _all_pages(engine, external_id=who, limit=7)
        expected = sorted((s for s, (w, _) in by_sequence.items() if w == who), reverse=True)
        assert [e.sequence for e in events] == expected
    matched, _ = await _all_pages(engine, rule_id=big.id, limit=9)
    assert [e.sequence for e in matched] == sorted(
        (s for s, (_, d) in by_sequence.items() if d["amount"] >= 100), reverse=True
    )
    failed, _ = await _all_pages(engine, status="FAILED", limit=11)
    assert [e.sequence for e in failed] == sorted(
        (s for s, (_, d) in by_sequence.items() if d["amount"] == 7), reverse=True
    )
    assert all(e.status == "FAILED" for e in failed)
    both, _ = await _all_pages(engine, external_id="user1", rule_id=broken.id)
    assert {e.sequence for e in both} == {s for s, (w, d) in by_sequence.items() if w == "user1" and d["amount"] == 7}


async def test_a_retried_event_leaves_the_failed_index(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "event.kind == 'spend'", [DebitAction(asset_id=asset.id, amount="5")])
    await rule(engine, program, "event.kind == 'earn'", [CreditAction(asset_id=asset.id, amount="10")], order=20)
    [result] = await _submit(engine, program.id, [("u", {"kind": "spend"})])
    assert [e.id for e in (await engine.list_events(status="FAILED")).data] == [result.id]
    await engine.submit(
        EventSubmit(program_id=program.id, external_id="u", idempotency_key="earn", event_data={"kind": "earn"})
    )
    await engine.wait_idle()
    await engine.retry_event(result.id)
    await engine.wait_idle()
    assert (await engine.list_events(status="FAILED")).data == []
    assert result.id in [e.id for e in (await engine.list_events(status="COMPLETED")).data]


async def test_an_unindexed_filter_looks_at_a_bounded_number_of_events_per_call(engine: Engine) -> None:
    program, _ = await program_with_asset(engine)
    count = _EVENT_SCAN_MAX * 2 + 10
    await _submit(engine, program.id, [(f"u{n % 50}", {}) for n in range(count)])
    started = time.perf_counter()
    page = await engine.list_events(program_id="no-such-program")
    elapsed_s = time.perf_counter() - started
    assert page.data == []
    assert page.has_more  # the call stopped at its bound and says where to go on from
    assert elapsed_s < 0.5
    events, calls = await _all_pages(engine, program_id="no-such-program")
    assert events == []
    assert calls == 3
    everything, _ = await _all_pages(engine, program_id=program.id, limit=200)
    assert len(everything) == count


async def test_verify_finds_an_event_missing_from_its_indexes(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [DebitAction(asset_id=asset.id, amount="5")])
        [result] = await _submit(engine, program.id, [("u", {})])
        assert (await engine.verify()).ok
    env = lmdb.open(str(tmp_path / "data" / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        for name in (b"events_by_external", b"events_failed"):
            db = env.open_db(name, txn=txn)
            txn.drop(db, delete=False)  # empty it, keep it
    env.close()
    report = verify(str(tmp_path / "data"), config)
    assert not report.ok
    assert any("external-id index" in problem for problem in report.problems)
    assert any("FAILED index" in problem and result.id in problem for problem in report.problems)
