"""Integer literals read as CEL reads them, and duration strings parsed exactly (no float rounding).

CEL's grammar is ``INT_LIT ::= -? DIGIT+ | -? 0x HEXDIGIT+`` and cel-go parses the digits in base 10,
so a leading zero is not octal: ``010`` is ten. Durations follow Go's ``time.ParseDuration`` syntax,
kept to microseconds (sub-microsecond digits truncate toward zero).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.cel import CelCompileError, CelError, CelEvaluationError, CelUint, compile_expression
from tests.http import conftest as http_fixtures
from tests.http.conftest import Api

api = http_fixtures.api  # the real server on loopback, shared with tests/http


def _run(expression: str, **variables: object) -> object:
    return compile_expression(expression).evaluate(variables)


#: Compiled once at import: the property tests below then time only parsing durations, not building the parser.
_DURATION_OF = compile_expression("duration(s)")


def _duration_of(text: str) -> object:
    return _DURATION_OF.evaluate({"s": text})


# -- integer literals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("010", 10),
        ("04", 4),
        ("00", 0),
        ("-010", -10),
        ("010 == 10", True),
        ("010u", CelUint(10)),
        ("0x10", 16),
        ("-0x10", -16),
        ("0x10u", CelUint(16)),
        ("09223372036854775807", 9223372036854775807),
        ("-09223372036854775808", -9223372036854775808),
    ],
)
def test_zero_padded_integer_literals_are_decimal(expression: str, expected: object) -> None:
    result = _run(expression)
    assert type(result) is type(expected) and result == expected


@given(st.from_regex(r"\A0[0-9]{1,18}\Z"))
def test_any_zero_padded_int_literal_is_its_decimal_value(text: str) -> None:
    assert _run(text) == int(text, 10)
    assert _run(text + "u") == CelUint(int(text, 10))


def test_out_of_range_padded_literals_are_compile_errors() -> None:
    with pytest.raises(CelCompileError, match="out of range"):
        compile_expression("09223372036854775808")
    with pytest.raises(CelCompileError, match="out of range"):
        compile_expression("018446744073709551616u")


@given(st.text(alphabet="0123456789xXuUaAfF-+.eE ()", min_size=1, max_size=24))
def test_numeric_looking_text_fails_only_with_cel_errors(text: str) -> None:
    """No raw ValueError / OverflowError: a bad literal is a compile error (a 400), never a crash."""
    with contextlib.suppress(CelError):
        _run(text)


# -- durations ----------------------------------------------------------------------------------

_UNIT_NANOS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 10**9, "ms": 10**6, "us": 1000, "µs": 1000, "ns": 1}


def _decimal_duration(text: str, parts: list[tuple[str, str]]) -> dt.timedelta:
    """The reference: each part's decimal number times its unit, exactly, truncated to microseconds."""
    with decimal.localcontext(prec=200):
        total_nanos = sum(decimal.Decimal(number) * _UNIT_NANOS[unit] for number, unit in parts)
        micros = int((total_nanos / 1000).to_integral_value(rounding=decimal.ROUND_DOWN))
    return dt.timedelta(microseconds=-micros if text.startswith("-") else micros)


_number = st.tuples(st.text("0123456789", max_size=5), st.text("0123456789", max_size=12)).filter(
    lambda whole_fraction: any(whole_fraction)
)
_part = st.tuples(_number, st.sampled_from(sorted(_UNIT_NANOS)), st.booleans())


@given(st.sampled_from(["", "-", "+"]), st.lists(_part, min_size=1, max_size=4))
def test_fractional_durations_equal_exact_decimal_arithmetic(
    sign: str, raw_parts: list[tuple[tuple[str, str], str, bool]]
) -> None:
    parts = [
        (whole + ("." + fraction if fraction or with_point else ""), unit)
        for (whole, fraction), unit, with_point in raw_parts
    ]
    text = sign + "".join(number + unit for number, unit in parts)
    assert _duration_of(text) == _decimal_duration(text, parts), text


@given(st.integers(0, 10**15), st.sampled_from([("s", 6), ("ms", 3), ("us", 0)]), st.sampled_from(["", "-"]))
def test_whole_microseconds_written_as_fractions_parse_exactly(
    micros: int, unit_places: tuple[str, int], sign: str
) -> None:
    """``micros`` written as a decimal number of seconds / milliseconds is exactly that many microseconds."""
    unit, places = unit_places
    number = format(decimal.Decimal(micros).scaleb(-places), "f")
    expected = dt.timedelta(microseconds=-micros if sign else micros)
    assert _duration_of(f"{sign}{number}{unit}") == expected, number + unit


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("4.1s", "4100ms"),
        ("0.3s", "300ms"),
        ("1.1h", "66m"),
        ("2.3m", "138s"),
        ("0.000001s", "1us"),
        ("1.5ms", "1500us"),
        ("-4.1s", "-4100ms"),
        ("1h0.5m4.1s", "3634100ms"),
        ("1500.9ns", "1us"),
        (".5s", "500ms"),
        ("1.s", "1s"),
        ("1μs", "1us"),
    ],
)
def test_decimal_fractions_are_exact(left: str, right: str) -> None:
    assert _run(f"duration('{left}') == duration('{right}')") is True
    assert _run("duration(a) == duration(b)", a=left, b=right) is True


@pytest.mark.parametrize("text", ["", "-", ".s", "1", "1x", "1.5.5s", "٣s", "s", "1h-1m", "1" * 300 + "s"])
def test_malformed_durations_are_evaluation_errors(text: str) -> None:
    with pytest.raises(CelEvaluationError):
        _duration_of(text)


def test_duration_range_is_checked_exactly() -> None:
    assert _run("duration('315576000000s')") == dt.timedelta(seconds=315_576_000_000)
    assert _run("duration('315576000000.000000999s')") == dt.timedelta(seconds=315_576_000_000)
    with pytest.raises(CelEvaluationError, match="out of range"):
        _run("duration(s)", s="315576000000.000001s")


# -- through the HTTP API -----------------------------------------------------------------------


async def test_rule_conditions_with_padded_literals_validate_over_http(api: Api) -> None:
    """A condition with ``010`` used to escape as a raw ValueError (a 500); now it is valid CEL."""
    checked = await api.ok(
        "POST", "/v1/rules/validate", json={"condition": "010 == 10 && duration('4.1s') > duration('4s')"}
    )
    assert checked["valid"] is True, checked
    invalid = await api.ok("POST", "/v1/rules/validate", json={"condition": "09223372036854775808 > 1"})
    assert invalid["valid"] is False and invalid["details"]["fields"][0]["reason"] == "invalid_cel", invalid
