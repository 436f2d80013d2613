"""cel-python's evaluator behind the same face as :func:`scrip_actor.cel.compile_expression`: a benchmark baseline.

``EngineSettings(cel_backend="celpy")`` makes the engine compile every rule condition and every amount/value
expression with :func:`compile_expression_celpy` instead of our compiler, so ``python -m bench.embedded --baseline
celpy`` can run the identical workload on both and compare. Nothing else uses this module: it is slow on purpose,
in the way a straightforward integration of cel-python would be (DESIGN.md section 3):

- it runs cel-python's default *interpreted* runner (a parse-tree walk per evaluation);
- it converts the variables with ``celpy.json_to_cel`` on *every* evaluation (20-60 µs per event/participant);
- results come back as plain Python values, errors as :class:`~scrip_actor.cel.CelEvaluationError`.

Scrip's extension functions (``get``, ``round``, ``sets.contains``, ``sets.intersects``) are registered as celpy
functions that call the very same implementations our compiler uses, so both backends agree on their results.
cel-python resolves ``sets.contains(a, b)`` as a *method* ``contains`` on a variable ``sets``; we rewrite the call
to ``sets_contains(a, b)`` before parsing (same length, so error positions stay right). A string literal that
contains the text ``sets.contains(`` would be rewritten too: acceptable for a baseline, never used on real traffic.

The cel-python semantics DESIGN.md section 4 warns about are kept as they are (``amount >= 100`` with a double
``amount`` is an error under celpy, a comparison for us): a benchmark that wants equal outcomes writes its literals
as doubles.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from ._errors import CelCompileError, CelEvaluationError
from ._functions import get, round_half_up, sets_contains, sets_intersects
from ._values import CelUint

__all__ = ["CelpyExpression", "compile_expression_celpy"]

_SETS_CALL: Final = re.compile(r"\bsets\.(contains|intersects)(\s*\()")
_environment: celpy.Environment | None = None


def _shared_environment() -> celpy.Environment:
    """One interpreted-runner Environment per process (cel-python keeps a parser singleton anyway)."""
    global _environment
    if _environment is None:
        _environment = celpy.Environment(runner_class=celpy.InterpretedRunner)
    return _environment


def to_python(value: Any) -> Any:
    """A celtypes value as the plain Python value our compiler would return (bool, int, float, str, list, dict...).

    celtypes subclass the Python builtins (``BoolType`` is an ``int``), so the order of the checks matters.
    """
    if value is None or isinstance(value, celtypes.NullType):
        return None
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.UintType):
        return CelUint(int(value))  # as our compiler returns uints
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, list):
        return [to_python(item) for item in value]
    if isinstance(value, dict):
        return {to_python(key): to_python(item) for key, item in value.items()}
    if isinstance(value, _dt.datetime):
        return _dt.datetime.fromtimestamp(value.timestamp(), tz=_dt.UTC)
    if isinstance(value, _dt.timedelta):
        return _dt.timedelta(seconds=value.total_seconds())
    return value


def _extension(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap one of our extension functions for celpy: celtypes in and out, errors as CELEvalError *values*.

    celpy propagates a returned CELEvalError through ``&&``/``||`` the CEL way (it may be absorbed), exactly as it
    does for its own built-in functions.
    """

    def call(*arguments: Any) -> Any:
        for argument in arguments:
            if isinstance(argument, CELEvalError):
                return argument
        try:
            return celpy.json_to_cel(function(*(to_python(argument) for argument in arguments)))
        except CelEvaluationError as error:
            return CELEvalError(error.message)

    call.__name__ = function.__name__
    return call


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "get": _extension(get),
    "round": _extension(round_half_up),
    "sets_contains": _extension(sets_contains),
    "sets_intersects": _extension(sets_intersects),
}


@final
class CelpyExpression:
    """A CEL expression run by cel-python's interpreted runner, evaluated like a `CompiledExpression`.

    Attributes:
        text: the original CEL source.
    """

    __slots__ = ("_program", "text")

    def __init__(self, text: str, program: Any) -> None:
        self.text = text
        self._program = program

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Convert ``variables`` with ``json_to_cel`` (every time: that is the measured cost), run, convert back.

        Raises:
            CelEvaluationError: cel-python returned or raised an error (missing key, no such overload, ...).
        """
        try:
            # Non-str keys (the cost budget, COST_KEY) are not CEL variables; this baseline enforces no budget.
            activation = {name: celpy.json_to_cel(value) for name, value in variables.items() if type(name) is str}
            result = self._program.evaluate(activation)
        except CELEvalError as error:
            raise CelEvaluationError(_message(error)) from None
        except Exception as error:  # celpy lets some Python errors escape (e.g. from its own functions)
            raise CelEvaluationError(f"cel-python: {type(error).__name__}: {error}") from None
        if isinstance(result, CELEvalError):
            raise CelEvaluationError(_message(result))
        return to_python(result)

    def __repr__(self) -> str:
        return f"CelpyExpression({self.text!r})"


def _message(error: CELEvalError) -> str:
    return str(error.args[0]) if error.args else "cel-python evaluation error"


def compile_expression_celpy(text: str) -> CelpyExpression:
    """Parse ``text`` with cel-python and bind Scrip's extension functions; a drop-in for ``compile_expression``.

    Raises:
        CelCompileError: a syntax error, with cel-python's 1-based line and column when it reports them.

    Example:
        >>> compile_expression_celpy("event.amount >= 100.0").evaluate({"event": {"amount": 105.0}})
        True
    """
    environment = _shared_environment()
    rewritten = _SETS_CALL.sub(lambda match: f"sets_{match.group(1)}{match.group(2)}", text)
    try:
        tree = environment.compile(rewritten)
    except CELParseError as error:
        # cel-python's message is the source line and a caret under the column: the position says it all.
        raise CelCompileError("syntax error (cel-python)", error.line or 1, error.column or 1) from None
    return CelpyExpression(text, environment.program(tree, functions=_FUNCTIONS))
