"""The evaluation cost budget: a bound on the *work* CEL may do, shared by every expression of one event.

An iteration cap alone does not bound work: ``s.map(a, s.map(b, a + b))`` iterates little but builds strings
proportional to the data, and a cap per expression lets 1,000 rules each spend it. So evaluation charges a
`CostBudget` that the caller creates once per event and passes in the variables under `COST_KEY`:

- a comprehension charges, per element of its range (plus one), the static size of its body in nodes;
- an operation whose work grows with its operands charges their size, with cel-go's factors
  (``interpreter/runtimecost.go``: strings ``ceil(len * 0.1)``, a regular expression ``* ceil(len(pattern) * 0.25)``,
  list membership one unit per element); values we copy (``+`` on strings, bytes and lists) charge the size of the
  result, since Python copies both operands where cel-go may not;
- everything else (comparisons with a literal, field access, arithmetic) charges nothing: its work is bounded by the
  expression's size, and inside a comprehension it is covered by the body's per-iteration charge.

Exceeding the budget raises `CelCostExceeded`, which logical operators and quantifiers do not absorb (as cel-go
cancels the evaluation): the rule is skipped with that reason. docs/limits.md gives the model and measurements.
"""

from __future__ import annotations

from typing import Any, Final

from . import _operators as ops
from ._errors import CelCostExceeded
from ._operators import add, contained_in
from ._values import cel_compare, cel_equal, map_lookup, no_overload

__all__ = ["COST_KEY", "COST_UNITS_DEFAULT", "CostBudget", "charge"]

#: Budget for an evaluation whose caller passed none (tests, the rule simulator): one event's worth.
COST_UNITS_DEFAULT: Final = 20_000
#: Strings and bytes: characters per unit (cel-go ``common.StringTraversalCostFactor`` = 0.1).
TEXT_CHARS_PER_UNIT: Final = 10
#: Regular expressions: pattern characters per unit of work per unit of text (cel-go
#: ``common.RegexStringLengthCostFactor`` = 0.25).
REGEX_CHARS_PER_UNIT: Final = 4
#: Expressions up to this many nodes are evaluated without a charge for their own size (1,000 rules of 32 nodes:
#: a few ms); a larger one charges its node count each time it is evaluated.
STATIC_FREE_NODES_MAX: Final = 32
#: Texts up to this length pass string predicates on the inlined path without a charge: their work is a few
#: nanoseconds, bounded per node like a comparison, and the hot path stays one ``len`` check.
TEXT_FREE_CHARS_MAX: Final = 256


class _CostKey:
    """Key under which an evaluation's `CostBudget` travels in the variables: never a CEL identifier."""

    def __repr__(self) -> str:
        return "<cel cost budget>"


COST_KEY: Final = _CostKey()


class CostBudget:
    """Cost units left for one event's evaluations; every expression evaluated with it draws on it.

    Once exhausted it stays exhausted: each later charge raises again, so a later rule that needs any costed work
    is skipped too, while rules that need none (plain comparisons) still run.
    """

    __slots__ = ("units_max", "units_remaining")

    def __init__(self, units_max: int) -> None:
        assert units_max > 0
        self.units_max = units_max
        self.units_remaining = units_max

    @property
    def units_used(self) -> int:
        return self.units_max - self.units_remaining

    def __repr__(self) -> str:
        return f"CostBudget({self.units_remaining}/{self.units_max})"


def exceeded(budget: CostBudget) -> CelCostExceeded:
    return CelCostExceeded(
        f"evaluation cost limit exceeded: the event's budget is {budget.units_max} units"
        " (limits.cel_cost_per_event_max)"
    )


def charge(v: dict[Any, Any], units: int) -> None:
    """Draw `units` from the evaluation's budget; raise `CelCostExceeded` when it runs out.

    Without a budget (only constant folding at compile time calls closures so) nothing is charged:
    `CompiledExpression.evaluate` always supplies one.
    """
    budget: CostBudget | None = v.get(COST_KEY)
    if budget is None:
        return
    budget.units_remaining -= units
    if budget.units_remaining < 0:
        raise exceeded(budget)


