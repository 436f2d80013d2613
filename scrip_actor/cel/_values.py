"""CEL values as native Python objects, and the CEL rules for comparing them.

Representation (chosen so the engine can feed and consume plain Python data):

| CEL type                  | Python                                    |
|---------------------------|-------------------------------------------|
| int                       | `int` (never `bool`)                      |
| uint                      | `CelUint`, a tiny `int` subclass          |
| double                    | `float`                                   |
| bool                      | `bool`                                    |
| string / bytes            | `str` / `bytes`                           |
| null_type                 | `None`                                    |
| list / map                | `list` (or `tuple` as input) / `dict`     |
| google.protobuf.Timestamp | tz-aware `datetime.datetime`              |
| google.protobuf.Duration  | `datetime.timedelta`                      |
| type                      | `CelType`                                 |

Python's `bool` is a subclass of `int`, and Python's `==` says ``True == 1`` and ``[1] == [True]``;
CEL says both are false. Every equality and ordering in this package therefore goes through
`cel_equal` / `cel_compare`, which look at exact types first.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Final

from ._errors import CelEvaluationError

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1


class CelUint(int):
    """A CEL ``uint``: an `int` that remembers it is unsigned.

    It is an `int`, so the engine can use a result directly; arithmetic on it inside the
    compiler re-wraps results (Python's `int.__add__` returns a plain `int`).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


class CelType:
    """A CEL type value, what ``type(x)`` returns and what ``int``, ``string``... denote."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CelType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("CelType", self.name))


INT: Final = CelType("int")
UINT: Final = CelType("uint")
DOUBLE: Final = CelType("double")
BOOL: Final = CelType("bool")
STRING: Final = CelType("string")
BYTES: Final = CelType("bytes")
LIST: Final = CelType("list")
MAP: Final = CelType("map")
NULL_TYPE: Final = CelType("null_type")
TYPE: Final = CelType("type")
TIMESTAMP: Final = CelType("google.protobuf.Timestamp")
DURATION: Final = CelType("google.protobuf.Duration")

#: Identifiers that denote types when no variable of that name is bound.
TYPE_NAMES: Final[dict[str, CelType]] = {
    t.name: t for t in (INT, UINT, DOUBLE, BOOL, STRING, BYTES, LIST, MAP, NULL_TYPE, TYPE, TIMESTAMP, DURATION)
}

_TYPE_OF: Final[dict[type, CelType]] = {
    int: INT,
    CelUint: UINT,
    float: DOUBLE,
    bool: BOOL,
    str: STRING,
    bytes: BYTES,
    list: LIST,
    tuple: LIST,
    dict: MAP,
    type(None): NULL_TYPE,
    CelType: TYPE,
    _dt.datetime: TIMESTAMP,
    _dt.timedelta: DURATION,
}

#: Exact Python types that are CEL numbers (note: not `bool`).
NUMBER_TYPES: Final = frozenset({int, float, CelUint})


def type_of(value: object) -> CelType:
    """Return the CEL type of a native value, or raise if it is not a CEL value."""
    try:
        return _TYPE_OF[type(value)]
    except KeyError:
        raise CelEvaluationError(f"unsupported value type: {type(value).__name__}") from None


def type_name(value: object) -> str:
    """The CEL type name of a value, for error messages (never raises)."""
    found = _TYPE_OF.get(type(value))
    return found.name if found is not None else type(value).__name__


def cel_equal(left: object, right: object) -> bool:
    """CEL ``==``: heterogeneous, never an error, numbers compared by value.

    Values of different kinds are simply unequal (``1 == 'a'`` is false), ``bool`` is never equal
    to a number, NaN is unequal to everything, and lists and maps compare element-wise with these
    same rules.
    """
    left_type = type(left)
    right_type = type(right)
    if left_type is right_type and (left_type is str or left_type is int or left_type is float):
        return left == right  # type: ignore[no-any-return]
    if left_type in NUMBER_TYPES:
        if right_type not in NUMBER_TYPES:
            return False
        if (left_type is float) != (right_type is float):
            return float(left) == float(right)  # type: ignore[arg-type]
        return left == right  # type: ignore[no-any-return]
    if right_type in NUMBER_TYPES:
        return False
    if left_type is list or left_type is tuple:
        if right_type is not list and right_type is not tuple:
            return False
        return len(left) == len(right) and all(  # type: ignore[arg-type]
            cel_equal(a, b)
            for a, b in zip(left, right, strict=False)  # type: ignore[call-overload]
        )
    if left_type is dict:
        if right_type is not dict or len(left) != len(right):  # type: ignore[arg-type]
            return False
        for key, value in left.items():  # type: ignore[attr-defined]
            found, other = map_lookup(right, key)  # type: ignore[arg-type]
            if not found or not cel_equal(value, other):
                return False
        return True
    if left_type is not right_type:
        return False
    return left == right


_ORDERED: Final = frozenset({str, bytes, bool, _dt.datetime, _dt.timedelta})


def cel_compare(left: object, right: object) -> int:
    """Order two CEL values: -1, 0 or 1. Raises for kinds CEL cannot order.

    Numbers order by value across int, uint and double (an int meeting a double is converted to
    double first, as cel-go does); any comparison with NaN is "unordered", which the
    caller's operator turns into false, so we return a sentinel 2 for it.
    """
    left_type = type(left)
    right_type = type(right)
    if left_type in NUMBER_TYPES and right_type in NUMBER_TYPES:
        if (left_type is float) != (right_type is float):
            # int meets double: compare as doubles, like cel-go (lossy beyond 2**53).
            left, right = float(left), float(right)  # type: ignore[arg-type]
        if left < right:  # type: ignore[operator]
            return -1
        if left > right:  # type: ignore[operator]
            return 1
        if left == right:
            return 0
        return 2  # NaN involved
    if left_type is right_type and left_type in _ORDERED:
        if left < right:  # type: ignore[operator]
            return -1
        return 1 if left > right else 0  # type: ignore[operator]
    raise no_overload("_<_", left, right)


def no_overload(function: str, *args: object) -> CelEvaluationError:
    """The CEL "no matching overload" error, naming the argument types."""
    kinds = ", ".join(type_name(a) for a in args)
    return CelEvaluationError(f"no such overload: {function}({kinds})")


def check_int(value: int) -> int:
    """Return `value` if it fits in int64, else raise the CEL overflow error."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise CelEvaluationError("return error for overflow")


def check_uint(value: int) -> CelUint:
    """Return `value` as a `CelUint` if it fits in uint64, else raise the CEL overflow error."""
    if 0 <= value <= UINT64_MAX:
        return CelUint(value)
    raise CelEvaluationError("return error for overflow")


def map_lookup(mapping: dict[Any, Any], key: object) -> tuple[bool, Any]:
    """Find `key` in a CEL map, with CEL key semantics. Returns (found, value).

    Python would find ``True`` under key ``1`` and ``1.0`` under key ``1``; CEL keys are int,
    uint, bool or string, bool keys never match numbers, and a numeric key matches a numerically
    equal int/uint key (``{1: 'a'}[1.0]`` is ``'a'``, ``{1: 'a'}[1.5]`` is missing).
    """
    key_type = type(key)
    if key_type is str:
        if key in mapping:
            return True, mapping[key]
        return False, None
    if key_type is float:
        if not math.isfinite(key) or not key.is_integer():  # type: ignore[attr-defined]
            return False, None
        key = int(key)  # type: ignore[call-overload]
        key_type = int
    elif key_type not in NUMBER_TYPES and key_type is not bool:
        if key_type in _TYPE_OF or key is None:
            return False, None
        raise CelEvaluationError(f"unsupported key type: {type_name(key)}")
    if key in mapping:
        # The dict found an equal key, but it may be a bool standing for a number or the reverse.
        for stored in mapping:
            if stored == key and (type(stored) is bool) == (key_type is bool):
                return True, mapping[stored]
    return False, None


def is_nan(value: object) -> bool:
    """True for a float NaN."""
    return type(value) is float and math.isnan(value)
