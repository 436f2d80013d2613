"""`compile_expression` and the `CompiledExpression` it returns: the package's whole public face."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, final

from ._codegen import Fn
from ._compiler import Compiler
from ._errors import CelEvaluationError
from ._macros import BUDGET_KEY, COMPREHENSION_ITERATIONS_MAX
from ._parser import parse

_UNEXPECTED: Final = "internal error while evaluating"


@final
class CompiledExpression:
    """A CEL expression compiled to Python closures; evaluate it as often as you like.

    Instances are immutable and hold no per-evaluation state, so one instance can be shared by
    every actor (and thread) that evaluates the same rule.

    Attributes:
        text: the original CEL source.
    """

    __slots__ = ("_function", "_uses_budget", "text")

    def __init__(self, text: str, function: Fn, uses_budget: bool) -> None:
        self.text = text
        self._function = function
        self._uses_budget = uses_budget

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate against `variables`, a mapping of identifier -> native Python value.

        Args:
            variables: e.g. ``{"event": {...}, "participant": {...}, "now": datetime}``.
                Never mutated.

        Returns:
            The CEL result as a native value (``bool`` for a rule condition).

        Raises:
            CelEvaluationError: for every failure: missing key, wrong types, overflow, division
                by zero, comprehension budget exhausted, data nested too deeply... No other
                exception type escapes.

        Example:
            >>> compile_expression("event.amount >= 100").evaluate({"event": {"amount": 105.0}})
            True
        """
        try:
            if self._uses_budget:
                variables = {**variables, BUDGET_KEY: [COMPREHENSION_ITERATIONS_MAX]}
            elif type(variables) is not dict:
                variables = dict(variables)
            return self._function(variables)  # type: ignore[arg-type]
        except CelEvaluationError as error:
            raise CelEvaluationError(error.message) from None
        except RecursionError:
            raise CelEvaluationError("value nested too deeply") from None
        except KeyError as error:
            raise CelEvaluationError(f"no such key: {error.args[0] if error.args else ''}") from None
        except Exception as error:
            raise CelEvaluationError(f"{_UNEXPECTED}: {type(error).__name__}: {error}") from None


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
    return CompiledExpression(text, node.fn, compiler.uses_budget)
