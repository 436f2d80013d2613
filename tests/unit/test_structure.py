"""The code's shape, enforced: layering, one public face with docstrings, and small functions.

After trio's test_exports.py and TigerBeetle's tidy checks (STYLE.md items 1-3).
"""

from __future__ import annotations

import ast
from pathlib import Path

import scrip_actor

PACKAGE = Path(scrip_actor.__file__).parent
# Pure domain code must not reach the runtime or the edges.
PURE = ("amounts", "ledger", "rules", "durations", "ids", "cel")
IMPURE = ("actors", "store", "engine", "http", "_records", "verify", "metrics")
FUNCTION_LINES_MAX = 70
# The ratchet: functions that are longer today, with their current length. They may shrink, never grow, and no
# new entry may be added. Delete an entry when its function is split.
LONG_FUNCTIONS: dict[str, int] = {
    "scrip_actor.cel._macros.build_macro": 91,
    "scrip_actor.cel._parser.decode_string_literal": 81,
}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append((name, ast.parse(path.read_text(), str(path))))
    return found


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pure_modules_import_nothing_from_the_runtime() -> None:
    for name, tree in _modules():
        parts = name.split(".")
        if len(parts) < 2 or parts[1].removesuffix("") not in PURE:
            continue
        for imported in _imports(tree):
            layer = imported.split(".")[1] if imported.startswith("scrip_actor.") else None
            assert layer not in IMPURE, f"{name} (pure) imports {imported}"
            assert imported.split(".")[0] not in (
                "trio",
                "lmdb",
                "quart",
                "quart_trio",
                "hypercorn",
            ), f"{name} imports {imported}"


def test_public_names_exist_and_teach() -> None:
    for public in scrip_actor.__all__:
        value = getattr(scrip_actor, public)
        assert (getattr(value, "__doc__", None) or "").strip(), f"scrip_actor.{public} has no docstring"
    assert sorted(scrip_actor.__all__) == sorted(set(scrip_actor.__all__))


def test_public_engine_methods_have_docstrings() -> None:
    for attribute in dir(scrip_actor.Engine):
        if attribute.startswith("_"):
            continue
        member = getattr(scrip_actor.Engine, attribute)
        if callable(member) or isinstance(member, property):
            assert (member.__doc__ or "").strip(), f"Engine.{attribute} has no docstring"


def test_functions_stay_small() -> None:
    too_long: dict[str, int] = {}
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES_MAX:
                    too_long[f"{name}.{node.name}"] = length
    grown = {key: n for key, n in too_long.items() if n > LONG_FUNCTIONS.get(key, FUNCTION_LINES_MAX)}
    assert not grown, f"functions over {FUNCTION_LINES_MAX} lines (split them, or they grew): {grown}"
