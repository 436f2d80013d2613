"""Durations for expiry/vesting, and sequence-carrying ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.durations import parse_duration, parse_time_or_duration
from scrip_actor.ids import KIND_ENTRY, KIND_EVENT, SequenceIds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720h", timedelta(hours=720)),
        ("1h30m", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("30d", timedelta(days=30)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "10", "-1h", "0s", "1y", "1h 30m", "999999h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_duration(text)


def test_time_or_duration() -> None:
    assert parse_time_or_duration("24h") == timedelta(hours=24)
    assert parse_time_or_duration("2026-05-01T00:00:00Z") == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        parse_time_or_duration("2026-05-01T00:00:00")
    with pytest.raises(ValueError, match="neither"):
        parse_time_or_duration("tomorrow")


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=1, max_value=2**62 - 1))
def test_ids_carry_their_sequence(prefix: int, sequence: int) -> None:
    ids = SequenceIds(prefix)
    event_id = ids.make(KIND_EVENT, sequence)
    assert ids.sequence(KIND_EVENT, event_id) == sequence
    assert ids.sequence(KIND_ENTRY, event_id) is None
    assert SequenceIds(prefix ^ (1 << 40)).sequence(KIND_EVENT, event_id) is None


def test_ids_sort_by_sequence_and_refuse_garbage() -> None:
    ids = SequenceIds(12345)
    assert [ids.make(KIND_EVENT, n) for n in (1, 2, 10, 300)] == sorted(
        ids.make(KIND_EVENT, n) for n in (1, 2, 10, 300)
    )
    for garbage in ("", "x" * 36, "00000000-0000-0000-0000-000000000000", ids.make(KIND_EVENT, 5).upper() + "0"):
        assert ids.sequence(KIND_EVENT, garbage) is None
