"""Timestamps and durations: parsing, formatting, range checks and accessors.

CEL timestamps cover 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, which is exactly
the range of Python's `datetime`; durations cover about +/-10000 years. Python keeps microseconds,
CEL keeps nanoseconds: sub-microsecond digits are truncated (documented in docs/cel.md).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import zoneinfo
from typing import Final

from ._errors import CelEvaluationError

UTC: Final = _dt.UTC
EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=UTC)
DURATION_SECONDS_MAX: Final = 315_576_000_000
_DURATION_MAX: Final = _dt.timedelta(seconds=DURATION_SECONDS_MAX)
_UNIX_MIN: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
_UNIX_MAX: Final = 253_402_300_799  # 9999-12-31T23:59:59Z

_TIMESTAMP_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_DURATION_PART_RE: Final = re.compile(r"([0-9]*)(?:\.([0-9]*))?(h|ms|us|\u00b5s|\u03bcs|ns|m|s)")
#: Nanoseconds per unit, as Go's time.ParseDuration accepts them (micro: ``us``, U+00B5 ``µs``, U+03BC ``μs``).
_UNIT_NANOS: Final = {
    "h": 3_600_000_000_000,
    "m": 60_000_000_000,
    "s": 1_000_000_000,
    "ms": 1_000_000,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ns": 1,
}
#: Longest duration text accepted; a limit on the digits the exact arithmetic below must carry.
DURATION_TEXT_LENGTH_MAX: Final = 256


def check_duration(value: _dt.timedelta) -> _dt.timedelta:
    """Return `value` if it is within the CEL duration range, else raise."""
    if -_DURATION_MAX <= value <= _DURATION_MAX:
        return value
    raise CelEvaluationError("duration out of range")


def check_timestamp(value: _dt.datetime) -> _dt.datetime:
    """Timestamps are tz-aware; a naive one is an input mistake, reported as an error."""
    if value.tzinfo is None:
        raise CelEvaluationError("timestamp without time zone")
    return value


def parse_timestamp(text: str) -> _dt.datetime:
    """Parse an RFC 3339 timestamp such as ``2024-01-31T12:00:00Z`` or ``...+05:30``."""
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise CelEvaluationError(f"timestamp parse error: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0").ljust(9, "0")[:6])
    if offset in ("Z", "z"):
        zone: _dt.tzinfo = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        delta = _dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        zone = _dt.timezone(sign * delta)
    try:
        local = _dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, zone)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CelEvaluationError(f"timestamp out of range: {text!r}") from None


def timestamp_from_unix(seconds: int) -> _dt.datetime:
    """``timestamp(int)``: seconds since the Unix epoch."""
    if not _UNIX_MIN <= seconds <= _UNIX_MAX:
        raise CelEvaluationError("timestamp out of range")
    return EPOCH + _dt.timedelta(seconds=seconds)


def format_timestamp(value: _dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z``, fractional digits only when present (as cel-go prints)."""
    utc = value.astimezone(UTC)
    # Not strftime: its %Y drops the zero padding of years before 1000 on glibc ("1-01-01T...").
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_duration(text: str) -> _dt.timedelta:
    """Parse a Go-style duration: ``"1h30m"``, ``"-1.5s"``, ``"100ms"``, ``"0"``.

    Exact integer arithmetic, no float: every part is ``digits / 10**k`` of a unit, summed over the
    common denominator ``10**k_max`` and truncated toward zero to microseconds once, at the end, so
    ``"4.1s"`` is 4 100 000 µs exactly (a float sum made it 4 099 999).
    """
    if len(text) > DURATION_TEXT_LENGTH_MAX:
        raise CelEvaluationError(f"duration parse error: longer than {DURATION_TEXT_LENGTH_MAX} characters")
    body = text
    negative = body[:1] == "-"
    if body[:1] in ("-", "+"):
        body = body[1:]
    if body == "0":
        return _dt.timedelta(0)
    if not body:
        raise CelEvaluationError(f"duration parse error: {text!r}")
    scale_digits = 0
    total_scaled_nanos = 0  # nanoseconds * 10**scale_digits, exact
    position = 0
    while position < len(body):
        match = _DURATION_PART_RE.match(body, position)
        if match is None:
            raise CelEvaluationError(f"duration parse error: {text!r}")
        whole, fraction, unit = match.groups()
        if fraction:
            if len(fraction) > scale_digits:
                total_scaled_nanos *= 10 ** (len(fraction) - scale_digits)
                scale_digits = len(fraction)
            total_scaled_nanos += int(whole + fraction.ljust(scale_digits, "0")) * _UNIT_NANOS[unit]
        elif whole:
            total_scaled_nanos += int(whole) * _UNIT_NANOS[unit] * 10**scale_digits
        else:
            raise CelEvaluationError(f"duration parse error: {text!r}")  # "." or "" before the unit
        position = match.end()
    micros = total_scaled_nanos // (1_000 * 10**scale_digits)
    if micros > DURATION_SECONDS_MAX * 1_000_000:
        raise CelEvaluationError("duration out of range")
    return _dt.timedelta(microseconds=-micros if negative else micros)


