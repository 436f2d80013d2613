"""Counters that reset: ``reset_after`` windows, and a counter's effective value at a moment.

A counter with ``reset_after = D`` carries a window: the moment it last went back to 0 (or the moment the window
was first set), ``started_at``. Windows are anchored there and follow each other without gaps: at any moment
``t >= started_at + D`` the counter has been reset ``floor((t - started_at) / D)`` times, its **effective value**
is 0 and its window starts at the last of those boundaries. Nothing is written when a boundary passes: reads
compute the effective value (the API with the wall clock, CEL with the event's time), and the next change of the
counter stores it, noting an ``auto_reset`` in the state history first when a non-zero value was dropped.

Windows are kept in whole microseconds (the resolution of a timestamp), so the boundaries are exact. An event
whose time is before its counter's window start (events may arrive out of order) sees the counter as it is.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

__all__ = ["CounterWindow", "effective", "window_from"]

_ZERO = Decimal(0)


class CounterWindow(msgspec.Struct, frozen=True, array_like=True):
    """A counter's reset schedule: the window length and when the current window started."""

    reset_after_us: int
    started_at: datetime

    def __post_init__(self) -> None:
        assert self.reset_after_us > 0, "a reset window has a positive length"

    @property
    def reset_after(self) -> timedelta:
        return timedelta(microseconds=self.reset_after_us)

    def current(self, now: datetime) -> CounterWindow:
        """This window moved on to the one ``now`` is in (itself if ``now`` is before its end)."""
        elapsed_us = _microseconds(now - self.started_at)
        if elapsed_us < self.reset_after_us:
            return self
        periods = elapsed_us // self.reset_after_us
        return CounterWindow(
            self.reset_after_us, self.started_at + timedelta(microseconds=periods * self.reset_after_us)
        )


def window_from(reset_after: timedelta, now: datetime) -> CounterWindow:
    """A window of ``reset_after`` starting at ``now``."""
    reset_after_us = _microseconds(reset_after)
    assert reset_after_us > 0
    return CounterWindow(reset_after_us, now)


def effective(value: Decimal, window: CounterWindow | None, now: datetime) -> tuple[Decimal, CounterWindow | None]:
    """The counter's value at ``now`` and the window ``now`` is in: 0 once a boundary has passed since the value
    was stored. Without a window, the value stands."""
    if window is None:
        return value, None
    moved = window.current(now)
    return (value, window) if moved is window else (_ZERO, moved)


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
