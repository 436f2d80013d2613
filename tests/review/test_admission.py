"""Admission: every bad input is a ScripError for that item; a batch is judged item by item."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from scrip_actor import EventSubmit, ScripError
from tests.conftest import ManualClock
from tests.helpers import program_with_asset
from tests.review.conftest import running


async def test_out_of_range_timestamp_is_one_bad_item_of_a_batch(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        plus_one = timezone(timedelta(hours=1))

        def item(key: str, at: datetime | None = None) -> EventSubmit:
            return EventSubmit(
                program_id=program.id, external_id="u", idempotency_key=key, event_data={}, event_timestamp=at
            )

        results = await engine.submit_batch(
            [item("ok-1"), item("bad", datetime(1, 1, 1, 0, 30, tzinfo=plus_one)), item("ok-2")]
        )
        assert [isinstance(r, ScripError) for r in results] == [False, True, False]
