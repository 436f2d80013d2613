"""CEL round(x, places): the fast path agrees with the exact decimal path everywhere."""

from __future__ import annotations

import decimal

from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.cel._functions import round_half_up


def _exact(value: float, places: int) -> float:
    quantum = decimal.Decimal(1).scaleb(-places)
    with decimal.localcontext(prec=60):
        return float(decimal.Decimal(repr(value)).quantize(quantum, rounding=decimal.ROUND_HALF_UP))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15), st.integers(0, 8))
def test_fast_path_equals_exact_rounding(value: float, places: int) -> None:
    assert round_half_up(value, places) == _exact(value, places)


def test_half_up_on_the_decimal_reading() -> None:
    assert round_half_up(2.675, 2) == 2.68
    assert round_half_up(5.25, 2) == 5.25
    assert round_half_up(-0.5, 0) == -1.0
