"""Each journal entry is indexed under the hour it was created in, whatever order moments come in.

The index prefix is remembered for the last hour seen (entries come in time order, so that is nearly always the
right one); moments on either side of an hour's edge, in the past, far apart or repeated must still land in their
own hour, since a period report reads exactly the hours its ``from`` and ``to`` cut through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor._records import journal_index_prefixes
from scrip_actor.model import JournalEntry
from scrip_actor.report_totals import hour_of, time_index_prefix

_START = datetime(2026, 3, 8, 6, 59, 59, 999_999, tzinfo=UTC)


def _entry(moment: datetime) -> JournalEntry:
    return JournalEntry(
        id="je", sequence=1, action_type="CREDIT", program_id="p", created_at=moment, postings=[], previous_hash=""
    )


def _time_prefix_of(moment: datetime) -> bytes:
    return journal_index_prefixes(_entry(moment))[0]


def test_the_edges_of_an_hour() -> None:
    before, edge = _START, _START + timedelta(microseconds=1)
    assert _time_prefix_of(before) == time_index_prefix(hour_of(before))
    assert _time_prefix_of(edge) == time_index_prefix(hour_of(before) + 1)
    assert _time_prefix_of(before) != _time_prefix_of(edge)  # back across the edge, after the later hour
    assert _time_prefix_of(datetime(1969, 12, 31, 23, 59, tzinfo=UTC)) == time_index_prefix(-1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(10**12), max_value=10**13), min_size=1, max_size=30))
def test_any_sequence_of_moments(offsets_us: list[int]) -> None:
    for offset in offsets_us:
        moment = _START + timedelta(microseconds=offset)
        assert _time_prefix_of(moment) == time_index_prefix(hour_of(moment))
