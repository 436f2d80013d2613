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


async def test_non_text_keys_in_event_data_are_a_validation_error(tmp_path: Path, clock: ManualClock) -> None:
    """Only the embedded API can pass ``{1: "x"}`` (JSON keys are text); it is refused as bad input, not a crash."""
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        for data in ({1: "x"}, {"nested": {2: 3}}):
            results = await engine.submit_batch(
                [EventSubmit(program_id=program.id, external_id="u", idempotency_key="k", event_data=data)]
            )
            [result] = results
            assert isinstance(result, ScripError)
            assert result.code == "bad_request"  # ValidationFailed: the code every field error has
            assert "keys must be strings" in result.message
        assert engine.statistics().events_accepted == 0
