"""A participant's own lists: its balance operations (``activity/history``) and its events.

Both read what is already indexed per participant, so neither costs the event path a byte:

* the balance operations come from the journal index by participant (``journal_index``, ``participant NUL id
  NUL be64(sequence)``), oldest first as the hosted API lists them; each entry contributes the participant's
  postings in it, one operation each. The cursor carries ``(entry sequence, posting index)`` (as ten bytes), so
  a page may end in the middle of an entry (a HOLD moves value between two of the participant's buckets: two
  operations);
* the events come from the events index by external id (``events_by_external``), newest first, kept when they
  were processed for this participant or are still queued under its external id.

Like every other list, one call looks at most at ``_ACTIVITY_SCAN_MAX`` entries: a filtered page may come back
short (even empty) with ``has_more`` and a cursor to go on from (docs/limits.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from scrip_actor import _records, cursors
from scrip_actor.errors import ValidationFailed
from scrip_actor.ids import KIND_EVENT, SequenceIds
from scrip_actor.model import Event, JournalEntry, Page, Posting
from scrip_actor.store import Store, be64, unbe64

if TYPE_CHECKING:
    from scrip_actor.engine._queries import Queries

__all__ = ["Activity", "Operation"]

# How many journal entries one activity call looks at, at most (a few µs each).
_ACTIVITY_SCAN_MAX = 1_000

# One balance operation: the entry, the participant's posting in it, and the time of the event behind it (None for
# an operator's operation).
Operation = tuple[JournalEntry, Posting, datetime | None]


class Activity:
    """``engine.activity``: a participant's balance operations and events.

    Args:
        store: where the journal and its index are read.
        queries: the read side (participants, events, page sizes).
        event_by_sequence: the event with this sequence, or None.
        caught_up: waits until everything appended so far is durable (read-your-writes).
        ids: the store's id codec (an entry's event id carries the event's sequence).
    """

    def __init__(
        self,
        *,
        store: Store,
        queries: Queries,
        event_by_sequence: Callable[[int], Event | None],
        caught_up: Callable[[], Awaitable[None]],
        ids: SequenceIds,
    ) -> None:
        self._store = store
        self._queries = queries
        self._event_by_sequence = event_by_sequence
        self._caught_up = caught_up
        self._ids = ids

    async def history(
        self,
        participant_id: str,
        *,
        asset_id: str | None = None,
        bucket: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        event_from: datetime | None = None,
        event_to: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """The participant's balance operations, oldest first: a :data:`Operation` per posting of theirs.

        ``created_from``/``created_to`` bound the entry's time, ``event_from``/``event_to`` the time of the event
        that made it, or the entry's own time for an operator's operation (from inclusive, to exclusive).

        Raises:
            NotFound: no such participant. ValidationFailed: a bad limit or cursor, a backwards window.
        """
        self._queries.participant_state(participant_id)
        limit = self._queries.page_size(limit)
        _check_window(created_from, created_to, "from")
        _check_window(event_from, event_to, "event_from")
        after = _decode_position(cursor) if cursor else None

        def keep(entry: JournalEntry, posting: Posting, event_at: datetime | None) -> bool:
            moment = event_at or entry.created_at
            return (
                (asset_id is None or posting.asset_id == asset_id)
                and (bucket is None or posting.bucket == bucket)
                and (created_from is None or entry.created_at >= created_from)
                and (created_to is None or entry.created_at < created_to)
                and (event_from is None or moment >= event_from)
                and (event_to is None or moment < event_to)
            )

        await self._caught_up()
        found: list[Operation] = []
        last: tuple[int, int] | None = after
        looked_at = 0
        for entry in self._entries(participant_id, after):
            if looked_at == _ACTIVITY_SCAN_MAX:  # the work bound: go on after the last entry looked at
                return Page(data=found, has_more=True, next_cursor=_encode_position(last))
            looked_at += 1
            event_at = self._event_time(entry)
            for index, posting in enumerate(entry.postings):
                position = (entry.sequence, index)
                if posting.entity_type != "PARTICIPANT" or posting.entity_id != participant_id:
                    continue
                if after is not None and position <= after:
                    continue
                if not keep(entry, posting, event_at):
                    last = position
                    continue
                if len(found) == limit:
                    return Page(data=found, has_more=True, next_cursor=_encode_position(last))
                found.append((entry, posting, event_at))
                last = position
            last = (entry.sequence, len(entry.postings))
        return Page(data=found, has_more=False, next_cursor=None)

    def _entries(self, participant_id: str, after: tuple[int, int] | None) -> Iterator[JournalEntry]:
        """The participant's journal entries, oldest first, from the cursor's entry on (it may have more postings)."""
        prefix = _records.journal_index_prefix("participant", participant_id)
        start = prefix + be64(after[0] - 1) if after is not None and after[0] > 1 else None
        for index_key, _ in self._store.scan("journal_index", prefix, start=start):
            raw = self._store.get_raw("journal", index_key[-8:])
            assert raw is not None, "a journal index entry names an entry that does not exist"
            entry = _records.decode_entry(raw)
            assert entry.sequence == unbe64(index_key[-8:])
            yield entry

    def _event_time(self, entry: JournalEntry) -> datetime | None:
        """The ``event_timestamp`` of the event behind an entry, or None (an operator's operation)."""
        if entry.event_id is None:
            return None
        sequence = self._ids.sequence(KIND_EVENT, entry.event_id)
        event = self._event_by_sequence(sequence) if sequence is not None else None
        return event.event_timestamp if event is not None else None

    async def events(
        self,
        participant_id: str,
        *,
        program_id: str | None = None,
        status: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        event_from: datetime | None = None,
        event_to: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """The participant's events, newest first, filtered like ``Engine.list_events`` (the same cursor).

        Served from the index by external id: events sent under an external id the participant has since
        dropped (``PATCH`` renamed it) are not listed here; ``GET /v1/events?participant_id=`` still finds them.

        Raises:
            NotFound: no such participant. ValidationFailed: a bad limit or cursor.
        """
        state = self._queries.participant_state(participant_id)
        return await self._queries.list_events(
            external_id=state.external_id,
            owner=participant_id,
            program_id=program_id,
            status=status,
            created_from=created_from,
            created_to=created_to,
            event_from=event_from,
            event_to=event_to,
            limit=limit,
            cursor=cursor,
        )


def _encode_position(position: tuple[int, int] | None) -> str | None:
    """The cursor after ``(entry sequence, posting index)``: ``be64(sequence) + be16(index)`` as bytes."""
    if position is None:  # pragma: no cover - a page that stops early has looked at an entry
        return None
    sequence, index = position
    return cursors.encode((be64(sequence) + index.to_bytes(2, "big"),))


def _decode_position(cursor: str) -> tuple[int, int]:
    (raw,) = cursors.decode(cursor, tuple[bytes])
    if len(raw) != 10 or unbe64(raw[:8]) == 0:  # anything else is another list's cursor
        raise cursors.invalid_cursor()
    return unbe64(raw[:8]), int.from_bytes(raw[8:], "big")


def _check_window(start: datetime | None, end: datetime | None, field: str) -> None:
    if start is not None and end is not None and end < start:
        raise ValidationFailed.field(field, "invalid", f"the window ends before it starts ({end} < {start})")
