"""``round(x, places)``: the fast digit path agrees with exact decimal rounding, halves away from zero."""

from __future__ import annotations

import decimal
import math

from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.cel._functions import round_half_up


def _exact(value: float, places: int) -> float:
    quantum = decimal.Decimal(1).scaleb(-places)
    with decimal.localcontext(prec=60):
        return float(decimal.Decimal(repr(value)).quantize(quantum, rounding=decimal.ROUND_HALF_UP))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15), st.integers(0, 20))
def test_fast_path_equals_exact_decimal_rounding(value: float, places: int) -> None:
    got = round_half_up(value, places)
    want = _exact(value, places)
    assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), (value, places, got, want)


def test_halves_go_away_from_zero_as_written() -> None:
    assert round_half_up(2.675, 2) == 2.68  # the double is 2.67499999..., the written number is 2.675
    assert round_half_up(-2.675, 2) == -2.68
    assert round_half_up(5.25, 2) == 5.25  # already short: returned as it is
    assert round_half_up(0.5, 0) == 1.0
    assert round_half_up(-0.5, 0) == -1.0
    assert round_half_up(1.005, 2) == 1.01
    assert round_half_up(30.37 * 0.01, 2) == 0.3
    assert math.copysign(1.0, round_half_up(-0.001, 2)) == -1.0  # -0.00, as Decimal gives
    assert round_half_up(1234.5, -1) == 1230.0
    assert round_half_up(1e-07, 2) == 0.0


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(-20, 20))
def test_every_finite_double_rounds_without_error(value: float, places: int) -> None:
    """The whole double range, up to 1.8e308 (a 60-digit Decimal context failed from about 1e58)."""
    got = round_half_up(value, places)
    with decimal.localcontext(prec=400):
        want = float(decimal.Decimal(repr(value)).quantize(decimal.Decimal(1).scaleb(-places), decimal.ROUND_HALF_UP))
    assert got == want, (value, places, got, want)


def test_huge_and_non_finite_doubles() -> None:
    assert round_half_up(1e59, 2) == 1e59
    assert round_half_up(1.7e308, 20) == 1.7e308
    assert round_half_up(-1.7976931348623157e308, -20) == -1.7976931348623157e308
    assert round_half_up(1.2345678901234567e24, -20) == 1.2346e24
    assert round_half_up(math.inf, 2) == math.inf  # inf and nan pass through, as cel-go's math.round does
    assert round_half_up(-math.inf, -3) == -math.inf
    assert math.isnan(round_half_up(math.nan, 2))
