"""Journal lists: participant and rule filters are served from the index, program and asset filters from a
journal scan that looks at a bounded number of entries per call, so no query holds the loop for long however
big the journal; following the cursors still yields exactly the matching entries, newest first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from scrip_actor import CreditAction, Engine, EventSubmit, ValidationFailed
from scrip_actor.engine._queries import _JOURNAL_SCAN_MAX
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule


async def _all_pages(engine: Engine, **filters: Any) -> tuple[list[Any], int]:
    entries: list[Any] = []
    cursor, calls = None, 0
    while True:
        page = await engine.list_journal_entries(cursor=cursor, limit=200, **filters)
        calls += 1
        entries.extend(page.data)
        if not page.has_more:
            return entries, calls
        cursor = page.next_cursor


async def test_program_and_asset_filters_are_bounded_scans_that_still_find_everything(
    engine: Engine, clock: ManualClock
) -> None:
    program, asset = await program_with_asset(engine)
    other, other_asset = await program_with_asset(engine, symbol="OTH")
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    await rule(engine, other, "true", [CreditAction(asset_id=other_asset.id, amount="2")])
    count = _JOURNAL_SCAN_MAX + 200
    requests = [
        EventSubmit(program_id=program.id, external_id=f"u{n % 40}", idempotency_key=f"k{n}", event_data={})
        for n in range(count)
    ]
    requests += [
        EventSubmit(program_id=other.id, external_id="o", idempotency_key=f"o{n}", event_data={}) for n in range(3)
    ]
    assert not any(isinstance(result, Exception) for result in await engine.submit_batch(requests))
    await engine.wait_idle()

    started = time.perf_counter()
    first = await engine.list_journal_entries(program_id=other.id)
    assert time.perf_counter() - started < 0.5
    assert first.data == [] and first.has_more  # the 3 entries are older than the bound: go on from the cursor
    found, calls = await _all_pages(engine, program_id=other.id)
    assert [entry.program_id for entry in found] == [other.id] * 3
    assert calls >= 2
    by_asset, _ = await _all_pages(engine, asset_id=asset.id)
    assert len(by_asset) == count
    sequences = [entry.sequence for entry in by_asset]
    assert sequences == sorted(sequences, reverse=True)
    participant = by_asset[0].postings[1].entity_id
    mine, calls = await _all_pages(engine, participant_id=participant)
    assert len(mine) == count // 40 and calls == 1  # from the index: no scan bound in the way


async def test_a_foreign_journal_cursor_is_a_400(engine: Engine) -> None:
    with pytest.raises(ValidationFailed):
        await engine.list_journal_entries(cursor="bm90LWEtY3Vyc29y")


def test_the_bound_is_what_docs_limits_says(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "limits.md").read_text()
    assert "journal list work per call" in text
    assert f"{_JOURNAL_SCAN_MAX:,} candidate entries" in text