def format_duration(value: _dt.timedelta) -> str:
    """CEL's string form of a duration: seconds with a trailing ``s`` (``"3600s"``, ``"1.5s"``)."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), 1_000_000)
    if fraction:
        return f"{sign}{whole}.{fraction:06d}".rstrip("0") + "s"
    return f"{sign}{whole}s"


def duration_seconds(value: _dt.timedelta) -> int:
    """Whole seconds of a duration, truncated toward zero (``int(duration)``)."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    return int(micros / 1_000_000) if micros >= 0 else -((-micros) // 1_000_000)


@functools.lru_cache(maxsize=256)
def zone_for(name: str) -> _dt.tzinfo:
    """Resolve ``"America/Los_Angeles"``, ``"UTC"`` or a fixed offset ``"+05:30"`` / ``"-08:00"`` / ``"02:00"``."""
    if name[:1] in ("+", "-") or name[:1].isdigit():
        match = re.fullmatch(r"([+-]?)(\d{1,2}):(\d{2})", name)
        if match is None:
            raise CelEvaluationError(f"invalid time zone: {name!r}")
        sign = -1 if match.group(1) == "-" else 1
        offset = _dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        if offset >= _dt.timedelta(hours=24):
            raise CelEvaluationError(f"invalid time zone: {name!r}")
        return _dt.timezone(sign * offset)
    if name in ("UTC", "Z"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CelEvaluationError(f"unknown time zone: {name!r}") from None


def _local(value: _dt.datetime, zone: str | None) -> _dt.datetime:
    if type(value) is not _dt.datetime or value.tzinfo is None:
        raise CelEvaluationError("timestamp accessor needs a tz-aware timestamp")
    if zone is None:
        return value.astimezone(UTC)
    return value.astimezone(zone_for(zone))


def _duration_micros(value: _dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _truncate(micros: int, unit: int) -> int:
    return micros // unit if micros >= 0 else -((-micros) // unit)


def timestamp_accessor(name: str, value: object, zone: str | None) -> int:
    """Implement ``ts.getFullYear()`` and friends, and the duration accessors.

    Month, day-of-month (``getDayOfMonth``), day-of-year and day-of-week are 0-based as in the CEL
    spec; ``getDate`` is the 1-based day of the month; Sunday is day 0.
    """
    if type(value) is _dt.timedelta:
        if zone is not None:
            raise CelEvaluationError(f"no such overload: {name}(duration, string)")
        micros = _duration_micros(value)
        units = {
            "getHours": 3_600_000_000,
            "getMinutes": 60_000_000,
            "getSeconds": 1_000_000,
        }
        if name in units:
            return _truncate(micros, units[name])
        if name == "getMilliseconds":
            return _truncate(micros, 1_000) - _truncate(micros, 1_000_000) * 1_000
        raise CelEvaluationError(f"no such overload: {name}(duration)")
    local = _local(value, zone)  # type: ignore[arg-type]
    if name == "getFullYear":
        return local.year
    if name == "getMonth":
        return local.month - 1
    if name == "getDate":
        return local.day
    if name == "getDayOfMonth":
        return local.day - 1
    if name == "getDayOfYear":
        return local.timetuple().tm_yday - 1
    if name == "getDayOfWeek":
        return (local.weekday() + 1) % 7
    if name == "getHours":
        return local.hour
    if name == "getMinutes":
        return local.minute
    if name == "getSeconds":
        return local.second
    if name == "getMilliseconds":
        return local.microsecond // 1000
    raise CelEvaluationError(f"no such overload: {name}")


TIME_ACCESSORS: Final = frozenset(
    {
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfYear",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
