"""Compile a cel-python lark parse tree into nested Python closures, once per expression.

Each CEL node becomes a `_Node` whose ``fn(variables)`` computes its value. Errors are Python
exceptions (mostly `CelEvaluationError`); ``&&``, ``||`` and the ``all``/``exists`` macros catch
them to implement CEL's commutative error absorption (``error && false`` is ``false``), and
`CompiledExpression.evaluate` turns anything else into `CelEvaluationError`.

Compile-time work that pays off at run time:
- constant folding of scalar sub-expressions (``duration("1h")``, ``-5``, ``2 * 60``);
- variable paths (``event.amount``) become one chained subscript instead of a call per step;
- comparisons and ``in`` with a literal, ``&&``/``||`` chains and string predicates are emitted
  from small templates (`_codegen`) so a typical clause costs one Python call;
- literal regular expressions are compiled with RE2 once.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any, Final

import lark

from . import _operators as ops
from ._codegen import Emitter, Fn, Operand, build, build_from_emitter, literal, load_lines
from ._cost import (
    ACCESSOR_UNITS,
    ACCESSOR_ZONE_UNITS,
    CHARGED_OPERATORS,
    CONSTANT_TIME_FUNCTIONS,
    ERROR_UNITS,
    FUNCTION_UNITS,
    TEXT_CHARS_PER_UNIT,
    TEXT_FREE_CHARS_MAX,
    call_charged,
    call_one_charged,
    charge,
    contained_in_charged,
    duration_charged,
    regex_units,
)
from ._errors import CelCompileError, CelCostExceeded, CelEvaluationError
from ._functions import GLOBAL_FUNCTIONS, METHOD_FUNCTIONS, compile_regex
from ._macros import build_macro
from ._parser import (
    AST_DEPTH_MAX,
    NESTING_DEPTH_MAX,
    check_identifier,
    decode_string_literal,
    integer_literal_value,
    position_of,
)
from ._values import (
    INT64_MAX,
    INT64_MIN,
    TYPE_NAMES,
    UINT64_MAX,
    CelUint,
    no_overload,
)

Tree = lark.Tree[lark.Token]

_NO_CONSTANT: Final = object()

_PASS_THROUGH: Final = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary", "member", "primary"}
)
_RELATIONS: Final[dict[str, tuple[str, Callable[[Any, Any], bool]]]] = {
    "relation_lt": ("<", ops.less),
    "relation_le": ("<=", ops.less_equal),
    "relation_gt": (">", ops.greater),
    "relation_ge": (">=", ops.greater_equal),
    "relation_eq": ("==", ops.equal),
    "relation_ne": ("!=", ops.not_equal),
}
#: Constant types whose CEL ordering and equality are Python's, between two values of that type.
_SAME_TYPE_ORDERED: Final = frozenset({str, bytes, _dt.timedelta, _dt.datetime})
_FLIPPED: Final = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ARITHMETIC: Final[dict[str, tuple[str, Callable[[Any, Any], Any]]]] = {
    "addition_add": ("+", ops.add),
    "addition_sub": ("-", ops.subtract),
    "multiplication_mul": ("*", ops.multiply),
    "multiplication_div": ("/", ops.divide),
    "multiplication_mod": ("%", ops.modulo),
}
_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_STRING_METHODS: Final = {"contains": "in", "startsWith": "startswith", "endsWith": "endswith"}


class _Node:
    """A compiled sub-expression: its closure plus facts the parent can specialise on."""

    __slots__ = ("body", "constant", "emit", "fn", "items", "path")

    def __init__(
        self,
        fn: Fn,
        *,
        constant: Any = _NO_CONSTANT,
        path: tuple[str, ...] | None = None,
        items: tuple[Any, ...] | None = None,
        emit: Emitter | None = None,
        body: Callable[[dict[str, Any]], list[str]] | None = None,
    ) -> None:
        self.fn = fn
        self.body = body  # a generated function body that returns the value (root inlining)
        self.emit = emit  # inline source for this node, so a parent can avoid calling fn
        self.constant = constant  # a folded scalar value, or _NO_CONSTANT
        self.path = path  # ("event", "amount") for a variable path
        self.items = items  # the values of an all-constant list literal

    @property
    def is_constant(self) -> bool:
        return self.constant is not _NO_CONSTANT

    def operand(self) -> Operand:
        return Operand(self.fn, self.path, self.emit)


def _constant(value: Any) -> _Node:
    return _Node(lambda v: value, constant=value)


def _raiser(error: CelEvaluationError) -> Fn:
    def fail(v: dict[str, Any]) -> Any:
        raise CelEvaluationError(error.message)

    return fail


def _not_bool(value: Any) -> CelEvaluationError:
    return no_overload("logical operator", value)


def _emitted(name: str, emit: Emitter) -> _Node:
    """A node whose code can be inlined by its parent, or run alone as a generated function."""

    def body(namespace: dict[str, Any]) -> list[str]:
        return [*emit("result", "r", namespace), "return result"]

    return _Node(build_from_emitter(name, emit), emit=emit, body=body)


def _is_number_constant(node: _Node) -> bool:
    return node.is_constant and type(node.constant) in (int, float, CelUint)


class Compiler:
    """Turns one parse tree into a `_Node` tree; create one per expression."""

    def __init__(self) -> None:
        self._ast_depth = 0
        self._nesting = 0
        self._counter = 0
        self._nodes = 0  # nodes compiled so far: a comprehension's body size is its per-iteration cost
        self.uses_budget = False  # some node charges the cost budget (see _cost)

    @property
    def nodes(self) -> int:
        """Nodes compiled: the expression's static size, in cost units."""
        return self._nodes

    # -- entry and dispatch -------------------------------------------------------------------

    def compile(self, tree: Tree) -> _Node:
        while tree.data in _PASS_THROUGH and len(tree.children) == 1:
            child = tree.children[0]
            if not isinstance(child, lark.Tree):
                break
            tree = child
        self._ast_depth += 1
        self._nodes += 1
        if self._ast_depth > AST_DEPTH_MAX:
            raise CelCompileError("expression nested too deeply", *position_of(tree))
        try:
            handler = getattr(self, f"_compile_{tree.data}", None)
            if handler is None:
                raise CelCompileError(f"unsupported syntax: {tree.data}", *position_of(tree))
            node: _Node = handler(tree)
            return node
        finally:
            self._ast_depth -= 1

    def _nested(self, tree: Tree) -> _Node:
        """Compile a sub-tree that sits inside brackets, enforcing the nesting limit."""
        self._nesting += 1
        if self._nesting > NESTING_DEPTH_MAX:
            raise CelCompileError(f"expression nests brackets deeper than {NESTING_DEPTH_MAX}", *position_of(tree))
        try:
            return self.compile(tree)
        finally:
            self._nesting -= 1

    def _name(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}_{self._counter}"

    @staticmethod
    def _fold(node: _Node, operands: list[_Node]) -> _Node:
        """Evaluate an operator over constant operands now, if that succeeds with a scalar."""
        if not all(operand.is_constant for operand in operands):
            return node
        try:
            value = node.fn({})
        except Exception:
            return node  # keep the run-time error: CEL reports it at evaluation
        if isinstance(value, list | tuple | dict):
            return node  # never share a mutable result between evaluations
        return _constant(value)

    # -- literals and identifiers -------------------------------------------------------------

    def _compile_literal(self, tree: Tree) -> _Node:
        token = tree.children[0]
        assert isinstance(token, lark.Token)
        text = str(token)
        kind = token.type
        if kind == "INT_LIT":
            value = integer_literal_value(token, text)
            if not INT64_MIN <= value <= INT64_MAX:
                raise CelCompileError(f"integer literal out of range: {text}", *position_of(token))
            return _constant(value)
        if kind == "UINT_LIT":
            value = integer_literal_value(token, text[:-1])
            if value < 0:
                return _Node(_raiser(CelEvaluationError("no such overload: -_(uint)")))
            if value > UINT64_MAX:
                raise CelCompileError(f"unsigned literal out of range: {text}", *position_of(token))
            return _constant(CelUint(value))
        if kind == "FLOAT_LIT":
            return _constant(float(text))
        if kind in ("STRING_LIT", "MLSTRING_LIT", "BYTES_LIT"):
            return _constant(decode_string_literal(token))
        if kind == "BOOL_LIT":
            return _constant(text == "true")
        if kind == "NULL_LIT":
            return _constant(None)
        raise CelCompileError(f"unsupported literal: {text}", *position_of(token))

    def _compile_ident(self, tree: Tree) -> _Node:
        token = tree.children[0]
        assert isinstance(token, lark.Token)
        check_identifier(token)
        return self._variable(str(token))

    _compile_dot_ident = _compile_ident

    @staticmethod
    def _variable(name: str) -> _Node:
        type_value = TYPE_NAMES.get(name)
        message = f"undeclared reference to '{name}'"

        def variable(v: dict[str, Any]) -> Any:
            try:
                return v[name]
            except KeyError:
                pass
            if type_value is not None:
                return type_value
            raise CelEvaluationError(message)

        return _Node(variable, path=(name,))

    def _compile_paren_expr(self, tree: Tree) -> _Node:
        # `(a).b` selects exactly like `a.b`, so the inner node (and its path) is kept as is.
        return self._nested(tree.children[0])  # type: ignore[arg-type]

    # -- containers ---------------------------------------------------------------------------

    def _expressions(self, tree: Tree, index: int) -> list[_Node]:
        """The compiled members of the optional exprlist at `tree.children[index]`."""
        if len(tree.children) <= index:
            return []
        exprlist = tree.children[index]
        assert isinstance(exprlist, lark.Tree)
        return [self._nested(child) for child in exprlist.children]  # type: ignore[arg-type]

    def _compile_list_lit(self, tree: Tree) -> _Node:
        elements = self._expressions(tree, 0)
        if all(element.is_constant for element in elements):
            items = tuple(element.constant for element in elements)
            return _Node(lambda v: list(items), items=items)
        fns = [element.fn for element in elements]
        return _Node(lambda v: [fn(v) for fn in fns])

    def _compile_map_lit(self, tree: Tree) -> _Node:
        pairs: list[tuple[Fn, Fn]] = []
        if tree.children:
            inits = tree.children[0]
            assert isinstance(inits, lark.Tree)
            children = [self._nested(child) for child in inits.children]  # type: ignore[arg-type]
            pairs = [(children[i].fn, children[i + 1].fn) for i in range(0, len(children), 2)]

        def map_literal(v: dict[str, Any]) -> dict[Any, Any]:
            result: dict[Any, Any] = {}
            for key_fn, value_fn in pairs:
                key = key_fn(v)
                if type(key) not in (str, int, CelUint, bool):
                    raise CelEvaluationError(f"unsupported key type: {type(key).__name__}")
                if key in result:
                    raise CelEvaluationError(f"Failed with repeated key: {key}")
                result[key] = value_fn(v)
            return result

        return _Node(map_literal)

    def _compile_member_object(self, tree: Tree) -> _Node:
        raise CelCompileError("message construction is not supported", *position_of(tree))

    # -- member access ------------------------------------------------------------------------

    def _compile_member_dot(self, tree: Tree) -> _Node:
        operand_tree, field_token = tree.children
        assert isinstance(field_token, lark.Token)
        operand = self.compile(operand_tree)  # type: ignore[arg-type]
        field = str(field_token)
        if operand.path is not None:
            qualified = ".".join((*operand.path, field))
            if qualified in TYPE_NAMES:
                return _constant(TYPE_NAMES[qualified])
        operand_fn = operand.fn
        select = ops.select
        if operand.path is None:

            def select_field(v: dict[str, Any]) -> Any:
                return select(operand_fn(v), field)

        else:
            # CEL resolves `a.b.c` to a variable literally named "a.b.c" (longest prefix first)
            # before treating it as field selection; the engine never binds such names, so the
            # check lives only on this generic path, not in the inlined fast path.
            qualified_name = ".".join((*operand.path, field))

            def select_field(v: dict[str, Any]) -> Any:
                if qualified_name in v:
                    return v[qualified_name]
                return select(operand_fn(v), field)

        path = (*operand.path, field) if operand.path is not None else None
        return _Node(select_field, path=path)

    def _compile_member_index(self, tree: Tree) -> _Node:
        container = self.compile(tree.children[0])  # type: ignore[arg-type]
        key = self._nested(tree.children[1])  # type: ignore[arg-type]
        container_fn = container.fn
        index = ops.index
        if key.is_constant and type(key.constant) is str:
            constant_key = key.constant

            def index_string(v: dict[str, Any]) -> Any:
                found = container_fn(v)
                if type(found) is dict:
                    try:
                        return found[constant_key]
                    except KeyError:
                        pass
                return index(found, constant_key)

            path = (*container.path, constant_key) if container.path is not None else None
            return _Node(index_string, path=path)
        key_fn = key.fn
        return self._fold(_Node(lambda v: index(container_fn(v), key_fn(v))), [container, key])

    # -- operators ----------------------------------------------------------------------------

    def _compile_expr(self, tree: Tree) -> _Node:
        condition, if_true, if_false = (self.compile(child) for child in tree.children)  # type: ignore[arg-type]
        condition_fn, true_fn, false_fn = condition.fn, if_true.fn, if_false.fn

        def ternary(v: dict[str, Any]) -> Any:
            chosen = condition_fn(v)
            if chosen is True:
                return true_fn(v)
            if chosen is False:
                return false_fn(v)
            raise no_overload("_?_:_", chosen)

        return ternary_fold(_Node(ternary), condition, if_true, if_false)

    def _chain(self, tree: Tree) -> list[_Node]:
        """Flatten a left-deep ``a || b || c`` (or ``&&``) chain without recursing per link."""
        kind = tree.data
        rights: list[Tree] = []
        while tree.data == kind and len(tree.children) == 2:
            left, right = tree.children
            assert isinstance(left, lark.Tree)
            assert isinstance(right, lark.Tree)
            rights.append(right)
            tree = left
        operands = [tree, *reversed(rights)]
        return [self.compile(operand) for operand in operands]

    def _compile_conditionalor(self, tree: Tree) -> _Node:
        return self._logical(self._chain(tree), absorbing=True)

    def _compile_conditionaland(self, tree: Tree) -> _Node:
        return self._logical(self._chain(tree), absorbing=False)

    def _logical(self, operands: list[_Node], *, absorbing: bool) -> _Node:
        """``||`` (absorbing=True: any true wins) or ``&&`` (any false wins) over n operands.

        Errors and non-bool values are remembered, not raised, until every operand has had the
        chance to decide the result: CEL's logical operators are commutative over errors.
        """
        decisive = "True" if absorbing else "False"
        sources = [operand.operand() for operand in operands]

        def body(namespace: dict[str, Any]) -> list[str]:
            namespace["_not_bool"] = _not_bool
            namespace["_CostExceeded"] = CelCostExceeded
            namespace["_charge"] = charge
            namespace["_error_units"] = ERROR_UNITS
            lines = ["error = None"]
            for position, source in enumerate(sources):
                lines += ["try:", *("    " + line for line in load_lines(source, "x", f"o{position}", namespace))]
                lines += _logical_tail(decisive, absorbing)
            lines += ["if error is not None:", "    raise error", f"return {'False' if absorbing else 'True'}"]
            return lines

        namespace: dict[str, Any] = {}
        name = self._name("logical_or" if absorbing else "logical_and")
        node = _Node(build(name, body(namespace), namespace), body=body)
        return self._fold(node, operands)

    def _compile_relation(self, tree: Tree) -> _Node:
        operator_tree, right_tree = tree.children
        assert isinstance(operator_tree, lark.Tree)
        left = self.compile(operator_tree.children[0])  # type: ignore[arg-type]
        right = self.compile(right_tree)  # type: ignore[arg-type]
        if operator_tree.data == "relation_in":
            return self._fold(self._membership(left, right), [left, right])
        symbol, generic = _RELATIONS[operator_tree.data]
        if _is_number_constant(right) and not left.is_constant:
            node = self._compare_number(left, symbol, right.constant, generic)
        elif _is_number_constant(left) and not right.is_constant:
            node = self._compare_number(right, _FLIPPED[symbol], left.constant, _swap(generic))
        elif symbol in ("==", "!=") and right.is_constant and type(right.constant) is str:
            node = self._compare_string(left, symbol, right.constant)
        elif symbol in ("==", "!=") and left.is_constant and type(left.constant) is str:
            node = self._compare_string(right, symbol, left.constant)
        elif right.is_constant and type(right.constant) in _SAME_TYPE_ORDERED and not left.is_constant:
            node = self._compare_same_type(left, symbol, right.constant, generic)
        else:
            node = self._binary(left, right, generic)
        return self._fold(node, [left, right])

    def _compare_same_type(
        self, operand: _Node, symbol: str, constant: Any, generic: Callable[[Any, Any], bool]
    ) -> _Node:
        """``now - event.at < duration('6h')``: same-type values compare natively in Python."""
        source = operand.operand()

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_c"] = constant
            namespace[f"{slot}_T"] = type(constant)
            namespace[f"{slot}_g"] = generic
            x = f"{slot}_x"
            return [
                *load_lines(source, x, f"{slot}o", namespace),
                f"if type({x}) is {slot}_T:",
                f"    {target} = {x} {symbol} {slot}_c",
                "else:",
                f"    {target} = {slot}_g({x}, {slot}_c)",
            ]

        return _emitted(self._name("compare_same_type"), emit)

    def _binary(self, left: _Node, right: _Node, function: Callable[[Any, Any], Any]) -> _Node:
        """``function(left, right)`` with both operands loaded inline (paths, constants, code)."""
        left_source, right_source = left.operand(), right.operand()
        left_constant, right_constant = left.constant, right.constant
        charged = CHARGED_OPERATORS.get(function)  # work that grows with the operands is charged
        self.uses_budget |= charged is not None
        arguments = "v, " if charged is not None else ""

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_f"] = charged or function
            lines = []
            for side, source, constant in (("l", left_source, left_constant), ("r", right_source, right_constant)):
                if constant is not _NO_CONSTANT:
                    namespace[f"{slot}_{side}"] = constant
                else:
                    lines += load_lines(source, f"{slot}_{side}", f"{slot}{side}", namespace)
            return [*lines, f"{target} = {slot}_f({arguments}{slot}_l, {slot}_r)"]

        return _emitted(self._name("binary"), emit)

    def _compare_number(self, operand: _Node, symbol: str, constant: Any, generic: Callable[[Any, Any], bool]) -> _Node:
        """``x <op> 100``: an int or float `x` compares natively; anything else goes generic.

        When an int meets a double, the int is converted to double first (as cel-go does, and
        as the conformance suite requires for values beyond 2**53).
        """
        source = operand.operand()
        as_float = type(constant) is float

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_c"] = constant
            namespace[f"{slot}_cf"] = float(constant)
            namespace[f"{slot}_g"] = generic
            x, t = f"{slot}_x", f"{slot}_t"
            int_side = f"float({x})" if as_float else x
            int_constant = f"{slot}_c" if not as_float else f"{slot}_cf"
            return [
                *load_lines(source, x, f"{slot}o", namespace),
                f"{t} = type({x})",
                f"if {t} is _float:",
                f"    {target} = {x} {symbol} {slot}_cf",
                f"elif {t} is _int:",
                f"    {target} = {int_side} {symbol} {int_constant}",
                "else:",
                f"    {target} = {slot}_g({x}, {slot}_c)",
            ]

        return _emitted(self._name("compare"), emit)

    def _compare_string(self, operand: _Node, symbol: str, constant: str) -> _Node:
        """``x == 'gold'``: Python ``==`` with a str is exactly CEL equality (only a str can match)."""
        source = operand.operand()

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            x = f"{slot}_x"
            return [*load_lines(source, x, f"{slot}o", namespace), f"{target} = {x} {symbol} {literal(constant)}"]

        return _emitted(self._name("compare_string"), emit)

    def _membership(self, element: _Node, container: _Node) -> _Node:
        items = container.items
        if items is not None and items and all(type(item) is str for item in items):
            source = element.operand()
            members = frozenset(items)

            def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
                namespace[f"{slot}_s"] = members
                x = f"{slot}_x"
                return [
                    *load_lines(source, x, f"{slot}o", namespace),
                    f"{target} = type({x}) is _str and {x} in {slot}_s",
                ]

            return _emitted(self._name("in_strings"), emit)
        element_fn, container_fn = element.fn, container.fn
        self.uses_budget = True
        return _Node(lambda v: contained_in_charged(v, element_fn(v), container_fn(v)))

    def _compile_addition(self, tree: Tree) -> _Node:
        return self._arithmetic_chain(tree)

    _compile_multiplication = _compile_addition

    def _arithmetic_chain(self, tree: Tree) -> _Node:
        """Left-deep ``a + b - c`` chains, walked iteratively so long sums do not recurse."""
        steps: list[tuple[str, Tree]] = []
        while len(tree.children) == 2 and isinstance(tree.children[0], lark.Tree):
            operator_tree, right = tree.children
            assert isinstance(operator_tree, lark.Tree)
            if operator_tree.data not in _ARITHMETIC:
                break
            steps.append((operator_tree.data, right))  # type: ignore[arg-type]
            tree = operator_tree.children[0]  # type: ignore[assignment]
        node = self.compile(tree)
        for operator_name, right_tree in reversed(steps):
            right = self.compile(right_tree)
            node = self._fold(self._arithmetic(operator_name, node, right), [node, right])
        return node

    def _arithmetic(self, operator_name: str, left: _Node, right: _Node) -> _Node:
        symbol, generic = _ARITHMETIC[operator_name]
        if symbol in "+-*" and type(right.constant) in (int, float) and not left.is_constant:
            # x * 10 with a double x: the engine's common case (see the promotion deviation).
            namespace: dict[str, Any] = {
                "c": right.constant,
                "cf": float(right.constant),
                "generic": generic,
                "_float": float,
            }
            lines = load_lines(left.operand(), "x", "o", namespace)
            lines += ["if type(x) is _float:", f"    return x {symbol} cf", "return generic(x, c)"]
            return _Node(build(self._name("arithmetic"), lines, namespace))
        return self._binary(left, right, generic)

    def _compile_unary(self, tree: Tree) -> _Node:
        operators: list[str] = []
        while len(tree.children) == 2:
            operator_tree, tree = tree.children  # type: ignore[assignment]
            assert isinstance(operator_tree, lark.Tree)
            operators.append(operator_tree.data)
        node = self.compile(tree)
        for operator_name in reversed(operators):
            if operator_name == "unary_not" and not node.is_constant:
                node = self._negation(node)
                continue
            operand_fn = node.fn
            function = ops.logical_not if operator_name == "unary_not" else ops.negate
            node = self._fold(_Node(lambda v, f=function, g=operand_fn: f(g(v))), [node])
        return node

    def _negation(self, operand: _Node) -> _Node:
        """``!x``, inlining `x` when it can be (``!has(event.coupon)`` is one function)."""
        source = operand.operand()

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_not"] = ops.logical_not
            x = f"{slot}_x"
            return [
                *load_lines(source, x, f"{slot}o", namespace),
                f"if {x} is True:",
                f"    {target} = False",
                f"elif {x} is False:",
                f"    {target} = True",
                "else:",
                f"    {target} = {slot}_not({x})",
            ]

        return _emitted(self._name("negation"), emit)

    # -- calls and macros ---------------------------------------------------------------------

    def _compile_ident_arg(self, tree: Tree) -> _Node:
        name_token = tree.children[0]
        assert isinstance(name_token, lark.Token)
        name = str(name_token)
        if name == "has":
            return self._has(tree)
        arguments = self._expressions(tree, 1)
        if name == "now" and not arguments:
            return _Node(self._variable("now").fn)
        return self._global_call(name, arguments, name_token)

    _compile_dot_ident_arg = _compile_ident_arg

    def _global_call(self, name: str, arguments: list[_Node], where: lark.Token | Tree) -> _Node:
        entry = GLOBAL_FUNCTIONS.get(name)
        if entry is None:
            return self._unknown_function(name, arguments)
        function, arities = entry
        if len(arguments) not in arities:
            raise CelCompileError(
                f"function {name} takes {'/'.join(map(str, sorted(arities)))} arguments",
                *position_of(where),
            )
        if name in ("matches", "contains", "startsWith", "endsWith"):
            return self._string_predicate(name, arguments[0], arguments[1])
        fns = [argument.fn for argument in arguments]
        if name not in CONSTANT_TIME_FUNCTIONS:
            return self._weighed(name, self._fold(self._charged_call(name, function, fns), arguments))
        if len(fns) == 1:
            only = fns[0]
            node = _Node(lambda v: function(only(v)))
        elif len(fns) == 2:
            first, second = fns
            node = _Node(lambda v: function(first(v), second(v)))
        else:
            node = _Node(lambda v: function(*[fn(v) for fn in fns]))
        return self._weighed(name, self._fold(node, arguments))

    def _weighed(self, name: str, node: _Node, units: int | None = None) -> _Node:
        """Count a slow call's static weight (`FUNCTION_UNITS`) into the expression's size, unless it was folded."""
        if not node.is_constant:
            self._nodes += FUNCTION_UNITS.get(name, 0) if units is None else units
        return node

    def _charged_call(self, name: str, function: Callable[..., Any], fns: list[Fn]) -> _Node:
        """A library call whose work grows with its arguments (conversions, ``sets.*``): charged first."""
        self.uses_budget = True
        if len(fns) == 1:  # conversions: only a text argument can be long (int(), timestamp(), bytes()...)
            only = fns[0]
            if function is GLOBAL_FUNCTIONS["duration"][0]:
                return _Node(lambda v: duration_charged(v, function, only(v)))
            return _Node(lambda v: call_one_charged(v, function, only(v)))
        return _Node(lambda v: call_charged(v, name, function, [fn(v) for fn in fns]))

    @staticmethod
    def _unknown_function(name: str, arguments: list[_Node]) -> _Node:
        """An undeclared function is an *evaluation* error, as the CEL spec requires.

        So ``f_unknown(1) || true`` is true. The arguments are still evaluated first, so their
        own errors take precedence, as they would in an interpreter.
        """
        fns = [argument.fn for argument in arguments]
        message = f"undeclared reference to function '{name}'"

        def unknown_function(v: dict[str, Any]) -> Any:
            for fn in fns:
                fn(v)
            raise CelEvaluationError(message)

        return _Node(unknown_function)

    def _has(self, tree: Tree) -> _Node:
        arguments = tree.children[1:]
        inner = arguments[0].children if arguments and isinstance(arguments[0], lark.Tree) else []
        target: Any = inner[0] if len(inner) == 1 else None
        while isinstance(target, lark.Tree) and target.data in _PASS_THROUGH and len(target.children) == 1:
            target = target.children[0]
        if not isinstance(target, lark.Tree) or target.data != "member_dot":
            raise CelCompileError("has() needs a field selection such as has(a.b)", *position_of(tree))
        operand = self._nested(target.children[0])  # type: ignore[arg-type]
        field = str(target.children[1])
        source = operand.operand()

        def emit(target_name: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_field"] = field
            namespace[f"{slot}_fail"] = no_overload
            x = f"{slot}_x"
            return [
                *load_lines(source, x, f"{slot}o", namespace),
                f"if type({x}) is _dict:",
                f"    {target_name} = {slot}_field in {x}",
                "else:",
                f"    raise {slot}_fail('has', {x})",
            ]

        return _emitted(self._name("has"), emit)

    def _compile_member_dot_arg(self, tree: Tree) -> _Node:
        receiver_tree = tree.children[0]
        name_token = tree.children[1]
        assert isinstance(name_token, lark.Token)
        assert isinstance(receiver_tree, lark.Tree)
        name = str(name_token)
        if name in _MACROS:
            return self._macro(tree, name)
        receiver = self.compile(receiver_tree)
        arguments = self._expressions(tree, 2)
        if receiver.path is not None:
            qualified = ".".join((*receiver.path, name))
            entry = GLOBAL_FUNCTIONS.get(qualified)
            if entry is not None and len(arguments) in entry[1]:
                return self._global_call(qualified, arguments, name_token)
        entry = METHOD_FUNCTIONS.get(name)
        if entry is None:
            return self._unknown_function(name, [receiver, *arguments])
        function, arities = entry
        if len(arguments) not in arities:
            raise CelCompileError(
                f"method {name} takes {'/'.join(map(str, sorted(arities)))} arguments", *position_of(name_token)
            )
        if name in ("matches", "contains", "startsWith", "endsWith"):
            return self._string_predicate(name, receiver, arguments[0])
        receiver_fn = receiver.fn
        if not arguments:
            node = _Node(lambda v: function(receiver_fn(v)))
        else:
            argument_fn = arguments[0].fn
            node = _Node(lambda v: function(receiver_fn(v), argument_fn(v)))
        units = 0 if name == "size" else ACCESSOR_ZONE_UNITS if arguments else ACCESSOR_UNITS
        return self._weighed(name, self._fold(node, [receiver, *arguments]), units)

    def _string_predicate(self, name: str, receiver: _Node, argument: _Node) -> _Node:
        """``s.startsWith('x')`` / ``s.matches('re')`` with a literal argument, specialised."""
        function = METHOD_FUNCTIONS[name][0]
        if not (argument.is_constant and type(argument.constant) is str) or receiver.is_constant:
            node = self._charged_call(name, function, [receiver.fn, argument.fn])
            return self._fold(node, [receiver, argument])
        constant = argument.constant
        pattern = None
        if name == "matches":
            try:
                pattern = compile_regex(constant)
            except CelEvaluationError as error:
                raise CelCompileError(error.message, 1, 1) from None
        source = receiver.operand()

        # contains and matches scan the whole receiver: a long one is charged (startsWith/endsWith compare
        # only len(constant) characters). A short one costs one len() on this hot path, nothing more.
        scans = name in ("matches", "contains")
        self.uses_budget |= scans

        def emit(target: str, slot: str, namespace: dict[str, Any]) -> list[str]:
            namespace[f"{slot}_c"] = constant
            namespace[f"{slot}_g"] = function
            namespace[f"{slot}_re"] = pattern
            namespace[f"{slot}_charge"] = charge
            namespace[f"{slot}_units"] = _scan_units(name, constant)
            x = f"{slot}_x"
            if name == "matches":
                test = f"{slot}_re.search({x}) is not None"
            elif name == "contains":
                test = f"{slot}_c in {x}"
            else:
                test = f"{x}.{_STRING_METHODS[name]}({slot}_c)"
            if name == "matches":  # RE2 time grows with the pattern too: always charged
                charging = [f"    {slot}_charge(v, {slot}_units({x}))"]
            else:
                charging = [f"    if len({x}) > {TEXT_FREE_CHARS_MAX}:", f"        {slot}_charge(v, {slot}_units({x}))"]
            return [
                *load_lines(source, x, f"{slot}o", namespace),
                f"if type({x}) is _str:",
                *(charging if scans else []),
                f"    {target} = {test}",
                "else:",
                f"    {target} = {slot}_g({x}, {slot}_c)",
            ]

        return _emitted(self._name(name), emit)

    def _macro(self, tree: Tree, name: str) -> _Node:
        arguments_tree = tree.children[2] if len(tree.children) > 2 else None
        arguments = arguments_tree.children if isinstance(arguments_tree, lark.Tree) else []
        if not 2 <= len(arguments) <= (3 if name == "map" else 2):
            raise CelCompileError(f"macro {name} takes 2 arguments (map: 2 or 3)", *position_of(tree))
        variable_tree = arguments[0]
        while isinstance(variable_tree, lark.Tree) and len(variable_tree.children) == 1:
            variable_tree = variable_tree.children[0]
        if not isinstance(variable_tree, lark.Token) or variable_tree.type != "IDENT":
            raise CelCompileError(f"{name}: first argument must be a variable name", *position_of(tree))
        self.uses_budget = True
        range_node = self.compile(tree.children[0])  # type: ignore[arg-type]
        nodes_before = self._nodes
        bodies = [self._nested(argument) for argument in arguments[1:]]  # type: ignore[arg-type]
        weight = 1 + self._nodes - nodes_before  # the iteration itself, and each node of the body
        return _Node(build_macro(name, str(variable_tree), range_node.fn, [b.fn for b in bodies], weight))


def _logical_tail(decisive: str, absorbing: bool) -> list[str]:
    """After loading operand value `x` inside a try: decide, or remember the first error."""
    return [
        f"    if x is {decisive}:",
        f"        return {decisive}",
        f"    if x is not {'False' if absorbing else 'True'} and error is None:",
        "        error = _not_bool(x)",
        "except _CostExceeded:",  # never absorbed: the evaluation was cut short
        "    raise",
        "except Exception as caught:",
        "    _charge(v, _error_units)",  # raising costs microseconds: an absorbed error is not free
        "    if error is None:",
        "        error = caught",
    ]


def _scan_units(name: str, constant: str) -> Callable[[str], int]:
    """The charge for scanning a text with ``contains(constant)`` or ``matches(constant)``, as cel-go counts it."""
    if name == "matches":
        return lambda text: regex_units(text, constant)
    return lambda text: len(text) // TEXT_CHARS_PER_UNIT + 1


def _swap(function: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda left, right: function(right, left)


def ternary_fold(node: _Node, condition: _Node, if_true: _Node, if_false: _Node) -> _Node:
    """Fold ``true ? a : b`` to the chosen branch when the condition is a constant."""
    if condition.constant is True:
        return if_true
    if condition.constant is False:
        return if_false
    return node
