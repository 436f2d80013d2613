"""A participant's state history: every change of its tags, counters, attributes and tiers, and what made it.

The step and the operator's calls note each change in their ledger transaction (``LedgerTx.note_state``); the
commit numbers them with one store-wide sequence and the record that makes the change durable also writes them,
under ``participant id NUL be64(sequence)`` in ``state_history`` (scrip_actor/_records.py). So a change is in the
history exactly when it is in the participant's state: a failed event leaves neither, a crash loses neither.

Reading is a prefix scan of one participant's entries, oldest first, filtered as the hosted
``/activity/state-history`` is. A filter that matches little could make a scan long: each call reads at most
:data:`SCANNED_PER_CALL_MAX` entries and, if it stopped there, answers ``has_more`` with a cursor to go on from.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from scrip_actor._records import decode_state_change
from scrip_actor.cursors import decode as decode_cursor
from scrip_actor.cursors import encode as encode_cursor
from scrip_actor.cursors import invalid_cursor
from scrip_actor.ids import SequenceIds
from scrip_actor.model import Page, StateChange
from scrip_actor.store import Store

__all__ = ["SCANNED_PER_CALL_MAX", "StateHistory", "StateHistoryFilter"]

SCANNED_PER_CALL_MAX = 10_000


class StateHistoryFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a state-history listing keeps (None: no filter). Times are inclusive.

    ``changed_from``/``changed_to`` filter when the change was made; ``event_from``/``event_to`` the causing
    event's time, falling back to ``changed_at`` for a change no event made (as the hosted API does). ``from``
    bounds are inclusive and ``to`` bounds exclusive, as on every other list of ours (docs/http.md).
    """

    state_type: str | None = None
    key: str | None = None
    program_id: str | None = None
    operation: str | None = None
    source: str | None = None
    changed_from: datetime | None = None
    changed_to: datetime | None = None
    event_from: datetime | None = None
    event_to: datetime | None = None

    def keeps(self, change: StateChange) -> bool:
        """True when ``change`` passes every filter given."""
        if self.state_type is not None and change.state_type != self.state_type:
            return False
        if self.key is not None and change.key != self.key:
            return False
        if self.program_id is not None and change.program_id != self.program_id:
            return False
        if self.operation is not None and change.operation != self.operation:
            return False
        if self.source is not None and change.source != self.source:
            return False
        if not _within(change.changed_at, self.changed_from, self.changed_to):
            return False
        return _within(change.event_timestamp or change.changed_at, self.event_from, self.event_to)


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


class StateHistory:
    """Reads of the ``state_history`` database (the writes come with each committed transaction)."""

    def __init__(self, store: Store, ids: SequenceIds) -> None:
        self._store = store
        self._ids = ids

    def list_for(
        self, participant_id: str, *, limit: int, cursor: str | None, keep: StateHistoryFilter | None = None
    ) -> Page:
        """The participant's state changes, oldest first, ``limit`` per page (the caller bounds it)."""
        assert 1 <= limit <= 200
        prefix = participant_id.encode() + b"\0"
        start = None
        if cursor:
            sequence_bytes = decode_cursor(cursor, tuple[bytes])[0]
            if len(sequence_bytes) != 8:
                raise invalid_cursor()
            start = prefix + sequence_bytes
        found: list[StateChange] = []
        last_key = b""
        for scanned, (key, value) in enumerate(self._store.scan("state_history", prefix, start=start)):
            if len(found) == limit or scanned == SCANNED_PER_CALL_MAX:
                return Page(data=found, has_more=True, next_cursor=encode_cursor((last_key[len(prefix) :],)))
            last_key = bytes(key)
            change = decode_state_change(last_key, bytes(value), self._ids)
            assert change.participant_id == participant_id
            if keep is None or keep.keeps(change):
                found.append(change)
        return Page(data=found, has_more=False, next_cursor=None)
