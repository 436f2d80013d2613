"""``string(timestamp)`` is RFC 3339: a four-digit, zero-padded year, and it parses back to the same instant."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.cel import compile_expression


def _string_of(value: dt.datetime) -> str:
    result = compile_expression("string(t)").evaluate({"t": value})
    assert isinstance(result, str)
    return result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0042-03-04T05:06:07Z", "0042-03-04T05:06:07Z"),
        ("0999-12-31T23:59:59.5Z", "0999-12-31T23:59:59.5Z"),
        ("0100-06-01T12:00:00+01:00", "0100-06-01T11:00:00Z"),
        ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_years_before_1000_are_zero_padded(text: str, expected: str) -> None:
    assert compile_expression(f"string(timestamp('{text}'))").evaluate({}) == expected


@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
def test_string_of_a_timestamp_round_trips(naive: dt.datetime) -> None:
    value = naive.replace(tzinfo=dt.UTC)
    text = _string_of(value)
    assert len(text.partition("-")[0]) == 4, text
    assert compile_expression("timestamp(s)").evaluate({"s": text}) == value
