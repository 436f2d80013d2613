"""The code's shape, enforced: layering, one public face with docstrings, and small functions and classes.

After trio's test_exports.py and TigerBeetle's tidy checks (STYLE.md items 1-3).

Data flows one way: http → engine → actors → rules/ledger → store. The layering tests read every module's imports
with `ast` and resolve each one to the fully-qualified `scrip_actor` module it loads (relative imports, names from a
package's face, and imports inside functions included), so no spelling of an import slips past a rule. Where the
code breaks a rule today, an allow-list entry names the import, so the hole stays visible until it is closed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

import scrip_actor

PACKAGE = Path(scrip_actor.__file__).parent
ROOT = "scrip_actor"

# Pure domain code: no runtime, no event loop, no database. Every one of these imports only others of them (and
# msgspec, lark, re2, celpy, the standard library) as this list was written, so none needed dropping; a module that
# stops being pure is to be fixed, not dropped from the list.
PURE = (
    "scrip_actor.amounts",
    "scrip_actor.ledger",
    "scrip_actor.balance_ops",
    "scrip_actor.rules",
    "scrip_actor.durations",
    "scrip_actor.counters",
    "scrip_actor._event_records",
    "scrip_actor.tiers",
    "scrip_actor.tier_effects",
    "scrip_actor.ids",
    "scrip_actor.cel",
    "scrip_actor.values",
    "scrip_actor.model",
    "scrip_actor.errors",
    "scrip_actor.cursors",
    "scrip_actor.budgets",
    "scrip_actor.report_totals",
    "scrip_actor.report_model",
)
# The runtime: tasks, storage, the edges. `scrip_actor` itself (the package face) re-exports the engine, so
# importing a name from it loads the whole runtime too.
RUNTIME = (
    "scrip_actor.actors",
    "scrip_actor.store",
    "scrip_actor.engine",
    "scrip_actor.http",
    "scrip_actor._records",
    "scrip_actor.verify",
    "scrip_actor._verify_reports",
    "scrip_actor.metrics",
    "scrip_actor._write_thread",
    "scrip_actor._residency",
    "scrip_actor._data_dir",
    "scrip_actor._lmdb_freelist",
    "scrip_actor._migrations",
)
# Third-party packages that mean an event loop, a database or a web server.
RUNTIME_THIRD_PARTY = ("trio", "outcome", "lmdb", "quart", "quart_trio", "hypercorn", "h11", "prometheus_client")
STORE_LAYER = (
    "scrip_actor.store",
    "scrip_actor._write_thread",
    "scrip_actor._residency",
    "scrip_actor._data_dir",
    "scrip_actor._lmdb_freelist",
    "scrip_actor._migrations",
)
# What the store layer sits under: it is called, it never calls up.
ABOVE_STORE = ("scrip_actor.engine", "scrip_actor.http", "scrip_actor.actors", "scrip_actor.metrics")
# What http must not reach around the engine's face for (the engine's private stages are checked separately).
HTTP_FORBIDDEN = ("scrip_actor.actors", "scrip_actor._records", "scrip_actor._write_thread")
ENGINE_FACE = "scrip_actor.engine"
# The step is the pure synchronous function of STYLE.md item 8: `scrip_actor.engine._step` and any
# `scrip_actor.engine._step_*` sibling (or `_step/` package) it is split into. Until one exists the rule passes.
STEP_PREFIX = "scrip_actor.engine._step"
STEP_FORBIDDEN_THIRD_PARTY = ("trio", "outcome", "lmdb", "time", "quart", "quart_trio", "hypercorn")

# Layering holes in today's code, each one an import a rule forbids: (importing module, imported module) → why it is
# tolerated for now. Close a hole by removing the import, then the entry (the test fails on a stale entry).
ALLOWED: dict[tuple[str, str], str] = {}

FUNCTION_LINES_MAX = 70
# The ratchet: functions that are longer today, with their current length. They may shrink, never grow, and no
# new entry may be added. Delete an entry when its function is split.
LONG_FUNCTIONS: dict[str, int] = {
    "scrip_actor.cel._macros.build_macro": 78,
    "scrip_actor.cel._parser.decode_string_literal": 81,
}
CLASS_LINES_MAX = 500
# The same ratchet for classes, counted from the `class` line to its last line.
LONG_CLASSES: dict[str, int] = {
    "scrip_actor.cel._compiler.Compiler": 666,
    # Being split into the stages of scrip_actor/engine/ right now: lower this number as it shrinks.
    "scrip_actor.engine._engine.Engine": 744,
}
# How far below its recorded number an entry may fall before the test asks for the number to be lowered, so that a
# class (or function) that shrank cannot quietly grow back.
CLASS_LINES_SLACK = 50
FUNCTION_LINES_SLACK = 10


def _module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of a file under the package, and whether it is a package's `__init__.py`."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _modules() -> list[tuple[str, bool, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name, is_package = _module_name(path)
        found.append((name, is_package, ast.parse(path.read_text(), str(path))))
    return found


def _is_module(name: str) -> bool:
    """Whether `name` (under `scrip_actor`) is a module or a package on disk, rather than a name inside one."""
    parts = name.split(".")
    assert parts[0] == ROOT
    path = PACKAGE.joinpath(*parts[1:])
    return path.is_dir() or path.with_suffix(".py").is_file()


def _within(module: str, prefixes: Iterable[str]) -> bool:
    """Whether `module` is one of `prefixes` or inside one (`scrip_actor.http.metrics` is not `scrip_actor.metrics`)."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def imported_modules(
    tree: ast.Module, module: str, *, is_package: bool, is_module: Callable[[str], bool] = _is_module
) -> set[str]:
    """Every module `tree` (the source of `module`) imports, fully qualified, lazy imports inside functions included.

    `from P import x` means the submodule `P.x` when `is_module("P.x")` says one exists, else the name `x` from P's
    face, which is P itself. Relative imports resolve against the importing module's package: a package's own
    `__init__.py` is that package, so `from . import x` there means `P.x`, not a sibling of P. Third-party imports
    come back as spelled (`trio`, `trio.lowlevel`); only `scrip_actor` names are resolved to submodules.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                assert node.level - 1 < len(parts), f"{module}: relative import beyond the top-level package"
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                source = node.module
            if not _within(source, (ROOT,)):
                found.add(source)
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if alias.name != "*" and is_module(submodule) else source)
    return found


def _import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(tree, name, is_package=is_package) for name, is_package, tree in _modules()}


def _breaches(rule: Callable[[str, str], bool]) -> set[tuple[str, str]]:
    """The (importer, imported) pairs that break `rule`, less the allow-list."""
    breaches = set()
    for importer, imported_all in _import_graph().items():
        for imported in imported_all:
            if rule(importer, imported) and (importer, imported) not in ALLOWED:
                breaches.add((importer, imported))
    return breaches


def test_imported_modules_resolves_every_import_form() -> None:
    on_disk = {"scrip_actor.engine", "scrip_actor.engine._engine", "scrip_actor.http", "scrip_actor.http.app"}
    on_disk |= {"scrip_actor._records", "scrip_actor.http.routing", "scrip_actor.store", "scrip_actor.cel"}

    def resolve(source: str, module: str = "scrip_actor.http.app", *, is_package: bool = False) -> set[str]:
        return imported_modules(ast.parse(source), module, is_package=is_package, is_module=on_disk.__contains__)

    assert resolve("import trio, scrip_actor.store") == {"trio", "scrip_actor.store"}
    assert resolve("import scrip_actor.engine._engine as e") == {"scrip_actor.engine._engine"}
    assert resolve("from trio import lowlevel") == {"trio"}
    # A submodule of the package face, then a name from it.
    assert resolve("from scrip_actor import _records") == {"scrip_actor._records"}
    assert resolve("from scrip_actor import Engine, store") == {"scrip_actor", "scrip_actor.store"}
    assert resolve("from scrip_actor.engine import Engine") == {"scrip_actor.engine"}
    assert resolve("from scrip_actor.engine import _engine") == {"scrip_actor.engine._engine"}
    assert resolve("from scrip_actor.engine._engine import Engine") == {"scrip_actor.engine._engine"}
    assert resolve("from scrip_actor.engine import *") == {"scrip_actor.engine"}
    # Relative, from a plain module: the package is the module's parent.
    assert resolve("from . import routing") == {"scrip_actor.http.routing"}
    assert resolve("from .routing import Endpoint") == {"scrip_actor.http.routing"}
    assert resolve("from .. import store") == {"scrip_actor.store"}
    assert resolve("from .. import Engine") == {"scrip_actor"}
    assert resolve("from ..engine import _engine") == {"scrip_actor.engine._engine"}
    assert resolve("from ..engine._engine import Engine") == {"scrip_actor.engine._engine"}
    # Relative, from a package's `__init__.py`: the package is the module itself.
    assert resolve("from . import _engine", "scrip_actor.engine", is_package=True) == {"scrip_actor.engine._engine"}
    assert resolve("from ._engine import Engine", "scrip_actor.engine", is_package=True) == {
        "scrip_actor.engine._engine"
    }
    assert resolve("from .. import cel", "scrip_actor.engine", is_package=True) == {"scrip_actor.cel"}
    assert resolve("from . import store", "scrip_actor", is_package=True) == {"scrip_actor.store"}
    # Lazy imports, inside functions, methods and branches, count the same.
    lazy = """
