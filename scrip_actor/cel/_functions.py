"""CEL's standard functions and the Scrip extensions, as plain Python functions on native values.

The compiler looks names up in `GLOBAL_FUNCTIONS` (``size(x)``, ``int(x)``, ``get(m, k, d)``...)
and `METHOD_FUNCTIONS` (``s.startsWith(p)``; the receiver is the first argument). Arity is
checked at compile time, types at run time.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import math
import re
from collections.abc import Callable
from typing import Any, Final

import re2

from ._errors import CelEvaluationError
from ._time import (
    EPOCH,
    TIME_ACCESSORS,
    check_duration,
    format_duration,
    format_timestamp,
    parse_duration,
    parse_timestamp,
    timestamp_accessor,
    timestamp_from_unix,
)
from ._values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CelUint,
    cel_equal,
    map_lookup,
    no_overload,
    type_of,
)

Function = Callable[..., Any]

_INT_TEXT: Final = re.compile(r"[+-]?\d+")
_FLOAT_TEXT: Final = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE
)


def size(value: Any) -> int:
    """``size(x)``: code points of a string, bytes of bytes, elements of a list or map."""
    value_type = type(value)
    if value_type in (str, bytes, list, tuple, dict):
        return len(value)
    raise no_overload("size", value)


def to_int(value: Any) -> int:
    """``int(x)`` from int, uint, double (truncated; range-checked), string, timestamp."""
    value_type = type(value)
    if value_type is int:
        return value  # type: ignore[no-any-return]
    if value_type is CelUint:
        if value > INT64_MAX:
            raise CelEvaluationError("integer overflow")
        return int(value)
    if value_type is float:
        # The strict bounds mirror cel-go: 2**63 itself is not representable as int64.
        if not math.isfinite(value) or not -(2.0**63) < value < 2.0**63:
            raise CelEvaluationError("integer overflow")
        return int(value)
    if value_type is str:
        if not _INT_TEXT.fullmatch(value):
            raise CelEvaluationError(f"cannot convert to int: {value!r}")
        result = int(value)
        if not INT64_MIN <= result <= INT64_MAX:
            raise CelEvaluationError("integer overflow")
        return result
    if value_type is _dt.datetime:
        return (value - EPOCH) // _dt.timedelta(seconds=1)  # type: ignore[no-any-return]
    raise no_overload("int", value)


def to_uint(value: Any) -> CelUint:
    """``uint(x)`` from int, uint, double, string."""
    value_type = type(value)
    if value_type is CelUint:
        return value  # type: ignore[no-any-return]
    if value_type is int:
        if value < 0:
            raise CelEvaluationError("unsigned integer overflow")
        return CelUint(value)
    if value_type is float:
        if not math.isfinite(value) or not -1.0 < value < 2.0**64:
            raise CelEvaluationError("unsigned integer overflow")
        return CelUint(int(value))
    if value_type is str:
        if not re.fullmatch(r"\+?\d+", value):
            raise CelEvaluationError(f"cannot convert to uint: {value!r}")
        result = int(value)
        if result > UINT64_MAX:
            raise CelEvaluationError("unsigned integer overflow")
        return CelUint(result)
    raise no_overload("uint", value)


def to_double(value: Any) -> float:
    """``double(x)`` from int, uint, double, string."""
    value_type = type(value)
    if value_type is float:
        return value  # type: ignore[no-any-return]
    if value_type is int or value_type is CelUint:
        return float(value)
    if value_type is str:
        if not _FLOAT_TEXT.fullmatch(value):
            raise CelEvaluationError(f"cannot convert to double: {value!r}")
        return float(value)
    raise no_overload("double", value)


def format_double(value: float) -> str:
    """A double as CEL/Go prints it: shortest round-trip digits, ``1e+21`` style exponents."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        text = f"{mantissa}e{sign}{digits}"
    return text


def to_string(value: Any) -> str:
    """``string(x)`` from any scalar, timestamp or duration; bytes must be valid UTF-8."""
    value_type = type(value)
    if value_type is str:
        return value  # type: ignore[no-any-return]
    if value_type is int or value_type is CelUint:
        return str(int(value))
    if value_type is float:
        return format_double(value)
    if value_type is bool:
        return "true" if value else "false"
    if value_type is bytes:
        try:
            return value.decode("utf-8")  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            raise CelEvaluationError("invalid UTF-8 in bytes") from None
    if value_type is _dt.datetime:
        return format_timestamp(value)
    if value_type is _dt.timedelta:
        return format_duration(value)
    raise no_overload("string", value)


