"""How the small in-memory lists (programs, assets, rules) are searched and ordered on request.

``sort_by`` names one of :data:`_ORDERS`: each is a sort key, the shape of the cursor that carries it, and the
direction used when ``sort_dir`` is not given. Every key ends in the item's id, so it is unique and a page resumes
strictly after it (``page_in_memory``). The keys differ in shape or in their first element, so a cursor issued
under one order is refused (400) under another instead of resuming at some unrelated place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scrip_actor.engine._queries import by_order, page_in_memory
from scrip_actor.model import Page

__all__ = ["mentions", "page_sorted"]


def _by_creation(item: Any) -> tuple[Any, ...]:
    return (item.created_at.isoformat(), item.id)


def _by_name(item: Any) -> tuple[Any, ...]:
    return ("name", item.name.casefold(), item.id)


_ORDERS: dict[str, tuple[Callable[[Any], tuple[Any, ...]], Any, str]] = {
    "created_at": (_by_creation, tuple[str, str], "desc"),
    "name": (_by_name, tuple[str, str, str], "asc"),
    "order": (by_order, tuple[int, str, str], "asc"),
}


def page_sorted(items: list[Any], *, sort_by: str, sort_dir: str | None, limit: int, cursor: str | None) -> Page:
    """A page of ``items`` in the ``sort_by`` order, ``sort_dir`` ``asc``/``desc`` (None: that order's default)."""
    key, shape, default_dir = _ORDERS[sort_by]
    descending = (sort_dir or default_dir) == "desc"
    return page_in_memory(items, limit=limit, cursor=cursor, key=key, shape=shape, descending=descending)


def mentions(search: str | None, texts: Iterable[str | None]) -> bool:
    """Whether ``search`` (case-insensitive) is in one of ``texts``; True when there is no search."""
    if not search:
        return True
    needle = search.casefold()
    return any(text is not None and needle in text.casefold() for text in texts)
