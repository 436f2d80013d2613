"""CEL (Common Expression Language) compiled to Python closures, for Scrip's rule conditions.

Usage::

    from scrip_actor.cel import compile_expression, CelEvaluationError

    rule = compile_expression("event.type == 'purchase' && event.amount >= 100")
    try:
        matched = rule.evaluate({"event": {"type": "purchase", "amount": 105.0}})
    except CelEvaluationError as error:
        matched = False  # the engine skips the rule and records error.message

cel-python parses; this package compiles the parse tree once into closures that evaluate in
well under a microsecond for typical rules. Semantics follow the CEL spec, with the deliberate
deviations listed in ``docs/cel.md`` (int/double promotion in arithmetic, microsecond time).
"""

from ._errors import CelCompileError as CelCompileError
from ._errors import CelError as CelError
from ._errors import CelEvaluationError as CelEvaluationError
from ._expression import CompiledExpression as CompiledExpression
from ._expression import compile_expression as compile_expression
from ._values import CelType as CelType
from ._values import CelUint as CelUint

__all__ = [
    "CelCompileError",
    "CelError",
    "CelEvaluationError",
    "CelType",
    "CelUint",
    "CompiledExpression",
    "compile_expression",
]
