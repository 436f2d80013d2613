"""Decimal strings at the edges, integer minor units inside."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.amounts import AMOUNT_MINOR_MAX, format_minor, from_number, is_decimal_literal, parse_decimal, to_minor
from scrip_actor.errors import InvalidScale, ValidationFailed


@pytest.mark.parametrize(
    ("text", "scale", "minor"),
    [("10", 2, 1000), ("10.5", 2, 1050), ("0.01", 2, 1), ("7", 0, 7), ("1.000000000000000001", 18, 10**18 + 1)],
)
def test_to_minor(text: str, scale: int, minor: int) -> None:
    assert to_minor(parse_decimal(text), scale) == minor


def test_too_many_decimals_is_invalid_scale() -> None:
    with pytest.raises(InvalidScale):
        to_minor(Decimal("1.001"), 2)
    with pytest.raises(InvalidScale):
        to_minor(Decimal("0.5"), 0)


def test_trailing_zeros_do_not_count_as_decimals() -> None:
    assert to_minor(Decimal("1.500"), 1) == 15


def test_bounds() -> None:
    assert to_minor(Decimal(AMOUNT_MINOR_MAX), 0) == AMOUNT_MINOR_MAX
    with pytest.raises(ValidationFailed):
        to_minor(Decimal(AMOUNT_MINOR_MAX + 1), 0)
    with pytest.raises(ValidationFailed):
        to_minor(Decimal("1e18"), 18)  # 10**36 minor units: one past the bound


@pytest.mark.parametrize(
    "text", ["", "abc", "1e5", "NaN", "Infinity", "1.2.3", " ", "--1", "0x10", " 1", "1 ", "\uff11", "\u0661", "1_000"]
)
def test_parse_refuses_non_decimals(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_decimal(text)


def test_literal_detection() -> None:
    assert is_decimal_literal("10")
    assert is_decimal_literal("2.50")
    assert is_decimal_literal("-3")
    assert not is_decimal_literal("event.amount")
    assert not is_decimal_literal("1e3")


def test_from_number_reads_doubles_by_their_shortest_repr() -> None:
    assert from_number(10.5) == Decimal("10.5")
    assert from_number(0.1 * 3) == Decimal("0.30000000000000004")
    assert from_number(7) == Decimal(7)
    for bad in (float("nan"), float("inf"), True, None, [1]):
        with pytest.raises(ValidationFailed):
            from_number(bad)


@pytest.mark.parametrize(
    ("minor", "scale", "text"), [(1000, 2, "10.00"), (-5, 2, "-0.05"), (0, 3, "0.000"), (42, 0, "42")]
)
def test_format(minor: int, scale: int, text: str) -> None:
    assert format_minor(minor, scale) == text


@given(st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX), st.integers(min_value=0, max_value=18))
def test_format_then_parse_round_trips(minor: int, scale: int) -> None:
    assert to_minor(parse_decimal(format_minor(minor, scale)), scale) == minor


def test_counters_never_store_negative_zero() -> None:
    from scrip_actor.amounts import add_counter, check_counter

    assert str(check_counter(Decimal("-0"))) == "0"
    assert str(add_counter(Decimal("1.5"), Decimal("-1.5"))) == "0.0"


@given(
    value=st.floats(min_value=1e-30, max_value=1e40, allow_nan=False, allow_infinity=False)
    | st.decimals(min_value=0, max_value=10**12, places=4).map(float),
    scale=st.integers(min_value=0, max_value=18),
    cap=st.none() | st.sampled_from(["1", "100", "12345.678"]),
)
def test_the_fast_path_of_a_cel_amount_agrees_with_the_exact_one(value: float, scale: int, cap: str | None) -> None:
    """A double amount read from its repr as integers gives the very minor units the Decimal path gives, or
    declines (None) and leaves the case to the exact path: it never gives a different answer."""
    from datetime import UTC, datetime

    from hypothesis import assume

    from scrip_actor.errors import ScripError
    from scrip_actor.model import Asset
    from scrip_actor.rules import _check_amount, _plain_positive_minor

    # An asset's cap is held to its scale when the asset is made (a cap of 12345.678 needs scale >= 3).
    assume(cap is None or len(cap.partition(".")[2]) <= scale)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    asset = Asset(
        id="a", name="A", symbol="A", inventory_mode="SIMPLE", issuance_policy="UNLIMITED", scale=scale,
        max_transaction_amount=cap,
        created_at=moment, updated_at=moment,
    )  # fmt: skip
    fast = _plain_positive_minor(value, asset)
    try:
        exact: int | None = _check_amount(from_number(value), asset, "amount")
    except ScripError:
        exact = None
    if fast is not None:
        assert fast == exact
    if scale == 2 and cap is None:
        assert _plain_positive_minor(2.23, asset) == 223  # the common case does take the fast path
        assert _plain_positive_minor(0.1 * 3, asset) is None  # 0.30000000000000004: the exact path refuses it
