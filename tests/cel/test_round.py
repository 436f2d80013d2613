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
