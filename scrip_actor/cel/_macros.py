"""The comprehension macros: ``all``, ``exists``, ``exists_one``, ``map`` (2 and 3 arguments), ``filter``.

Each macro binds its iteration variable in a copy of the variables dict (so shadowing an outer
name is correct and the caller's dict is never mutated) and charges its range length against the
evaluation's comprehension budget *before* iterating, so a hostile nested comprehension such as
``l.all(a, l.all(b, l.all(c, true)))`` stops with an error instead of running for minutes.
"""

from __future__ import annotations

from typing import Any, Final

from ._codegen import Fn
from ._errors import CelEvaluationError
from ._values import no_overload

#: Iterations all comprehensions of one evaluation may perform together.
COMPREHENSION_ITERATIONS_MAX: Final = 100_000


class _Budget:
    """Key under which an evaluation's remaining comprehension budget travels in `variables`.

    Not a string, so it can never collide with a CEL identifier.
    """


BUDGET_KEY: Final = _Budget()


def _range_items(value: Any) -> list[Any] | tuple[Any, ...]:
    if type(value) is list or type(value) is tuple:
        return value  # type: ignore[no-any-return]
    if type(value) is dict:
        return list(value)
    raise no_overload("comprehension range", value)


def _charge(variables: dict[Any, Any], count: int) -> None:
    budget: list[int] | None = variables.get(BUDGET_KEY)
    if budget is None:
        raise CelEvaluationError("comprehension used outside a budgeted evaluation")
    budget[0] -= count
    if budget[0] < 0:
        raise CelEvaluationError("comprehension iteration limit exceeded")


def build_macro(name: str, variable: str, range_fn: Fn, bodies: list[Fn]) -> Fn:
    """Return the closure for macro `name` over `range_fn`, binding `variable` for `bodies`."""
    body = bodies[0]

    def prepared(v: dict[str, Any]) -> tuple[list[Any] | tuple[Any, ...], dict[str, Any]]:
        items = _range_items(range_fn(v))
        _charge(v, len(items) + 1)
        return items, dict(v)

    if name == "all" or name == "exists":
        decisive = name == "exists"  # exists stops at the first true, all at the first false

        def quantifier(v: dict[str, Any]) -> bool:
            items, scope = prepared(v)
            error: Exception | None = None
            for item in items:
                scope[variable] = item
                try:
                    result = body(scope)
                except Exception as caught:
                    error = error or caught
                    continue
                if result is decisive:
                    return decisive
                if result is not (not decisive):
                    error = error or no_overload(name, result)
            if error is not None:
                raise error
            return not decisive

        return quantifier

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
