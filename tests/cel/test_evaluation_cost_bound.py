"""CEL evaluation is bounded by work, not iterations: one cost budget per event, shared by every expression.

A short condition over a large event (nested comprehensions concatenating strings, exponential doubling, regular
expressions over big texts) used to run for minutes under a per-expression iteration cap; now each one stops with
`CelCostExceeded` in milliseconds, and ordinary conditions neither fail nor pay for it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.cel import COST_KEY, CelCostExceeded, CelEvaluationError, CostBudget, compile_expression
from scrip_actor.config import Limits

UTC = dt.UTC
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BUDGET_UNITS = Limits().cel_cost_per_event_max
#: Far above the few ms the budget allows, far below the minutes these conditions took without it.
WALL_BOUND_S = 0.05

TEXT = "ab" * 30_000  # 60 KB, as large as event data may be
EVENT: dict[str, Any] = {
    "s": TEXT,
    "t": "ab" * 30_000,  # equal to s, but another object: comparing them reads every character
    "s256": "ab" * 120,
    "l": [float(i) for i in range(20_000)],
    "sl": [str(i) for i in range(8_000)],
    "nested": [[float(i) for i in range(10_000)]],
    "nested2": [[float(i) for i in range(10_000)]],
    "digits": "1" * 60_000,
    "d": "1h" * 100,
    "ts": "2024-05-01T12:00:00.123456+02:00",
    "m": {"a": 1.0},
}

HOSTILE = {
    "nested comprehensions concatenating": "[1,2,3].map(a, [1,2,3].map(b, event.s + event.s + event.s)).size() > 0",
    "exponential doubling": "[event.s]" + ".map(a, a + a)" * 20 + ".size() == 1",
    "doubling a list": "[event.l]" + ".map(a, a + a)" * 20 + ".size() == 1",
    "three nested ranges": "event.l.map(a, event.l.map(b, event.l.map(c, a))).size() > 0",
    "range over a literal nesting ranges": "[1,2,3].map(x, event.l.map(y, event.l.map(z, y))).size() > 0",
    "quantifiers nested": "event.l.all(a, event.l.all(b, true))",
    "huge list building": "event.l.map(x, event.l + event.l).size() > 0",
    "matches over a big text": "event.l.exists(x, event.s.matches('(a|b|c)*x$'))",
    "matches over a short text": "event.l.exists(x, event.s256.matches('(a|b)*c(d|e)*f(g|h)+[a-z]{3,9}x$'))",
    "contains of a built text": "event.l.exists(x, event.s.contains(event.t + 'x'))",
    "deep equality": "event.l.exists(x, event.nested == event.nested2 && false)",
    "membership of big texts": "event.l.exists(x, event.s in [event.t, event.t, 'x'] && false)",
    "membership in a list": "event.sl.exists(x, x in event.sl && false)",
    "sets over every pair": "sets.intersects(event.l, event.l.map(x, -x - 1.0))",
    "many scans of a big text": " || ".join(f"event.s.contains('zz{i}')" for i in range(120)),
    "conversion of a big text": "event.l.exists(x, int(event.digits) == 1)",
    "ordering of big texts": "event.l.exists(x, event.s < event.t)",
    "absorbed errors": "event.l.exists(x, x.foo)",
    "absorbed errors in ||": "event.l.exists(x, event.m[string(x)] == 1.0 || event.m.b == 1.0)",
    "duration parsing": "event.l.exists(x, duration(event.d) < duration('1s'))",
    "time zones": "event.l.exists(x, timestamp(event.ts).getHours('America/New_York') == 99)",
    "rounding": "event.l.exists(x, round(x * 1.0001, 3) < 0.0)",
    "filter inside map": "event.l.map(x, event.l.filter(y, y > x)).size() > 0",
}


def _variables(budget: CostBudget | None = None) -> dict[Any, Any]:
    variables: dict[Any, Any] = {"event": EVENT, "now": NOW}
    if budget is not None:
        variables[COST_KEY] = budget
    return variables


def _fastest_stop_s(text: str, budget: CostBudget | None) -> float:
    """Seconds until `text` stops with CelCostExceeded: the fastest of 3 tries (a shared machine can stall one)."""
    expression = compile_expression(text)
    times_s = []
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(CelCostExceeded, match="evaluation cost limit exceeded"):
            expression.evaluate(_variables(budget and CostBudget(budget.units_max)))
        times_s.append(time.perf_counter() - started)
    return min(times_s)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_condition_stops_within_milliseconds(text: str) -> None:
    elapsed_s = _fastest_stop_s(text, CostBudget(BUDGET_UNITS))
    assert elapsed_s < WALL_BOUND_S, f"{elapsed_s * 1e3:.1f} ms"
    budget = CostBudget(BUDGET_UNITS)
    with pytest.raises(CelCostExceeded):
        compile_expression(text).evaluate(_variables(budget))
    assert budget.units_remaining < 0


@pytest.mark.parametrize("text", list(HOSTILE.values())[:4], ids=list(HOSTILE.keys())[:4])
def test_without_a_budget_an_evaluation_gets_its_own(text: str) -> None:
    assert _fastest_stop_s(text, None) < WALL_BOUND_S


def test_exceeding_is_an_evaluation_error_that_logic_does_not_absorb() -> None:
    hostile = HOSTILE["quantifiers nested"]
    for text in (f"{hostile} || true", f"{hostile} && false", f"[1].exists(x, {hostile}) || true"):
        with pytest.raises(CelCostExceeded) as caught:
            compile_expression(text).evaluate(_variables(CostBudget(BUDGET_UNITS)))
        assert isinstance(caught.value, CelEvaluationError)
    # Ordinary errors are still absorbed as CEL requires.
    assert compile_expression("event.missing || true").evaluate(_variables(CostBudget(BUDGET_UNITS))) is True
    # And an operand never evaluated never costs anything.
    assert compile_expression(f"true || {hostile}").evaluate(_variables(CostBudget(BUDGET_UNITS))) is True


def test_the_budget_is_shared_by_every_expression_of_the_event() -> None:
    spend = compile_expression("event.l.map(x, x).size() > 0")  # 20,001 iterations of weight 2: ~40,000 units
    budget = CostBudget(100_000)
    variables = _variables(budget)
    assert spend.evaluate(variables) is True
    assert spend.evaluate(variables) is True
    with pytest.raises(CelCostExceeded):
        spend.evaluate(variables)
    # An exhausted budget stays exhausted for costed work, while plain comparisons still evaluate.
    with pytest.raises(CelCostExceeded):
        compile_expression("[1, 2].map(x, x).size() == 2").evaluate(variables)
    assert compile_expression("event.m.a == 1.0 && event.s256.startsWith('ab')").evaluate(variables) is True


ORDINARY = {
    "event.type == 'purchase' && event.amount >= 100.0": True,
    "participant.tier in ['gold', 'platinum'] || event.amount > 1000.0": True,
    "event.sku.startsWith('SKU-') && event.sku.contains('10') && event.sku.matches('^SKU-[0-9]+$')": True,
    "has(event.coupon) ? event.coupon.size() > 2 : false": True,
    "event.items.exists(i, i.price * i.qty > 100.0)": True,
    "event.items.all(i, i.sku.startsWith('A')) && event.items.map(i, i.qty).size() == 3": True,
    "size(participant.tags.filter(t, t.endsWith('vip'))) == 1": True,
    "timestamp(event.at) > now - duration('24h') && event.at.size() > 10": True,
    "string(event.amount) + '-' + event.type == '120-purchase'": True,
    "int(event.count) + 1 == 4 && double(event.count) == 3.0": True,
    "sets.intersects(participant.tags, ['gold-vip', 'x'])": True,
    "event.items == event.items && event.items[0].sku < event.items[1].sku": True,
}
ORDINARY_VARIABLES: dict[Any, Any] = {
    "event": {
        "type": "purchase",
        "amount": 120.0,
        "sku": "SKU-1001",
        "coupon": "SAVE10",
        "count": "3",
        "at": "2024-05-01T09:30:00Z",
        "items": [{"sku": f"A{i}", "price": 50.0 * i, "qty": float(i)} for i in range(1, 4)],
    },
    "participant": {"tier": "gold", "tags": ["gold-vip", "new", "eu"]},
    "now": NOW,
}


@pytest.mark.parametrize("text", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_conditions_are_unaffected(text: str) -> None:
    budget = CostBudget(BUDGET_UNITS)
    assert compile_expression(text).evaluate({**ORDINARY_VARIABLES, COST_KEY: budget}) is ORDINARY[text]
    assert budget.units_used < 500, budget  # a thousand such rules fit in one event's budget... in units, 40 of them
    assert compile_expression(text).evaluate(ORDINARY_VARIABLES) is ORDINARY[text]  # no budget passed: its own


def test_plain_comparisons_charge_nothing() -> None:
    budget = CostBudget(1)
    for text in [
        "event.type == 'purchase' && event.amount >= 100.0",
        "participant.tier in ['gold', 'platinum'] || event.amount > 1000.0",
        "event.sku.startsWith('SKU-') && event.sku.contains('10') && !has(event.gift)",
        "has(event.coupon) ? event.coupon.size() > 2 : false",
        "event.amount * 2.0 - 1.0 > 3.0 && now > timestamp('2024-01-01T00:00:00Z')",
    ]:
        assert compile_expression(text).evaluate({**ORDINARY_VARIABLES, COST_KEY: budget}) is True
    assert budget.units_used == 0


def test_a_quantifier_that_decides_early_pays_for_what_it_visited() -> None:
    # 20,000 elements of weight 4 would be 80,000 units up front; the first element decides, so it fits.
    budget = CostBudget(BUDGET_UNITS)
    assert compile_expression("event.l.exists(x, x == 0.0)").evaluate(_variables(budget)) is True
    assert budget.units_used < 100, budget
    # Prepaid, then refunded: a range that fits is charged only for the elements visited.
    roomy = CostBudget(10**6)
    assert compile_expression("event.l.exists(x, x == 10.0)").evaluate(_variables(roomy)) is True
    assert roomy.units_used < 100, roomy
    # And one that must visit everything still runs out.
    with pytest.raises(CelCostExceeded):
        compile_expression("event.l.all(x, x >= 0.0)").evaluate(_variables(CostBudget(BUDGET_UNITS)))


def test_large_expressions_pay_for_their_size() -> None:
    small = compile_expression(" && ".join(["event.m.a == 1.0"] * 5))
    large = compile_expression(" && ".join(["event.m.a == 1.0"] * 100))
    budget = CostBudget(BUDGET_UNITS)
    assert small.evaluate(_variables(budget)) is True
    assert budget.units_used == 0
    assert large.evaluate(_variables(budget)) is True
    assert budget.units_used >= 300, budget


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(max_size=40), max_size=60),
    st.sampled_from(
        [
            "l.map(x, x + x).size() == size(l)",
            "l.filter(x, x.contains('a')).size() <= size(l)",
            "l.exists(x, x == 'a') == ('a' in l)",
            "l.all(x, x + '' == x)",
            "(l + l).size() == 2 * size(l)",
        ]
    ),
)
def test_results_do_not_depend_on_the_budget_while_it_lasts(items: list[str], text: str) -> None:
    expression = compile_expression(text)
    roomy = CostBudget(10**9)
    assert expression.evaluate({"l": items, COST_KEY: roomy}) is True
    # Costs are deterministic: the same evaluation charges the same units, and a budget of exactly that suffices.
    exact = CostBudget(max(1, roomy.units_used))
    assert expression.evaluate({"l": items, COST_KEY: exact}) is True
    assert exact.units_remaining >= 0
