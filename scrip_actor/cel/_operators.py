"""CEL's operators on native values: arithmetic with int64/uint64 overflow checks, ordering, ``in``.

Each function takes already-evaluated operands and either returns the CEL result or raises
`CelEvaluationError`. They start with the exact-type fast path the engine hits (two floats, two
ints, two strings) and fall through to the rarer cases.

Deliberate deviation (see docs/cel.md): when an ``int`` or ``uint`` meets a ``double`` in
``+ - * /``, the integer is promoted to double. The CEL spec says "no such overload"; but the
engine turns JSON numbers into doubles, so ``event.amount * 10`` would otherwise fail for every
rule author who forgets to write ``10.0``.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Final

from ._errors import CelEvaluationError
from ._time import check_duration
from ._values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CelUint,
    cel_compare,
    cel_equal,
    map_lookup,
    no_overload,
)

_OVERFLOW: Final = "return error for overflow"
_DATETIME: Final = _dt.datetime
_TIMEDELTA: Final = _dt.timedelta
_TIMESTAMP_DIFFERENCE_MAX: Final = _dt.timedelta(microseconds=(2**63 - 1) // 1000)


def _promoted(left: Any, right: Any) -> tuple[float, float] | None:
    """Both operands as floats if one is a double and the other an int/uint, else None."""
    left_type = type(left)
    right_type = type(right)
    if left_type is float and (right_type is int or right_type is CelUint):
        return left, float(right)
    if right_type is float and (left_type is int or left_type is CelUint):
        return float(left), right
    return None


def add(left: Any, right: Any) -> Any:
    """CEL ``+``: numbers, strings, bytes, lists, timestamp/duration arithmetic."""
    left_type = type(left)
    if left_type is type(right):
        if left_type is float or left_type is str or left_type is bytes:
            return left + right
        if left_type is int:
            result = left + right
            if INT64_MIN <= result <= INT64_MAX:
                return result
            raise CelEvaluationError(_OVERFLOW)
        if left_type is CelUint:
            result = int(left) + int(right)
            if result <= UINT64_MAX:
                return CelUint(result)
            raise CelEvaluationError(_OVERFLOW)
        if left_type is list or left_type is tuple:
            return [*left, *right]
        if left_type is _TIMEDELTA:
            return check_duration(left + right)
    elif (left_type is list or left_type is tuple) and type(right) in (list, tuple):
        return [*left, *right]
    promoted = _promoted(left, right)
    if promoted is not None:
        return promoted[0] + promoted[1]
    if (left_type is _DATETIME and type(right) is _TIMEDELTA) or (left_type is _TIMEDELTA and type(right) is _DATETIME):
        try:
            return left + right
        except OverflowError:
            raise CelEvaluationError("timestamp out of range") from None
    raise no_overload("_+_", left, right)


def subtract(left: Any, right: Any) -> Any:
    """CEL ``-``: numbers and timestamp/duration arithmetic."""
    left_type = type(left)
    right_type = type(right)
    if left_type is right_type:
        if left_type is float:
            return left - right
        if left_type is int:
            result = left - right
            if INT64_MIN <= result <= INT64_MAX:
                return result
            raise CelEvaluationError(_OVERFLOW)
        if left_type is CelUint:
            result = int(left) - int(right)
            if result >= 0:
                return CelUint(result)
            raise CelEvaluationError(_OVERFLOW)
        if left_type is _TIMEDELTA:
            return check_duration(left - right)
        if left_type is _DATETIME:
            # cel-go represents this difference as int64 nanoseconds (about +/-292 years), and
            # the conformance suite expects its range error; we mirror it.
            difference = left - right
            if abs(difference) > _TIMESTAMP_DIFFERENCE_MAX:
                raise CelEvaluationError("timestamp difference out of range")
            return difference
    promoted = _promoted(left, right)
    if promoted is not None:
        return promoted[0] - promoted[1]
    if left_type is _DATETIME and right_type is _TIMEDELTA:
        try:
            return left - right
        except OverflowError:
            raise CelEvaluationError("timestamp out of range") from None
    raise no_overload("_-_", left, right)


def multiply(left: Any, right: Any) -> Any:
    """CEL ``*`` on numbers."""
    left_type = type(left)
    if left_type is type(right):
        if left_type is float:
            return left * right
        if left_type is int:
            result = left * right
            if INT64_MIN <= result <= INT64_MAX:
                return result
            raise CelEvaluationError(_OVERFLOW)
        if left_type is CelUint:
            result = int(left) * int(right)
            if result <= UINT64_MAX:
                return CelUint(result)
            raise CelEvaluationError(_OVERFLOW)
    promoted = _promoted(left, right)
    if promoted is not None:
        return promoted[0] * promoted[1]
    raise no_overload("_*_", left, right)


def _float_divide(left: float, right: float) -> float:
    """IEEE division: x/0.0 is +-inf (NaN for 0/0), as CEL doubles require."""
    if right != 0.0:
        return left / right
    if left == 0.0 or math.isnan(left):
        return math.nan
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


def divide(left: Any, right: Any) -> Any:
    """CEL ``/``: integer division truncates toward zero; by zero is an error (not for doubles)."""
    left_type = type(left)
    if left_type is type(right):
        if left_type is float:
            return _float_divide(left, right)
        if left_type is int or left_type is CelUint:
            if right == 0:
                raise CelEvaluationError("divide by zero")
            quotient = abs(int(left)) // abs(int(right))
            if (left < 0) != (right < 0):
                quotient = -quotient
            if left_type is CelUint:
                return CelUint(quotient)
            if quotient > INT64_MAX:
                raise CelEvaluationError(_OVERFLOW)
            return quotient
    promoted = _promoted(left, right)
    if promoted is not None:
        return _float_divide(*promoted)
    raise no_overload("_/_", left, right)


def modulo(left: Any, right: Any) -> Any:
    """CEL ``%`` on int and uint only; the result takes the sign of the dividend (like C, Go)."""
    left_type = type(left)
    if left_type is type(right) and (left_type is int or left_type is CelUint):
        if right == 0:
            raise CelEvaluationError("modulus by zero")
        remainder = abs(int(left)) % abs(int(right))
        if left < 0:
            remainder = -remainder
        return CelUint(remainder) if left_type is CelUint else remainder
    raise no_overload("_%_", left, right)


def negate(value: Any) -> Any:
    """CEL unary ``-`` on int, double and duration (not uint)."""
    value_type = type(value)
    if value_type is float:
        return -value
    if value_type is int:
        if value == INT64_MIN:
            raise CelEvaluationError(_OVERFLOW)
        return -value
    if value_type is _TIMEDELTA:
        return check_duration(-value)
    raise no_overload("-_", value)


def logical_not(value: Any) -> bool:
    """CEL ``!`` on bool only."""
    if value is True:
        return False
    if value is False:
        return True
    raise no_overload("!_", value)


def less(left: Any, right: Any) -> bool:
    """CEL ``<``."""
    return cel_compare(left, right) == -1


def less_equal(left: Any, right: Any) -> bool:
    """CEL ``<=``."""
    return cel_compare(left, right) in (-1, 0)


def greater(left: Any, right: Any) -> bool:
    """CEL ``>``."""
    return cel_compare(left, right) == 1


def greater_equal(left: Any, right: Any) -> bool:
    """CEL ``>=``."""
    return cel_compare(left, right) in (0, 1)


def equal(left: Any, right: Any) -> bool:
    """CEL ``==``."""
    return cel_equal(left, right)


def not_equal(left: Any, right: Any) -> bool:
    """CEL ``!=``."""
    return not cel_equal(left, right)


def contained_in(element: Any, container: Any) -> bool:
    """CEL ``in``: membership in a list (by CEL equality) or among a map's keys."""
    container_type = type(container)
    if container_type is list or container_type is tuple:
        element_type = type(element)
        if element_type is str:
            # Fast path: only a str can equal a str.
            return element in container
        return any(cel_equal(element, item) for item in container)
    if container_type is dict:
        return map_lookup(container, element)[0]
    raise no_overload("@in", element, container)


def index(container: Any, key: Any) -> Any:
    """CEL ``container[key]`` on lists (int index, bounds-checked) and maps."""
    container_type = type(container)
    if container_type is dict:
        found, value = map_lookup(container, key)
        if found:
            return value
        raise CelEvaluationError(f"no such key: {key}")
    if container_type is list or container_type is tuple:
        key_type = type(key)
        if key_type is float:
            if not key.is_integer():
                raise CelEvaluationError(f"invalid list index: {key}")
            key = int(key)
        elif key_type is not int and key_type is not CelUint:
            raise no_overload("_[_]", container, key)
        if 0 <= key < len(container):
            return container[key]
        raise CelEvaluationError(f"index out of bounds: {key}")
    raise no_overload("_[_]", container, key)


def select(operand: Any, field: str) -> Any:
    """CEL ``operand.field`` on a map: the value, or the "no such key" error."""
    if type(operand) is dict:
        try:
            return operand[field]
        except KeyError:
            raise CelEvaluationError(f"no such key: {field}") from None
    raise CelEvaluationError(f"no such field: {field} (on {type(operand).__name__})")
