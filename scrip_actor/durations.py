"""Go-style durations ("720h", "1h30m", "90s", "1.5h") and RFC 3339 timestamps for expiry and vesting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

__all__ = ["format_duration", "parse_duration", "parse_time_or_duration", "utc"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),  # not Go, but what people type for "30 days"; documented
}
_DURATION_SECONDS_MAX = 100 * 366 * 86400


def parse_duration(text: str) -> timedelta:
    """Parse ``"720h"``, ``"1h30m"``, ``"45s"`` or ``"30d"`` into a positive timedelta.

    Raises:
        ValueError: not a duration, zero, or longer than 100 years.
    """
    stripped = text.strip()
    position = 0
    total = Decimal(0)
    for match in _PART.finditer(stripped):
        if match.start() != position:
            raise ValueError(f'{text!r} is not a duration such as "720h" or "1h30m"')
        total += Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(stripped) or position == 0:
        raise ValueError(f'{text!r} is not a duration such as "720h" or "1h30m"')
    if total <= 0 or total > _DURATION_SECONDS_MAX:
        raise ValueError(f"{text!r} must be positive and at most 100 years")
    return timedelta(microseconds=int(total * 1_000_000))


def format_duration(delta: timedelta) -> str:
    """A positive duration as :func:`parse_duration` reads it back exactly: ``"720h"``, ``"1h30m"``, ``"1.5s"``."""
    total_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    assert total_us > 0
    hours, rest_us = divmod(total_us, 3_600_000_000)
    minutes, rest_us = divmod(rest_us, 60_000_000)
    seconds = Decimal(rest_us) / 1_000_000
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{format(seconds.normalize(), 'f')}s" if rest_us else "")
    return "".join(parts)


def utc(moment: datetime) -> datetime:
    """A timezone-aware datetime converted to UTC. Naive datetimes are refused: their meaning is a guess."""
    if moment.tzinfo is None:
        raise ValueError("timestamp has no time zone; use RFC 3339 with 'Z' or an offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {moment.isoformat()} is outside the years 1-9999 in UTC") from None


def parse_time_or_duration(text: str) -> timedelta | datetime:
    """A duration (relative to the event's time) or an absolute RFC 3339 timestamp."""
    try:
        return parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'{text!r} is neither a duration such as "720h" nor an RFC 3339 timestamp') from None
    return utc(moment)
