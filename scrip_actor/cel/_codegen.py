"""Tiny code templates for the hottest node shapes, turned into closures with `exec`.

A naive closure compiler spends most of its time in Python-level calls: ``event.amount >= 100``
would be a call for the comparison, one for ``.amount`` and one for ``event``. The shapes that
dominate loyalty rules (a variable path compared with a literal, ``&&`` chains, ``in`` a literal
list) are instead emitted as one small Python function each, with the path lookup inlined as
``v["event"]["amount"]``. Only trusted, compiler-built text reaches `exec`: identifiers and
constants are passed through the namespace, except `str` constants, which are embedded as their
``repr`` (always an inert literal), so nothing from the CEL expression is ever parsed as Python
code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

Fn = Callable[[dict[str, Any]], Any]
#: (target variable, unique slot prefix, namespace) -> source lines assigning the value to target
Emitter = Callable[[str, str, dict[str, Any]], list[str]]

#: Names every generated function may use.
_BUILTINS: dict[str, Any] = {"_int": int, "_float": float, "_str": str, "_dict": dict}

#: Paths up to this length are inlined as chained subscripts.
INLINE_PATH_MAX: Final = 4


class Operand:
    """How a generated function obtains one operand: inlined code, an inlined path, or a call."""

    __slots__ = ("emit", "fn", "path")

    def __init__(self, fn: Fn, path: tuple[str, ...] | None, emit: Emitter | None = None) -> None:
        self.fn = fn
        self.path = path if path is not None and len(path) <= INLINE_PATH_MAX else None
        self.emit = emit


def load_lines(operand: Operand, target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
    """Source lines that assign `operand`'s value to local `target`.

    An inlined path ``v[k0][k1]`` fails with KeyError/TypeError on any irregularity; we then call
    the generic closure, which raises the precise CEL error (or resolves, e.g., a type name).
    """
    if operand.emit is not None:
        return operand.emit(target, slot, namespace)
    namespace[f"{slot}_fn"] = operand.fn
    if operand.path is None:
        return [f"{target} = {slot}_fn(v)"]
    subscripts = ""
    for key in operand.path:
        subscripts += f"[{literal(key)}]"
    return [
        "try:",
        f"    {target} = v{subscripts}",
        "except Exception:",
        f"    {target} = {slot}_fn(v)",
    ]


def literal(value: str) -> str:
    """A str constant as Python source: ``repr`` of a str is always a valid, inert literal.

    Embedding constants (LOAD_CONST) instead of namespace names (LOAD_GLOBAL) saves a little
    per use; only `str` is embedded this way, never arbitrary objects.
    """
    assert type(value) is str
    return repr(value)


def build_from_emitter(name: str, emit: Emitter) -> Fn:
    """A standalone function computing what `emit` computes inline."""
    namespace: dict[str, Any] = {}
    return build(name, [*emit("result", "s", namespace), "return result"], namespace)


def build(name: str, lines: list[str], namespace: dict[str, Any]) -> Fn:
    """Define ``def <name>(v): <lines>`` in `namespace` and return it."""
    for builtin, value in _BUILTINS.items():
        namespace.setdefault(builtin, value)
    source = f"def {name}(v):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, f"<cel:{name}>", "exec"), namespace)
    function: Fn = namespace[name]
    return function