def size_units(value: Any) -> int:
    """The cost of traversing `value` once: text by length / 10, containers by element count, else 0."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) // TEXT_CHARS_PER_UNIT  # type: ignore[no-any-return]
    if kind is list or kind is tuple or kind is dict:
        return len(value)  # type: ignore[no-any-return]
    return 0


def regex_units(text: str, pattern: str) -> int:
    """cel-go's ``matches`` cost: ``ceil((1 + len(text)) * 0.1) * ceil(len(pattern) * 0.25)``."""
    text_units = -(-(1 + len(text)) // TEXT_CHARS_PER_UNIT)
    pattern_units = max(1, -(-len(pattern) // REGEX_CHARS_PER_UNIT))
    return text_units * pattern_units


# -- charged versions of the generic operators (the compiler swaps them in, see CHARGED_OPERATORS) -----------------


def equal_charged(v: dict[Any, Any], left: Any, right: Any) -> bool:
    """CEL ``==``, charging each container element it walks (however deep) and long texts it compares."""
    left_type, right_type = type(left), type(right)
    if left_type is list or left_type is tuple:
        if (right_type is not list and right_type is not tuple) or len(left) != len(right):
            return False
        charge(v, len(left))
        for a, b in zip(left, right, strict=True):
            if type(a) in _WALKED:
                if not equal_charged(v, a, b):
                    return False
            elif not cel_equal(a, b):
                return False
        return True
    if left_type is dict:
        if right_type is not dict or len(left) != len(right):
            return False
        charge(v, len(left))
        for key, value in left.items():
            found, other = map_lookup(right, key)
            if not found or not equal_charged(v, value, other):
                return False
        return True
    if (left_type is str or left_type is bytes) and right_type is left_type and len(left) == len(right):
        charge(v, len(left) // TEXT_CHARS_PER_UNIT)  # only equal lengths are compared character by character
    return cel_equal(left, right)


#: Values whose equality takes more than constant time.
_WALKED: Final = frozenset({list, tuple, dict, str, bytes})


def not_equal_charged(v: dict[Any, Any], left: Any, right: Any) -> bool:
    """CEL ``!=``, charged as ``==``."""
    return not equal_charged(v, left, right)


def _ordering(name: str, test: Any) -> Any:
    def ordering_charged(v: dict[Any, Any], left: Any, right: Any) -> bool:
        if type(left) is type(right) and (type(left) is str or type(left) is bytes):
            charge(v, min(len(left), len(right)) // TEXT_CHARS_PER_UNIT)
        return bool(test(cel_compare(left, right)))

    ordering_charged.__name__ = name
    return ordering_charged


less_charged: Final = _ordering("less_charged", lambda order: order == -1)
less_equal_charged: Final = _ordering("less_equal_charged", lambda order: order in (-1, 0))
greater_charged: Final = _ordering("greater_charged", lambda order: order == 1)
greater_equal_charged: Final = _ordering("greater_equal_charged", lambda order: order in (0, 1))


def add_charged(v: dict[Any, Any], left: Any, right: Any) -> Any:
    """CEL ``+``: a string, bytes or list result charges its size (we copy both operands into it)."""
    result = add(left, right)
    kind = type(result)
    if (kind is str or kind is bytes or kind is list) and len(result) > TEXT_FREE_CHARS_MAX:
        charge(v, size_units(result))  # short results are free: bounded per node, like a comparison
    return result


def contained_in_charged(v: dict[Any, Any], element: Any, container: Any) -> bool:
    """CEL ``in``: a list charges one unit per element (cel-go), and each container element compared deeply."""
    if type(container) is list or type(container) is tuple:
        kind = type(element)
        if (kind is str or kind is bytes) and len(element) > TEXT_FREE_CHARS_MAX:
            charge(v, len(container) * (len(element) // TEXT_CHARS_PER_UNIT))  # each equal-length item: a memcmp
        else:
            charge(v, len(container))
        if kind is list or kind is tuple or kind is dict:
            return any(equal_charged(v, element, item) for item in container)
    return contained_in(element, container)  # type: ignore[no-any-return]


def call_charged(v: dict[Any, Any], name: str, function: Any, arguments: list[Any]) -> Any:
    """A library function whose work grows with its arguments: charge first, then call."""
    charge(v, call_units(name, arguments))
    return function(*arguments)


def call_one_charged(v: dict[Any, Any], function: Any, argument: Any) -> Any:
    """A one-argument library function (a conversion): a long text argument is charged its length."""
    kind = type(argument)
    if (kind is str or kind is bytes) and len(argument) > TEXT_FREE_CHARS_MAX:
        charge(v, len(argument) // TEXT_CHARS_PER_UNIT)
    return function(argument)


def call_units(name: str, arguments: list[Any]) -> int:
    """The cost of calling library function `name` on `arguments` (0 for the constant-time ones)."""
    if name == "matches" and len(arguments) == 2 and type(arguments[0]) is str and type(arguments[1]) is str:
        return regex_units(arguments[0], arguments[1])
    if name in _SETS and len(arguments) == 2:
        return _sets_units(arguments[0], arguments[1])
    return sum(size_units(argument) for argument in arguments)


_SETS: Final = frozenset({"sets.contains", "sets.intersects"})


def _sets_units(left: Any, right: Any) -> int:
    """``sets.*``: linear when both lists hold only strings (hashed), else every pair is compared."""
    if type(left) not in (list, tuple) or type(right) not in (list, tuple):
        raise no_overload("sets", left, right)
    if all(type(x) is str for x in left) and all(type(x) is str for x in right):
        return len(left) + len(right)
    return len(left) * len(right) + len(left) + len(right)


#: Library functions that run in constant time whatever their arguments: no charge at run time.
CONSTANT_TIME_FUNCTIONS: Final = frozenset({"size", "dyn", "type", "get", "bool", "round"})

#: Static weight, in nodes, of calls that take far longer than a node: about their measured time / 0.12 µs (one
#: comprehension iteration of a trivial body). Counted into a comprehension's per-iteration weight and an
#: expression's static size; a call folded at compile time weighs nothing.
FUNCTION_UNITS: Final = {
    "round": 50,  # 3-7 µs (Decimal on the slow path)
    "timestamp": 60,  # 9 µs to parse RFC 3339
    "google.protobuf.Timestamp": 60,
    "string": 50,  # 7 µs to format a timestamp
    "int": 15,
    "uint": 20,
    "double": 15,
    "bytes": 5,
    "duration": 30,  # plus DURATION_UNITS_PER_CHAR
    "google.protobuf.Duration": 30,
}
#: Time accessors (``t.getHours()``): with a time zone 2.5 µs, without 1.2 µs.
ACCESSOR_UNITS: Final = 10
ACCESSOR_ZONE_UNITS: Final = 20
#: ``duration(text)`` parses part by part in Python: 0.6 µs per character measured (256 characters at most).
DURATION_UNITS_PER_CHAR: Final = 5
#: A caught error (absorbed by ``||``, ``&&``, ``all``, ``exists``): raising and catching costs about 2 µs.
ERROR_UNITS: Final = 15


def duration_charged(v: dict[Any, Any], function: Any, argument: Any) -> Any:
    """``duration(text)``: its parse time grows with the text, so every character is charged."""
    if type(argument) is str:
        charge(v, len(argument) * DURATION_UNITS_PER_CHAR)
    return function(argument)


def _charged_operators() -> dict[Any, Any]:
    return {
        ops.add: add_charged,
        ops.equal: equal_charged,
        ops.not_equal: not_equal_charged,
        ops.less: less_charged,
        ops.less_equal: less_equal_charged,
        ops.greater: greater_charged,
        ops.greater_equal: greater_equal_charged,
    }


#: generic operator ``f(left, right)`` -> its charged version ``f(variables, left, right)``.
CHARGED_OPERATORS: Final = _charged_operators()
