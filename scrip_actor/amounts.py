"""Money at the edges is a decimal string; inside, an integer count of minor units.

``amount_minor = amount * 10**scale``. Nothing here ever touches a float except :func:`from_number`, which takes the
shortest repr of a double coming out of a CEL expression, exactly as a person would read it.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow

from scrip_actor.errors import InvalidScale, ValidationFailed

__all__ = [
    "AMOUNT_MINOR_MAX",
    "DECIMAL",
    "SCALE_MAX",
    "add_checked_counters",
    "add_counter",
    "check_counter",
    "format_minor",
    "from_number",
    "is_decimal_literal",
    "parse_decimal",
    "to_minor",
]

SCALE_MAX = 18
# An explicit bound on every amount and balance: 36 digits of minor units, i.e. 10**18 whole units at scale 18.
# Far beyond any real loyalty balance, far inside what JSON-encoded Python ints store exactly.
AMOUNT_MINOR_MAX = 10**36 - 1

# Every Decimal operation on money or counters uses this context: the default one keeps only 28 significant
# digits and would round a scale-18 amount silently. 80 digits holds any bounded amount or sum of a few; inexact
# results never pass silently because the checks below compare with the integral value.
DECIMAL = Context(prec=80, Emax=10**6, Emin=-(10**6), traps=[InvalidOperation, Overflow, Inexact])

# Counters are exact decimals too: at most 36 digits before the point and 18 after.
COUNTER_ABS_LIMIT = Decimal(10) ** 36
COUNTER_DIGITS_MAX = 36  # |value| < 10**36 <=> its leading digit's exponent is below 36
COUNTER_SCALE_MAX = 18

# ASCII digits only (``\d`` would accept "１" and other scripts' digits); no spaces, no exponent.
_DECIMAL_LITERAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def is_decimal_literal(text: str) -> bool:
    """True when ``text`` is a plain decimal number such as ``"10"`` or ``"2.50"`` (not a CEL expression)."""
    return _DECIMAL_LITERAL.fullmatch(text) is not None


def parse_decimal(text: str, field: str = "amount") -> Decimal:
    """Parse a decimal string strictly: digits, one optional point, optional sign. No exponents, no NaN."""
    if not isinstance(text, str) or not is_decimal_literal(text):
        raise ValidationFailed.field(field, "invalid", f'{field} must be a decimal string such as "10.50"')
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already excludes these
        raise ValidationFailed.field(field, "invalid", f"{field} is not a decimal number") from None


def from_number(value: object, field: str = "amount") -> Decimal:
    """Turn a CEL result (int, float or decimal string) into an exact Decimal.

    A double is read through its shortest repr, so ``10.5`` is exactly ``Decimal("10.5")`` and ``0.1 * 3`` is
    ``0.30000000000000004`` (which then fails the scale check: rule authors use ``round(x, scale)``).
    """
    if isinstance(value, bool):
        raise ValidationFailed.field(field, "invalid", f"{field} must be a number, got a bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationFailed.field(field, "invalid", f"{field} is not a finite number")
        return Decimal(repr(value))
    if isinstance(value, str):
        return parse_decimal(value, field)
    if isinstance(value, Decimal):
        return value
    raise ValidationFailed.field(field, "invalid", f"{field} must be a number, got {type(value).__name__}")


def check_counter(value: Decimal, field: str = "value") -> Decimal:
    """A counter value within bounds (|value| < 10**36, at most 18 decimals), or ValidationFailed."""
    # adjusted() is the exponent of the leading digit, read without arithmetic (abs() could overflow a context).
    if not value.is_finite() or (not value.is_zero() and value.adjusted() >= COUNTER_DIGITS_MAX):
        raise ValidationFailed.field(field, "out_of_range", f"{field} must be finite and below 10**36 in size")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -COUNTER_SCALE_MAX:
        raise ValidationFailed.field(field, "out_of_range", f"{field} has more than {COUNTER_SCALE_MAX} decimals")
    return value.copy_abs() if value.is_zero() else value  # "-0" is stored as "0"


def add_counter(current: Decimal, delta: Decimal) -> Decimal:
    """``current + delta``, exactly and within the counter bounds, or ValidationFailed (never a rounded sum)."""
    check_counter(delta)
    try:
        total = DECIMAL.add(current, delta)
    except DecimalException:
        raise ValidationFailed.field("value", "out_of_range", "the counter would leave its bounds") from None
    return check_counter(total)


def add_checked_counters(current: Decimal, delta: Decimal) -> Decimal:
    """:func:`add_counter` of two values that have passed :func:`check_counter` already (a participant's counter,
    checked when it was stored and again when it is loaded; a rule's static delta, checked when the rule was
    compiled): their exact sum has at most 18 decimals too, so only its size is left to check. The step's path.
    """
    try:
        total = DECIMAL.add(current, delta)
    except DecimalException:  # pragma: no cover - two values below 10**36 sum exactly within 80 digits
        raise ValidationFailed.field("value", "out_of_range", "the counter would leave its bounds") from None
    if total.is_zero():
        return total.copy_abs()  # "-0" is stored as "0"
    if total.adjusted() >= COUNTER_DIGITS_MAX:  # the words of check_counter's refusal, which this replaces
        raise ValidationFailed.field("value", "out_of_range", "value must be finite and below 10**36 in size")
    return total


# Whole-unit digits of the largest amount (10**36 minor units at scale 0): anything with more is out of range.
_AMOUNT_DIGITS_MAX = 36


def to_minor(amount: Decimal, scale: int, field: str = "amount") -> int:
    """Exact conversion to minor units; more decimals than ``scale`` is an :class:`InvalidScale` error."""
    assert 0 <= scale <= SCALE_MAX
    if not amount.is_finite():
        raise ValidationFailed.field(field, "invalid", f"{field} is not a finite number")
    if amount.adjusted() >= _AMOUNT_DIGITS_MAX:  # caught before any arithmetic: 80-digit context would trap
        raise ValidationFailed.field(field, "out_of_range", f"{field} {amount} is beyond the supported range")
    try:
        scaled = amount.scaleb(scale, context=DECIMAL)
        integral = scaled.to_integral_value(context=DECIMAL)
    except DecimalException:  # more significant digits than the context holds: far beyond any bounded amount
        raise ValidationFailed.field(
            field, "out_of_range", f"{field} has more significant digits than any supported amount"
        ) from None
    if scaled != integral:
        raise InvalidScale(
            f"{field} {amount} exceeds asset scale {scale}",
            {"fields": [{"field": field, "reason": "invalid_scale", "message": f"at most {scale} decimal places"}]},
        )
    minor = int(scaled)
    if abs(minor) > AMOUNT_MINOR_MAX:
        raise ValidationFailed.field(field, "out_of_range", f"{field} {amount} is beyond the supported range")
    return minor


def format_minor(amount_minor: int, scale: int) -> str:
    """``format_minor(1000, 2) == "10.00"``; always exactly ``scale`` decimals, sign first."""
    key = (amount_minor, scale)
    text = _formatted.get(key)
    if text is None:
        text = _format_minor(amount_minor, scale)
        if len(_formatted) >= _FORMATTED_MAX:
            _formatted.clear()  # a crude bound; the working set of amounts is small and refills at once
        _formatted[key] = text
    return text


_formatted: dict[tuple[int, int], str] = {}
_FORMATTED_MAX = 4096


def _format_minor(amount_minor: int, scale: int) -> str:
    assert 0 <= scale <= SCALE_MAX
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
