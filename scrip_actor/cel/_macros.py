"""The comprehension macros: ``all``, ``exists``, ``exists_one``, ``map`` (2 and 3 arguments), ``filter``.

Each macro binds its iteration variable in a copy of the variables dict (so shadowing an outer
name is correct and the caller's dict is never mutated) and charges the event's cost budget
(`_cost`) *before* iterating: ``(len(range) + 1) * weight``, where the weight is 1 plus the static
size of the body in nodes. So a hostile nested comprehension such as ``l.all(a, l.all(b, l.all(c, true)))``
stops with `CelCostExceeded` instead of running for minutes. ``all``/``exists`` may stop early: they
refund what they did not use, and when the whole range does not fit in what is left they charge
as they go, so a quantifier that would decide in time is not refused up front.
"""

from __future__ import annotations

from typing import Any

from ._codegen import Fn
from ._cost import COST_KEY, ERROR_UNITS, CostBudget, charge, exceeded
from ._errors import CelCostExceeded
from ._values import no_overload


def _range_items(value: Any) -> list[Any] | tuple[Any, ...]:
    if type(value) is list or type(value) is tuple:
        return value  # type: ignore[no-any-return]
    if type(value) is dict:
        return list(value)
    raise no_overload("comprehension range", value)


def _quantifier(name: str, variable: str, range_fn: Fn, body: Fn, weight: int) -> Fn:
    """``all`` / ``exists``: errors are absorbed if another element decides, and the loop may stop early."""
    decisive = name == "exists"  # exists stops at the first true, all at the first false

    def quantifier(v: dict[str, Any]) -> bool:
        items = _range_items(range_fn(v))
        units = (len(items) + 1) * weight
        budget: CostBudget | None = v.get(COST_KEY)
        prepaid = budget is None or budget.units_remaining >= units
        if budget is not None and prepaid:  # the whole range fits: pay now, refund on an early exit
            budget.units_remaining -= units
        scope = dict(v)
        error: Exception | None = None
        for position, item in enumerate(items):
            if not prepaid:  # it does not fit: pay as we go, so an early decision still succeeds
                assert budget is not None
                budget.units_remaining -= weight
                if budget.units_remaining < 0:
                    raise exceeded(budget)
            scope[variable] = item
            try:
                result = body(scope)
            except CelCostExceeded:
                raise
            except Exception as caught:
                charge(v, ERROR_UNITS)  # raising costs microseconds: an absorbed error is not free
                error = error or caught
                continue
            if result is decisive:
                if prepaid and budget is not None:  # refund the items not visited
                    budget.units_remaining += (len(items) - position - 1) * weight
                return decisive
            if result is not (not decisive):
                error = error or no_overload(name, result)
        if error is not None:
            raise error
        return not decisive

    return quantifier


def build_macro(name: str, variable: str, range_fn: Fn, bodies: list[Fn], weight: int) -> Fn:
    """Return the closure for macro `name` over `range_fn`, binding `variable` for `bodies`.

    `weight` is the cost of one iteration: 1 plus the number of nodes in the bodies.
    """
    assert weight >= 1
    body = bodies[0]
    if name == "all" or name == "exists":
        return _quantifier(name, variable, range_fn, body, weight)

    def prepared(v: dict[str, Any]) -> tuple[list[Any] | tuple[Any, ...], dict[str, Any]]:
        items = _range_items(range_fn(v))
        budget: CostBudget | None = v.get(COST_KEY)  # `charge`, inlined: this runs for every comprehension
        if budget is not None:
            budget.units_remaining -= (len(items) + 1) * weight
            if budget.units_remaining < 0:
                raise exceeded(budget)
        return items, dict(v)

    if name == "exists_one":

        def exists_one(v: dict[str, Any]) -> bool:
            items, scope = prepared(v)
            count = 0
            for item in items:
                scope[variable] = item
                result = body(scope)
                if result is True:
                    count += 1
                elif result is not False:
                    raise no_overload("exists_one", result)
            return count == 1

        return exists_one

    if name == "filter":

        def filter_(v: dict[str, Any]) -> list[Any]:
            items, scope = prepared(v)
            kept = []
            for item in items:
                scope[variable] = item
                result = body(scope)
                if result is True:
                    kept.append(item)
                elif result is not False:
                    raise no_overload("filter", result)
            return kept

        return filter_

    if len(bodies) == 1:

        def map_(v: dict[str, Any]) -> list[Any]:
            items, scope = prepared(v)
            out = []
            for item in items:
                scope[variable] = item
                out.append(body(scope))
            return out

        return map_

    transform = bodies[1]

    def filter_map(v: dict[str, Any]) -> list[Any]:
        items, scope = prepared(v)
        out = []
        for item in items:
            scope[variable] = item
            keep = body(scope)
            if keep is True:
                out.append(transform(scope))
            elif keep is not False:
                raise no_overload("map", keep)
        return out

    return filter_map
