"""Counter reset windows (scrip_actor/counters.py): the window a moment falls in is anchored to the first, whole
microseconds apart, and a counter is 0 exactly from the first boundary after its value was stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.counters import effective, window_from
from scrip_actor.durations import format_duration, parse_duration

_START = datetime(2026, 1, 1, tzinfo=UTC)
lengths_us = st.integers(min_value=1, max_value=400 * 86_400 * 1_000_000)
offsets_us = st.integers(min_value=-(10**13), max_value=10**14)


@given(lengths_us, offsets_us)
def test_the_current_window_holds_the_moment_and_stays_on_the_grid(length_us: int, offset_us: int) -> None:
    window = window_from(timedelta(microseconds=length_us), _START)
    now = _START + timedelta(microseconds=offset_us)
    current = window.current(now)
    if offset_us < length_us:  # before the first boundary (or before the window began): unchanged
        assert current is window
        return
    start_us = (current.started_at - _START) // timedelta(microseconds=1)
    assert start_us % length_us == 0
    assert current.started_at <= now < current.started_at + timedelta(microseconds=length_us)
    assert current.current(now) is current  # idempotent


@given(lengths_us, st.integers(min_value=0, max_value=10**14), st.decimals(min_value=-1000, max_value=1000, places=2))
def test_the_value_is_zero_exactly_from_the_first_boundary(length_us: int, offset_us: int, value: Decimal) -> None:
    window = window_from(timedelta(microseconds=length_us), _START)
    seen, moved = effective(value, window, _START + timedelta(microseconds=offset_us))
    if offset_us < length_us:
        assert (seen, moved) == (value, window)
    else:
        assert seen == 0 and moved is not None and moved.started_at > _START


@given(st.integers(min_value=1, max_value=100 * 365 * 86_400 * 1_000_000))
def test_durations_print_as_they_parse(total_us: int) -> None:
    delta = timedelta(microseconds=total_us)
    assert parse_duration(format_duration(delta)) == delta


def test_durations_print_as_people_write_them() -> None:
    assert [format_duration(parse_duration(text)) for text in ("720h", "1h30m", "90s", "1.5s", "30d")] == [
        "720h",
        "1h30m",
        "1m30s",
        "1.5s",
        "720h",
    ]
