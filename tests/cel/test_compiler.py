"""Unit tests for the CEL compiler: the behaviour loyalty rules rely on, and the safety limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from scrip_actor.cel import (
    CelCompileError,
    CelCostExceeded,
    CelError,
    CelEvaluationError,
    CelUint,
    compile_expression,
)

UTC = dt.UTC
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VARIABLES: dict[str, Any] = {
    "event": {
        "type": "purchase",
        "amount": 105.0,
        "count": 3,
        "sku": "SKU-123",
        "tags": ["new", "promo"],
        "at": dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        "meta": {"channel": "web"},
    },
    "participant": {"tier": "gold", "joined": dt.datetime(2020, 1, 1, tzinfo=UTC)},
    "now": NOW,
}


def evaluate(text: str, variables: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(VARIABLES if variables is None else variables)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("event.amount >= 100", True),
        ("event.amount == 105", True),
        ("100 < event.amount", True),
        ("event.count >= 3.0", True),
        ("event.amount * 10", 1050.0),
        ("event.amount + 1", 106.0),
        ("event.count * 2", 6),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("-7 % 3", -1),
        ("7.0 / 2.0", 3.5),
        ("event.type == 'purchase' && event.amount > 50.0", True),
        ("participant.tier in ['gold', 'platinum']", True),
        ("'promo' in event.tags", True),
        ("'channel' in event.meta", True),
        ("has(event.meta)", True),
        ("has(event.coupon)", False),
        ("event.coupon == 'X' || event.amount > 100", True),
        ("event.coupon == 'X' && event.amount > 1000", False),
        ("event.amount > 100 ? 'big' : 'small'", "big"),
        ("size(event.tags) == 2 && event.sku.size() == 7", True),
        ("event.sku.startsWith('SKU-') && event.sku.endsWith('23')", True),
        ("event.sku.contains('U-1')", True),
        ("event.sku.matches('^SKU-[0-9]+$')", True),
        ("get(event, 'coupon', 'none')", "none"),
        ("get(event.meta, 'channel', 'none')", "web"),
        ("round(2.675, 2)", 2.68),
        ("round(event.amount / 7.0, 1)", 15.0),
        ("sets.contains(event.tags, ['promo'])", True),
        ("sets.intersects(event.tags, ['x', 'new'])", True),
        ("sets.contains(event.tags, ['promo', 'x'])", False),
        ("now - event.at < duration('3h')", True),
        ("now() == now", True),
        ("event.at.getHours() == 9", True),
        ("event.at.getHours('America/Los_Angeles')", 2),
        ("event.at.getDayOfWeek()", 3),
        ("event.at.getHours('+05:30')", 15),
        ("timestamp('2024-05-01T12:00:00Z') == now", True),
        ("now - participant.joined > duration('8760h')", True),
        ("event.tags.all(t, size(t) > 2)", True),
        ("event.tags.exists_one(t, t == 'new')", True),
        ("event.tags.map(t, t + '!')", ["new!", "promo!"]),
        ("[1, 2, 3, 4].filter(x, x % 2 == 0)", [2, 4]),
        ("[1, 2, 3].map(x, x > 1, x * 10)", [20, 30]),
        ("true == 1", False),
        ("[true] == [1]", False),
        ("1 == 1.0 && 1u == 1", True),
        ("type(1u) == uint", True),
        ("uint(3)", CelUint(3)),
        ("string(1.5)", "1.5"),
        ("int('42') + 1", 43),
        ("double(3)", 3.0),
        ("b'abc' + b'd'", b"abcd"),
        ("{'a': 1, 'b': 2}['b']", 2),
        ("null == null", True),
    ],
)
def test_evaluates(text: str, expected: Any) -> None:
    result = evaluate(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "event.coupon",
        "event.coupon == 'X' && true",
        "9223372036854775807 + 1",
        "-9223372036854775808 - 1",
        "1 / 0",
        "1 % 0",
        "0u - 1u",
        "1 + 1u",
        "'a' < 1",
        "[1] < [2]",
        "true < 1",
        "undefined_variable",
        "[1, 2][2]",
        "[1, 2][-1]",
        "int(1e19)",
        "'abc'.matches(event.sku + '(')",
        "timestamp('9999-12-31T23:59:59Z') + duration('1s')",
        "!event.amount",
        "event.amount ? 1 : 2",
        "no_such_function(1)",
    ],
)
def test_evaluation_errors(text: str) -> None:
    with pytest.raises(CelEvaluationError):
        evaluate(text)


def test_error_absorption_is_commutative() -> None:
    assert evaluate("event.nope > 1 && false") is False
    assert evaluate("false && event.nope > 1") is False
    assert evaluate("event.nope > 1 || true") is True
    assert evaluate("true || event.nope > 1") is True
    with pytest.raises(CelEvaluationError):
        evaluate("event.nope > 1 || false")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [("event.amount >", 1, 15), ("a +\n  * b", 2, 3), ("x.matches('(')", 1, 1), ("size(1, 2)", 1, 1)],
)
def test_compile_errors_have_positions(text: str, line: int, column: int) -> None:
    with pytest.raises(CelCompileError) as caught:
        compile_expression(text)
    assert caught.value.line == line
    assert caught.value.column >= 1
    assert f"line {caught.value.line}, column {caught.value.column}" in str(caught.value)
    assert isinstance(caught.value, CelError)


def test_limits_refuse_hostile_expressions() -> None:
    with pytest.raises(CelCompileError):
        compile_expression("1 + " * 2000 + "1")
    with pytest.raises(CelCompileError):
        compile_expression("(" * 40 + "1" + ")" * 40)
    with pytest.raises(CelCompileError):
        compile_expression("[" * 40 + "]" * 40)
    compile_expression("(" * 32 + "1" + ")" * 32)
    hostile = compile_expression("l.all(a, l.all(b, l.all(c, true)))")
    with pytest.raises(CelCostExceeded, match="evaluation cost limit exceeded"):
        hostile.evaluate({"l": list(range(100))})
    nested: Any = []
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(CelEvaluationError):
        compile_expression("x == y").evaluate({"x": nested, "y": nested})


def test_text_and_inputs_untouched() -> None:
    expression = compile_expression("event.tags.map(t, t)")
    assert expression.text == "event.tags.map(t, t)"
    variables = {"event": {"tags": ["a"]}}
    expression.evaluate(variables)
    assert variables == {"event": {"tags": ["a"]}}
