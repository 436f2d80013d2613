"""`compile_expression` and the `CompiledExpression` it returns: the package's whole public face."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, final

from ._codegen import build
from ._compiler import Compiler
from ._cost import COST_KEY, COST_UNITS_DEFAULT, STATIC_FREE_NODES_MAX, CostBudget, charge
from ._errors import CelEvaluationError
from ._parser import parse

_UNEXPECTED: Final = "internal error while evaluating"


def _evaluator(root: Any, uses_budget: bool, nodes: int) -> Callable[[Mapping[str, Any]], Any]:
    """Generate ``evaluate(v)``: the root's code inlined inside the error conversion.

    One generated function per expression means ``expression.evaluate(v)`` is a single Python
    call for typical rules (it is stored on the instance, so there is no bound-method creation
    either). Roots without inlinable code are called as a closure.
    """
    namespace: dict[str, Any] = {
        "_root": root.fn,
        "_Error": CelEvaluationError,
        "_cost_key": COST_KEY,
        "_cost_default": COST_UNITS_DEFAULT,
        "_Budget": CostBudget,
        "_charge": charge,
        "_internal": _internal_error,
    }
    body = root.body(namespace) if root.body is not None else ["return _root(v)"]
    # The caller's budget (one per event) if it passed one; else this evaluation gets its own.
    lines = ["if _cost_key not in v:", "    v = {**v, _cost_key: _Budget(_cost_default)}"] if uses_budget else []
    if nodes > STATIC_FREE_NODES_MAX:  # a large expression pays for its own size (small ones are free: hot path)
        lines += [f"_charge(v, {int(nodes)})"]
    lines += [
        "try:",
        *("    " + line for line in body),
        "except _Error as error:",
        "    raise error.__class__(error.message) from None",  # fresh: no internal frames or context
        "except Exception as error:",
        "    raise _internal(error) from None",
    ]
    return build("evaluate", lines, namespace)


def _internal_error(error: Exception) -> CelEvaluationError:
    """Convert a stray Python exception (a bug, or hostile data) into a CEL evaluation error."""
    if isinstance(error, RecursionError):
        return CelEvaluationError("value nested too deeply")
    if isinstance(error, KeyError):
        return CelEvaluationError(f"no such key: {error.args[0] if error.args else ''}")
    return CelEvaluationError(f"{_UNEXPECTED}: {type(error).__name__}: {error}")


@final
class CompiledExpression:
    """A CEL expression compiled to Python closures; evaluate it as often as you like.

    Instances are immutable and hold no per-evaluation state, so one instance can be shared by
    every actor that evaluates the same rule.

    Attributes:
        text: the original CEL source.
        evaluate: ``evaluate(variables) -> value``. `variables` maps identifiers to native
            Python values, e.g. ``{"event": {...}, "participant": {...}, "now": datetime}``,
            and is never mutated. Under the key `COST_KEY` it may hold the `CostBudget` that every
            expression of one event draws on; without one, the evaluation gets its own default
            budget. Returns the CEL result as a native value (``bool`` for a rule condition).
            Raises `CelEvaluationError` for every failure (missing key, wrong types, overflow,
            division by zero, data nested too deeply); `CelCostExceeded`, its subclass, when the
            cost budget runs out; no other exception type escapes.

    Example:
        >>> compile_expression("event.amount >= 100").evaluate({"event": {"amount": 105.0}})
        True
    """

    __slots__ = ("evaluate", "text")

    def __init__(self, text: str, root: Any, uses_budget: bool, nodes: int = 1) -> None:
        self.text = text
        uses_budget = uses_budget or nodes > STATIC_FREE_NODES_MAX
        self.evaluate: Callable[[Mapping[str, Any]], Any] = _evaluator(root, uses_budget, nodes)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"


def compile_expression(text: str) -> CompiledExpression:
    """Compile CEL source text once into a fast, reusable `CompiledExpression`.

    Args:
        text: a CEL expression, at most 4096 characters, brackets nested at most 32 deep.

    Returns:
        The compiled expression; call ``.evaluate(variables)`` on it.

    Raises:
        CelCompileError: syntax errors, unknown functions, wrong argument counts, literals out of
            range, invalid literal regular expressions, limits exceeded. ``.line`` and
            ``.column`` are 1-based.

    Example:
        >>> rule = compile_expression("participant.tier in ['gold', 'platinum']")
        >>> rule.evaluate({"participant": {"tier": "gold"}})
        True
    """
    tree = parse(text)
    compiler = Compiler()
    try:
        node = compiler.compile(tree)
    except RecursionError:
        from ._errors import CelCompileError

        raise CelCompileError("expression nested too deeply", 1, 1) from None
    return CompiledExpression(text, node, compiler.uses_budget, compiler.nodes)
