"""The read side: how every list pages, and the queries that never change anything.

A page's cursor is the sort key of the last item it returned, never a position (``scrip_actor.cursors`` encodes
it), so a page resumes strictly after that key whatever was inserted, archived or filtered out in between. Small
collections (programs, assets, rules) page in memory with :func:`page_in_memory`; store-backed ones (events,
participants, journal entries) resume a scan at the store key the cursor carries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrip_actor import cursors
from scrip_actor.config import Limits
from scrip_actor.errors import ValidationFailed
from scrip_actor.model import Page

# How many candidate events one list call looks at, at most (~5 µs each: a few ms on the loop per call).
_EVENT_SCAN_MAX = 1_000


def page_size(limit: int, limits: Limits) -> int:
    """``limit`` if it is a page size the limits allow (1 to ``page_size_max``); else a 400 on ``limit``."""
    if not 1 <= limit <= limits.page_size_max:
        raise ValidationFailed.field("limit", "invalid", f"limit must be 1-{limits.page_size_max}")
    return limit


def _encode_cursor(key: bytes | None) -> str | None:
    return None if key is None else cursors.encode((key,))


def _decode_cursor(cursor: str | None) -> bytes | None:
    if not cursor:
        return None
    (key,) = cursors.decode(cursor, tuple[bytes])
    if not key:  # every store key this server issues a cursor for has bytes in it
        raise cursors.invalid_cursor()
    return key


def _newest_first(item: Any) -> tuple[Any, ...]:
    return (item.created_at.isoformat(), item.id)


def by_order(item: Any) -> tuple[Any, ...]:
    """The sort key of a rule in its program's list: its order, then creation."""
    return (item.order, item.created_at.isoformat(), item.id)


def page_in_memory(
    items: list[Any],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[Any], tuple[Any, ...]] = _newest_first,
    shape: Any = tuple[str, str],
    descending: bool = True,
) -> Page:
    """Paginate a small in-memory list sorted by ``key``; the cursor is the last item's key, not its position.

    So a page resumes strictly after that key whatever happened in between: the cursor item archived, filtered
    out or reordered, or items inserted before it. Nothing is skipped or repeated that kept its key.
    """
    ordered = sorted(items, key=key, reverse=descending)
    if cursor:
        after = decode_key_cursor(cursor, shape)
        ordered = [item for item in ordered if (key(item) < after if descending else key(item) > after)]
    page = ordered[:limit]
    more = len(ordered) > limit
    return Page(data=page, has_more=more, next_cursor=encode_key_cursor(key(page[-1])) if more else None)


def encode_key_cursor(key: tuple[Any, ...]) -> str:
    """An opaque cursor carrying a sort key (strings and integers)."""
    return cursors.encode(key)


def decode_key_cursor(cursor: str, shape: Any) -> tuple[Any, ...]:
    """The sort key of type ``shape`` (e.g. ``tuple[str, str]``) inside a cursor; anything else is a 400."""
    return cursors.decode(cursor, shape)
