"""CEL (Common Expression Language) compiled to Python closures, for Scrip's rule conditions.

Usage::

    from scrip_actor.cel import compile_expression, CelEvaluationError

    rule = compile_expression("event.type == 'purchase' && event.amount >= 100")
    try:
        matched = rule.evaluate({"event": {"type": "purchase", "amount": 105.0}})
    except CelEvaluationError as error:
        matched = False  # the engine skips the rule and records error.message

The work of evaluation is bounded by a `CostBudget` passed under `COST_KEY` in the variables,
shared by every expression of one event (see ``_cost``); running out raises `CelCostExceeded`.

cel-python parses; this package compiles the parse tree once into closures that evaluate in
well under a microsecond for typical rules. Semantics follow the CEL spec, with the deliberate
deviations listed in ``docs/cel.md`` (int/double promotion in arithmetic, microsecond time).
"""

from ._cost import COST_KEY as COST_KEY
from ._cost import CostBudget as CostBudget
from ._errors import CelCompileError as CelCompileError
from ._errors import CelCostExceeded as CelCostExceeded
from ._errors import CelError as CelError
from ._errors import CelEvaluationError as CelEvaluationError
from ._expression import CompiledExpression as CompiledExpression
from ._expression import compile_expression as compile_expression
from ._values import CelType as CelType
from ._values import CelUint as CelUint

__all__ = [
    "COST_KEY",
    "CelCompileError",
    "CelCostExceeded",
    "CelError",
    "CelEvaluationError",
    "CelType",
    "CelUint",
    "CompiledExpression",
    "CostBudget",
    "compile_expression",
]