_BOOL_TEXT: Final = {
    "1": True,
    "t": True,
    "true": True,
    "TRUE": True,
    "True": True,
    "0": False,
    "f": False,
    "false": False,
    "FALSE": False,
    "False": False,
}


def to_bool(value: Any) -> bool:
    """``bool(x)`` from bool or the strings cel-go accepts (``"true"``, ``"t"``, ``"1"``...)."""
    if type(value) is bool:
        return value  # type: ignore[no-any-return]
    if type(value) is str and value in _BOOL_TEXT:
        return _BOOL_TEXT[value]
    raise no_overload("bool", value)


def to_bytes(value: Any) -> bytes:
    """``bytes(x)`` from bytes or string (UTF-8 encoded)."""
    if type(value) is bytes:
        return value  # type: ignore[no-any-return]
    if type(value) is str:
        return value.encode("utf-8")  # type: ignore[no-any-return]
    raise no_overload("bytes", value)


def to_timestamp(value: Any) -> _dt.datetime:
    """``timestamp(x)`` from an RFC 3339 string, Unix seconds, or a timestamp."""
    value_type = type(value)
    if value_type is str:
        return parse_timestamp(value)
    if value_type is int:
        return timestamp_from_unix(value)
    if value_type is _dt.datetime:
        if value.tzinfo is None:
            raise CelEvaluationError("timestamp without time zone")
        return value  # type: ignore[no-any-return]
    raise no_overload("timestamp", value)


def to_duration(value: Any) -> _dt.timedelta:
    """``duration(x)`` from a string such as ``"1h30m"`` or a duration."""
    if type(value) is str:
        return parse_duration(value)
    if type(value) is _dt.timedelta:
        return check_duration(value)
    raise no_overload("duration", value)


def _strings(name: str, receiver: Any, argument: Any) -> None:
    if type(receiver) is not str or type(argument) is not str:
        raise no_overload(name, receiver, argument)


def contains(receiver: Any, argument: Any) -> bool:
    """``s.contains(t)``."""
    _strings("contains", receiver, argument)
    return argument in receiver  # type: ignore[no-any-return]


def starts_with(receiver: Any, argument: Any) -> bool:
    """``s.startsWith(t)``."""
    _strings("startsWith", receiver, argument)
    return receiver.startswith(argument)  # type: ignore[no-any-return]


def ends_with(receiver: Any, argument: Any) -> bool:
    """``s.endsWith(t)``."""
    _strings("endsWith", receiver, argument)
    return receiver.endswith(argument)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=128)
def compile_regex(pattern: str) -> Any:
    """Compile an RE2 pattern (linear-time matching: no catastrophic backtracking).

    Cached, because patterns that are not literals are compiled at run time.
    """
    try:
        return re2.compile(pattern)
    except Exception as error:  # re2 raises its own error type; any failure is a bad pattern.
        raise CelEvaluationError(f"invalid regular expression: {error}") from None


def matches(receiver: Any, pattern: Any) -> bool:
    """``s.matches(re)``: true if RE2 `re` matches any substring of `s` (unanchored)."""
    _strings("matches", receiver, pattern)
    return compile_regex(pattern).search(receiver) is not None


def get(mapping: Any, key: Any, default: Any) -> Any:
    """Scrip extension ``get(map, key, default)``: the value, or `default` if the key is absent."""
    if type(mapping) is not dict:
        raise no_overload("get", mapping, key, default)
    found, value = map_lookup(mapping, key)
    return value if found else default


#: From 2**52 up, a double has no fractional bits: rounding to ``places >= 0`` leaves it unchanged.
_FLOAT_INTEGRAL_MIN: Final = float(2**52)
#: Digits the exact path may need: 309 before the point (doubles reach 1.8e308) plus 20 places after it.
#: (A 60-digit context made ``round(1e59, 2)`` fail: the quantized coefficient had 62 digits.)
_ROUND_DIGITS_MAX: Final = 309 + 20