def f():
    from scrip_actor.engine._engine import Engine
class C:
    async def g(self):
        if True:
            import lmdb
        from . import routing
"""
    assert resolve(lazy) == {"scrip_actor.engine._engine", "lmdb", "scrip_actor.http.routing"}


def _pure_breaks(importer: str, imported: str) -> bool:
    """Pure code imports only pure `scrip_actor` modules (so nothing it imports can reach the runtime for it), and no
    event loop, database or web server."""
    if not _within(importer, PURE):
        return False
    if _within(imported, (ROOT,)):
        return not _within(imported, PURE)
    return _within(imported, RUNTIME_THIRD_PARTY)


def _store_breaks(importer: str, imported: str) -> bool:
    """The store layer is called; it never imports a layer above it, nor the package face that re-exports them."""
    return _within(importer, STORE_LAYER) and (imported == ROOT or _within(imported, ABOVE_STORE))


def _http_breaks(importer: str, imported: str) -> bool:
    """http reaches the engine through `scrip_actor.engine` (or `scrip_actor`) only, and never around it."""
    if not _within(importer, ("scrip_actor.http",)):
        return False
    engine_private = _within(imported, (ENGINE_FACE,)) and imported != ENGINE_FACE
    return engine_private or _within(imported, HTTP_FORBIDDEN)


def _step_breaks(importer: str, imported: str) -> bool:
    """The step imports pure modules and its own `_step*` parts only; no trio, no LMDB, no `time`."""
    if not importer.startswith(STEP_PREFIX):
        return False
    if _within(imported, (ROOT,)):
        return not (_within(imported, PURE) or imported.startswith(STEP_PREFIX))
    return _within(imported, STEP_FORBIDDEN_THIRD_PARTY)


def _engine_stage_breaks(importer: str, imported: str) -> bool:
    """Only the engine package imports its stages `scrip_actor.engine._*` (bench/ and tests/ are not scanned)."""
    return imported.startswith(ENGINE_FACE + "._") and not _within(importer, (ENGINE_FACE,))


RULES: dict[str, Callable[[str, str], bool]] = {
    "pure modules import only pure modules": _pure_breaks,
    "the store layer never calls up": _store_breaks,
    "http reaches the engine only through its face": _http_breaks,
    "the step is pure": _step_breaks,
    "the engine's stages stay private to the engine": _engine_stage_breaks,
}


def test_each_rule_catches_what_it_names() -> None:
    """Each rule on imports the code does not make today, so a rule that passes is known to be able to fail."""
    breaking = {
        _pure_breaks: [
            ("scrip_actor.ledger", "scrip_actor.store"),
            ("scrip_actor.cel._compiler", "scrip_actor.engine"),
            ("scrip_actor.rules", "scrip_actor"),
            ("scrip_actor.model", "scrip_actor.config"),
            ("scrip_actor.amounts", "trio"),
            ("scrip_actor.ids", "lmdb"),
        ],
        _store_breaks: [
            ("scrip_actor.store", "scrip_actor.engine._engine"),
            ("scrip_actor._migrations", "scrip_actor.metrics"),
            ("scrip_actor._write_thread", "scrip_actor.actors"),
            ("scrip_actor._residency", "scrip_actor.http.app"),
            ("scrip_actor._data_dir", "scrip_actor"),
        ],
        _http_breaks: [
            ("scrip_actor.http.app", "scrip_actor.engine._engine"),
            ("scrip_actor.http", "scrip_actor.engine._admission"),
            ("scrip_actor.http.routing", "scrip_actor.actors"),
            ("scrip_actor.http.server", "scrip_actor._records"),
        ],
        _step_breaks: [
            ("scrip_actor.engine._step", "trio"),
            ("scrip_actor.engine._step", "time"),
            ("scrip_actor.engine._step", "scrip_actor.store"),
            ("scrip_actor.engine._step", "scrip_actor.engine._engine"),
            ("scrip_actor.engine._step_effects", "lmdb"),
        ],
        _engine_stage_breaks: [
            ("scrip_actor.verify", "scrip_actor.engine._engine"),
            ("scrip_actor", "scrip_actor.engine._x"),
        ],
    }
    allowed = {
        _pure_breaks: [("scrip_actor.rules", "scrip_actor.cel"), ("scrip_actor.cel._parser", "lark")],
        _store_breaks: [
            ("scrip_actor.store", "scrip_actor._migrations"),
            ("scrip_actor._migrations", "scrip_actor.model"),
        ],
        _http_breaks: [
            ("scrip_actor.http.app", "scrip_actor.engine"),
            ("scrip_actor.http.app", "scrip_actor"),
            ("scrip_actor.http.metrics", "scrip_actor.metrics"),
        ],
        _step_breaks: [
            ("scrip_actor.engine._step", "scrip_actor.ledger"),
            ("scrip_actor.engine._step", "scrip_actor.engine._step_effects"),
            ("scrip_actor.engine._engine", "trio"),
        ],
        _engine_stage_breaks: [("scrip_actor.engine", "scrip_actor.engine._engine")],
    }
    for rule, pairs in breaking.items():
        assert all(rule(*pair) for pair in pairs), (rule.__name__, [pair for pair in pairs if not rule(*pair)])
    for rule, pairs in allowed.items():
        assert not any(rule(*pair) for pair in pairs), (rule.__name__, [pair for pair in pairs if rule(*pair)])


def test_the_allow_list_has_no_stale_entries() -> None:
    graph = _import_graph()
    stale = [
        pair
        for pair in ALLOWED
        if pair[1] not in graph.get(pair[0], set()) or not any(rule(*pair) for rule in RULES.values())
    ]
    assert not stale, f"layering holes closed (delete their ALLOWED entries): {stale}"


def test_pure_modules_import_nothing_from_the_runtime() -> None:
    breaches = _breaches(_pure_breaks)
    assert not breaches, f"pure modules import impure ones: {sorted(breaches)}"


def test_the_store_layer_never_calls_up() -> None:
    breaches = _breaches(_store_breaks)
    assert not breaches, f"the store layer imports a layer above it: {sorted(breaches)}"


def test_http_reaches_the_engine_only_through_its_face() -> None:
    breaches = _breaches(_http_breaks)
    assert not breaches, f"http goes around the engine's face: {sorted(breaches)}"


def test_the_step_is_pure() -> None:
    """Passes trivially until `scrip_actor.engine._step` exists, then bites."""
    breaches = _breaches(_step_breaks)
    assert not breaches, f"the step imports impure modules: {sorted(breaches)}"


def test_the_engine_stages_stay_private_to_the_engine() -> None:
    breaches = _breaches(_engine_stage_breaks)
    assert not breaches, f"modules outside the engine import its stages: {sorted(breaches)}"


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


def _lengths(kinds: type[ast.AST] | tuple[type[ast.AST], ...], lines_max: int) -> dict[str, int]:
    """`module.name` → lines, from the definition's first line to its last, for definitions over `lines_max`."""
    too_long: dict[str, int] = {}
    for name, _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > lines_max:
                    too_long[f"{name}.{node.name}"] = length
    return too_long


