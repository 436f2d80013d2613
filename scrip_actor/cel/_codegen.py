"""Tiny code templates for the hottest node shapes, turned into closures with `exec`.

A naive closure compiler spends most of its time in Python-level calls: ``event.amount >= 100``
would be a call for the comparison, one for ``.amount`` and one for ``event``. The shapes that
dominate loyalty rules (a variable path compared with a literal, ``&&`` chains, ``in`` a literal
list) are instead emitted as one small Python function each, with the path lookup inlined as
``v["event"]["amount"]``. Only trusted, compiler-built text reaches `exec`: identifiers and
constants are passed through the namespace (never spliced into the source), so nothing from
the CEL expression is ever parsed as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

Fn = Callable[[dict[str, Any]], Any]

#: Paths up to this length are inlined as chained subscripts.
INLINE_PATH_MAX: Final = 4


class Operand:
    """How a generated function obtains one operand: an inlined path, or a call."""

    __slots__ = ("fn", "path")

    def __init__(self, fn: Fn, path: tuple[str, ...] | None) -> None:
        self.fn = fn
        self.path = path if path is not None and len(path) <= INLINE_PATH_MAX else None


def load_lines(operand: Operand, target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
    """Source lines that assign `operand`'s value to local `target`.

    An inlined path ``v[k0][k1]`` fails with KeyError/TypeError on any irregularity; we then call
    the generic closure, which raises the precise CEL error (or resolves, e.g., a type name).
    """
    namespace[f"{slot}_fn"] = operand.fn
    if operand.path is None:
        return [f"{target} = {slot}_fn(v)"]
    subscripts = ""
    for position, key in enumerate(operand.path):
        namespace[f"{slot}_k{position}"] = key
        subscripts += f"[{slot}_k{position}]"
    return [
        "try:",
        f"    {target} = v{subscripts}",
        "except Exception:",
        f"    {target} = {slot}_fn(v)",
    ]


def build(name: str, lines: list[str], namespace: dict[str, Any]) -> Fn:
    """Define ``def <name>(v): <lines>`` in `namespace` and return it."""
    source = f"def {name}(v):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, f"<cel:{name}>", "exec"), namespace)  # noqa: S102 - trusted template
    function: Fn = namespace[name]
    return function