def round_half_up(value: Any, places: Any) -> float:
    """Scrip extension ``round(x, places)`` -> double, rounding halves away from zero.

    Computed on the *shortest decimal repr* of the double, so ``round(2.675, 2)`` is ``2.68`` as
    a person reading "2.675" expects (binary rounding would give 2.67, since the double is
    2.67499999...). This is a display/points convenience, not money arithmetic.
    """
    if type(value) not in (int, float, CelUint) or type(places) is not int:
        raise no_overload("round", value, places)
    if not -20 <= places <= 20:
        raise CelEvaluationError("round: places must be within -20..20")
    if type(value) is float and not math.isfinite(value):
        return value  # type: ignore[no-any-return]
    if type(value) is float and places >= 0:
        # Fast path (the Decimal path below measured 5 % of a benchmark's engine time): round the digits of the
        # shortest repr as an integer. ``q / 10**places`` is exact-then-rounded-once (int true division is
        # correctly rounded), so it equals ``float(Decimal(...).quantize(...))``. Exponent forms ("1e-07",
        # "1e+16") take the exact path.
        text = repr(value)
        if "e" not in text:
            whole, _, fraction = text.partition(".")
            if len(fraction) <= places:
                return value  # type: ignore[no-any-return]
            negative = whole.startswith("-")
            magnitude = int((whole[1:] if negative else whole) + fraction[:places])
            if fraction[places] >= "5":  # half up: away from zero
                magnitude += 1
            rounded = magnitude / 10**places
            return -rounded if negative else rounded
    if type(value) is float and places >= 0 and abs(value) >= _FLOAT_INTEGRAL_MIN:
        return value  # type: ignore[no-any-return]  # every double this large is a whole number already
    try:
        exact = decimal.Decimal(repr(value) if type(value) is float else int(value))
        quantum = decimal.Decimal(1).scaleb(-places)
        with decimal.localcontext(prec=_ROUND_DIGITS_MAX):
            return float(exact.quantize(quantum, rounding=decimal.ROUND_HALF_UP))
    except decimal.DecimalException:
        raise CelEvaluationError("round: result out of range") from None


def _list_pair(name: str, left: Any, right: Any) -> None:
    if type(left) not in (list, tuple) or type(right) not in (list, tuple):
        raise no_overload(name, left, right)


def sets_contains(left: Any, right: Any) -> bool:
    """``sets.contains(a, b)``: every element of `b` is in `a` (by CEL equality)."""
    _list_pair("sets.contains", left, right)
    if all(type(x) is str for x in left) and all(type(x) is str for x in right):
        return set(right) <= set(left)
    return all(any(cel_equal(x, y) for y in left) for x in right)


def sets_intersects(left: Any, right: Any) -> bool:
    """``sets.intersects(a, b)``: `a` and `b` share at least one element."""
    _list_pair("sets.intersects", left, right)
    if all(type(x) is str for x in left) and all(type(x) is str for x in right):
        return not set(left).isdisjoint(right)
    return any(cel_equal(x, y) for x in left for y in right)


def dyn(value: Any) -> Any:
    """``dyn(x)``: identity at run time (it only matters to a type checker)."""
    return value


#: name -> (function, allowed argument counts)
GLOBAL_FUNCTIONS: Final[dict[str, tuple[Function, frozenset[int]]]] = {
    "size": (size, frozenset({1})),
    "int": (to_int, frozenset({1})),
    "uint": (to_uint, frozenset({1})),
    "double": (to_double, frozenset({1})),
    "string": (to_string, frozenset({1})),
    "bool": (to_bool, frozenset({1})),
    "bytes": (to_bytes, frozenset({1})),
    "timestamp": (to_timestamp, frozenset({1})),
    "google.protobuf.Timestamp": (to_timestamp, frozenset({1})),
    "duration": (to_duration, frozenset({1})),
    "google.protobuf.Duration": (to_duration, frozenset({1})),
    "dyn": (dyn, frozenset({1})),
    "type": (type_of, frozenset({1})),
    "matches": (matches, frozenset({2})),
    "contains": (contains, frozenset({2})),
    "startsWith": (starts_with, frozenset({2})),
    "endsWith": (ends_with, frozenset({2})),
    "get": (get, frozenset({3})),
    "round": (round_half_up, frozenset({2})),
    "sets.contains": (sets_contains, frozenset({2})),
    "sets.intersects": (sets_intersects, frozenset({2})),
}

#: receiver-style functions: name -> (function(receiver, *args), allowed argument counts)
METHOD_FUNCTIONS: Final[dict[str, tuple[Function, frozenset[int]]]] = {
    "size": (size, frozenset({0})),
    "contains": (contains, frozenset({1})),
    "startsWith": (starts_with, frozenset({1})),
    "endsWith": (ends_with, frozenset({1})),
    "matches": (matches, frozenset({1})),
}


def _accessor(name: str) -> Function:
    def accessor(receiver: Any, zone: Any = None) -> int:
        if zone is not None and type(zone) is not str:
            raise no_overload(name, receiver, zone)
        return timestamp_accessor(name, receiver, zone)

    accessor.__name__ = name
    return accessor


for _name in TIME_ACCESSORS:
    METHOD_FUNCTIONS[_name] = (_accessor(_name), frozenset({0, 1}))
