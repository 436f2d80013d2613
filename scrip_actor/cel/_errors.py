"""The three exception types of the CEL package.

Every failure the engine can see from CEL is one of these: a rule that does not compile raises
`CelCompileError` (with a 1-based position, so an operator can fix the rule), and a rule that
fails while running raises `CelEvaluationError`. Internal Python exceptions (`KeyError`,
`TypeError`, `OverflowError`, `RecursionError`, ...) never escape: `CompiledExpression.evaluate`
converts them, because for the engine an evaluation error means "condition not met, rule skipped
with a reason", never a crashed actor.
"""

from __future__ import annotations

__all__ = ["CelCompileError", "CelCostExceeded", "CelError", "CelEvaluationError"]


class CelError(Exception):
    """Base class of every error raised by `scrip_actor.cel`."""


class CelCompileError(CelError):
    """The expression text is not valid CEL, or uses something this compiler refuses.

    Attributes:
        message: what is wrong, without the position.
        line: 1-based line of the offending character.
        column: 1-based column of the offending character.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"{message} (line {line}, column {column})")


class CelEvaluationError(CelError):
    """Evaluating a compiled expression failed (no such key, overflow, no such overload, ...).

    Attributes:
        message: the CEL-style reason, e.g. ``"no such key: tier"``.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class CelCostExceeded(CelEvaluationError):
    """The evaluation ran out of its cost budget (see `scrip_actor.cel.CostBudget`).

    Unlike other evaluation errors, ``||``, ``&&`` and the quantifier macros never absorb it: the work is cut
    short, so the result would be a guess.
    """