def _check_ratchet(table: str, too_long: dict[str, int], recorded: dict[str, int], lines_max: int, slack: int) -> None:
    """Nothing over `lines_max` but `recorded`'s entries, none longer than recorded, none far shorter either."""
    grown = {key: n for key, n in too_long.items() if n > recorded.get(key, lines_max)}
    assert (
        not grown
    ), f"over {lines_max} lines (split them; a {table} entry may never grow, and no new entry may be added): {grown}"
    updates = [
        f"{table}[{key!r}] = {too_long[key]}" if key in too_long else f"del {table}[{key!r}]  # now under {lines_max}"
        for key, n in recorded.items()
        if too_long.get(key, 0) < n - slack
    ]
    assert not updates, (
        f"{table} entries shrank by more than {slack} lines, or are gone: well done. Ratchet them down so they cannot "
        f"grow back, by making these edits in tests/unit/test_structure.py: " + "; ".join(updates)
    )


def test_functions_stay_small() -> None:
    too_long = _lengths((ast.FunctionDef, ast.AsyncFunctionDef), FUNCTION_LINES_MAX)
    _check_ratchet("LONG_FUNCTIONS", too_long, LONG_FUNCTIONS, FUNCTION_LINES_MAX, FUNCTION_LINES_SLACK)


def test_classes_stay_small() -> None:
    too_long = _lengths(ast.ClassDef, CLASS_LINES_MAX)
    _check_ratchet("LONG_CLASSES", too_long, LONG_CLASSES, CLASS_LINES_MAX, CLASS_LINES_SLACK)
