"""The read side: events, participants, balances, lots and the journal, and how every list pages.

Nothing here changes anything. A query that reads the store first waits until everything appended so far is
durable (``caught_up``): the writer commits in the background, and a client must read its own writes. Events
still in flight are read from memory (``events_live``), where their status moves before the store's does.

A page's cursor is the sort key of the last item it returned, never a position (``scrip_actor.cursors`` encodes
it), so a page resumes strictly after that key whatever was inserted, archived or filtered out in between. Small
collections (programs, assets, rules) page in memory with :func:`page_in_memory`; store-backed ones (events,
participants, journal entries) resume a scan at the store key the cursor carries. Every scan is bounded: a list
call looks at no more than ``_EVENT_SCAN_MAX`` candidate events or ``limit + 1`` matches, so no query holds the
loop for long whatever the store's size (docs/limits.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from scrip_actor import _records, amounts, cursors, values
from scrip_actor.config import Limits
from scrip_actor.errors import NotFound, ValidationFailed
from scrip_actor.ids import KIND_ENTRY, KIND_EVENT
from scrip_actor.ledger import ParticipantState, World
from scrip_actor.model import Balance, Event, JournalEntry, Lot, Page, Participant, Posting
from scrip_actor.store import Store, be64, external_id_key, unbe64

if TYPE_CHECKING:
    from scrip_actor.engine._catalog import Catalog

# How many candidate events one list call looks at, at most (~5 µs each: a few ms on the loop per call).
_EVENT_SCAN_MAX = 1_000
# The same bound for journal entries filtered on what no index holds (program, asset, time).
_JOURNAL_SCAN_MAX = 1_000
# And for participants filtered on what no index holds (program, status, search, time).
_PARTICIPANT_SCAN_MAX = 1_000


class Queries:
    """Every read of the public API that is not the catalog's: one call, one bounded look, no change.

    Args:
        store: where events, participants, lots and journal entries are read.
        world: the ledger's shared state: assets (a participant's public view) and the id codec.
        limits: the input bounds (page size).
        catalog: resolves an asset (NotFound otherwise).
        events_live: the events accepted and not yet finished, by id; fresher than their stored record.
        event_by_sequence: the event with this sequence (its live copy when in flight, else its stored records),
            or None.
        participant: the participant with this id, cached or loaded, or None.
        participant_by_external: the participant with this (canonical) external id, or None.
        caught_up: waits until everything appended so far is durable (read-your-writes).
    """

    def __init__(
        self,
        *,
        store: Store,
        world: World,
        limits: Limits,
        catalog: Catalog,
        events_live: dict[str, Event],
        event_by_sequence: Callable[[int], Event | None],
        participant: Callable[[str], ParticipantState | None],
        participant_by_external: Callable[[str], ParticipantState | None],
        caught_up: Callable[[], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._world = world
        self._limits = limits
        self._catalog = catalog
        self._events_live = events_live
        self._event_by_sequence = event_by_sequence
        self._participant = participant
        self._participant_by_external = participant_by_external
        self._caught_up = caught_up
        self._clock = clock  # counters are shown at their effective value now

    def _require(self, participant_id: str) -> ParticipantState:
        state = self._participant(participant_id)
        if state is None:
            raise NotFound("participant", participant_id)
        return state

    def participant_state(self, participant_id: str) -> ParticipantState:
        """The participant's state (cached or loaded); NotFound otherwise."""
        return self._require(participant_id)

    def page_size(self, limit: int) -> int:
        """``limit`` if the limits allow it, else a 400 on ``limit``."""
        return page_size(limit, self._limits)

    # --- events ------------------------------------------------------------------------------------------------

    async def get_event(self, event_id: str) -> Event:
        """An event with its outcome (rule evaluations, journal entry ids, error)."""
        live = self._events_live.get(event_id)
        if live is not None:
            return msgspec.structs.replace(live)
        sequence = self._world.ids.sequence(KIND_EVENT, event_id)
        event = self._event_by_sequence(sequence) if sequence is not None else None
        if event is None:
            raise NotFound("event", event_id)
        return event

    async def list_events(
        self,
        *,
        program_id: str | None = None,
        status: str | None = None,
        external_id: str | None = None,
        participant_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        event_from: datetime | None = None,
        event_to: datetime | None = None,
        rule_id: str | None = None,
        event_type: str | None = None,
        owner: str | None = None,
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Events, newest first (``descending=False``: oldest first), filtered; ``cursor`` from the previous page.

        ``event_type``: EXTERNAL (a client's) or SYSTEM (an automation's). ``owner`` keeps
        the events processed for that participant and those not yet bound to one (with ``external_id``: the
        participant's own list, where an event still queued is already theirs).

        ``created_from``/``created_to`` bound the receipt time, ``event_from``/``event_to`` the event's own time
        (from inclusive, to exclusive); ``rule_id`` keeps the events where that rule MATCHED.

        ``external_id``, ``rule_id`` and ``status=FAILED`` are served from indexes, ``PENDING``/``PROCESSING`` from
        memory; every other filter is checked on the candidates. One call looks at most at ``_EVENT_SCAN_MAX``
        candidates, so no query holds the loop for long whatever the store's size: a page can then come back
        short (even empty) with ``has_more`` and a cursor to go on from (docs/limits.md).
        """
        limit = page_size(limit, self._limits)
        after = _decode_cursor(cursor)
        if after is not None and len(after) != 8:  # an events cursor is a be64 sequence; any other is foreign
            raise cursors.invalid_cursor()
        if external_id is not None:
            external_id = values.normalized_text(external_id)
        if status == "RECEIVED":  # the hosted name of the first state; here an admitted event is PENDING at once
            status = "PENDING"

        def keep(event: Event) -> bool:
            return (
                (program_id is None or event.program_id == program_id)
                and (owner is None or event.participant_id in (owner, None))
                and (status is None or event.status == status)
                and (event_type is None or event.event_type == event_type)
                and (external_id is None or event.external_id == external_id)
                and (participant_id is None or event.participant_id == participant_id)
                and (created_from is None or event.created_at >= created_from)
                and (created_to is None or event.created_at < created_to)
                and (event_from is None or event.event_timestamp >= event_from)
                and (event_to is None or event.event_timestamp < event_to)
                and (
                    rule_id is None
                    or any(e.rule_id == rule_id and e.status == "MATCHED" for e in event.rule_evaluations)
                )
            )

        await self._caught_up()
        candidates = self._event_candidates(status, external_id, rule_id, after, descending)
        return bounded_page(
            candidates, keep, msgspec.structs.replace, limit=limit, after=after, scan_max=_EVENT_SCAN_MAX
        )

    def _event_candidates(
        self, status: str | None, external_id: str | None, rule_id: str | None, after: bytes | None, descending: bool
    ) -> Iterator[tuple[bytes, Event | None]]:
        """``(be64(sequence), event)`` newest first (or oldest first), past ``after``, from the most selective
        source."""
        if status in ("PENDING", "PROCESSING"):  # every such event is live (recovery re-delivers the rest)
            live = sorted(self._events_live.values(), key=lambda event: event.sequence, reverse=descending)
            for event in live:
                key = be64(event.sequence)
                if after is None or (key < after if descending else key > after):
                    yield key, event
            return
        if external_id is not None:
            index, prefix = "events_by_external", external_id_key(external_id)
        elif rule_id is not None:
            index, prefix = "events_by_rule", rule_id.encode() + b"\0"
        elif status == "FAILED":
            index, prefix = "events_failed", b""
        else:
            for key, _ in self._store.scan("events", start=after, reverse=descending):
                yield key, self._event_by_sequence(unbe64(key))
            return
        start = prefix + after if after is not None else None
        for index_key, _ in self._store.scan(index, prefix, start=start, reverse=descending):
            key = index_key[-8:]
            event = self._event_by_sequence(unbe64(key))
            if event is None:  # pragma: no cover - an index entry is written with or after its event
                continue
            yield key, event

    # --- participants, balances and lots -----------------------------------------------------------------------

    async def get_participant(self, participant_id: str) -> Participant:
        """A participant with balances, tags, counters and attributes."""
        return self._require(participant_id).public(self._world.assets, self._clock())

    async def get_participant_by_external_id(self, external_id: str) -> Participant:
        """A participant by the client's own id (NFC-normalised, like every external id)."""
        state = self._participant_by_external(values.normalized_text(external_id))
        if state is None:
            raise NotFound("participant", external_id)
        return state.public(self._world.assets, self._clock())

    async def list_participants(
        self,
        *,
        external_id: str | None = None,
        program_id: str | None = None,
        status: str | None = None,
        search: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Participants, newest first (``descending=False``: oldest first), filtered; all filters apply together.

        ``external_id`` is an exact match (served from its index); ``search`` a case-insensitive substring of the
        external id, email, phone or a name; ``created_from``/``created_to`` bound ``created_at`` (from
        inclusive, to exclusive). The order comes from the ``participants_by_created`` index (schema 9); like
        the events list, one call looks at most at ``_PARTICIPANT_SCAN_MAX`` candidates, so a filtered page may
        come back short with ``has_more`` and a cursor to go on from (docs/limits.md).
        """
        limit = page_size(limit, self._limits)
        after = _decode_cursor(cursor)  # checked even when a filter makes it moot: a bad cursor is always a 400
        if after is not None and len(after) <= 8:  # be64(created µs) + id; any other is another list's
            raise cursors.invalid_cursor()
        needle = search.casefold() if search else None

        def keep(state: ParticipantState) -> bool:
            return (
                (program_id is None or program_id in state.program_ids)
                and (status is None or state.status == status)
                and (created_from is None or state.created_at >= created_from)
                and (created_to is None or state.created_at < created_to)
                and (needle is None or _mentions(state, needle))
            )

        if external_id is not None:
            state = self._participant_by_external(values.normalized_text(external_id))
            kept = [state] if state is not None and keep(state) else []
            return Page(
                data=[s.public(self._world.assets, self._clock()) for s in kept], has_more=False, next_cursor=None
            )
        await self._caught_up()
        candidates = (
            (key, self._participant(key[8:].decode()))
            for key, _ in self._store.scan("participants_by_created", start=after, reverse=descending)
        )
        public = partial(ParticipantState.public, assets=self._world.assets, now=self._clock())
        return bounded_page(candidates, keep, public, limit=limit, after=after, scan_max=_PARTICIPANT_SCAN_MAX)

    async def balances(self, participant_id: str, asset_id: str | None = None) -> list[Balance]:
        """Balances per asset: available, held, deferred."""
        participant = await self.get_participant(participant_id)
        return [b for b in participant.balances if asset_id is None or b.asset_id == asset_id]

    async def lots(
        self,
        participant_id: str,
        asset_id: str,
        *,
        status: str | None = None,
        program_id: str | None = None,
        reference_id: str | None = None,
        expires_before: datetime | None = None,
        expires_after: datetime | None = None,
    ) -> list[Lot]:
        """A participant's lots of a LOT asset, oldest first, open and closed, filtered (all filters together;
        ``expires_before``/``expires_after`` keep only lots that expire, before or after the moment)."""
        self._require(participant_id)
        asset = self._catalog.asset(asset_id)
        if asset.inventory_mode != "LOT":
            raise ValidationFailed.field(
                "asset_id", "invalid", f"asset {asset.symbol} is SIMPLE; only LOT assets have lots"
            )
        await self._caught_up()
        lots = [
            msgspec.json.decode(raw, type=Lot)
            for _, raw in self._store.scan("lots", f"{participant_id}{asset_id}".encode())
        ]
        lots.sort(key=lambda lot: (lot.created_at, lot.number))
        return [
            lot
            for lot in lots
            if (status is None or lot.status == status)
            and (program_id is None or lot.program_id == program_id)
            and (reference_id is None or lot.reference_id == reference_id)
            and (expires_before is None or (lot.expires_at is not None and lot.expires_at < expires_before))
            and (expires_after is None or (lot.expires_at is not None and lot.expires_at > expires_after))
        ]

    # --- the journal -------------------------------------------------------------------------------------------

    async def get_journal_entry(self, entry_id: str) -> JournalEntry:
        """One journal entry with its postings and hash."""
        await self._caught_up()
        sequence = self._world.ids.sequence(KIND_ENTRY, entry_id)
        raw = self._store.get_raw("journal", be64(sequence)) if sequence is not None else None
        if raw is None:
            raise NotFound("journal entry", entry_id)
        entry = _records.decode_entry(raw)
        assert entry.id == entry_id
        assert entry.sequence == sequence
        return entry

    async def list_journal_entries(
        self,
        *,
        program_id: str | None = None,
        event_id: str | None = None,
        rule_id: str | None = None,
        participant_id: str | None = None,
        asset_id: str | None = None,
        reference_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        bucket: str | None = None,
        action_type: str | None = None,
        min_amount: str | None = None,
        max_amount: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Journal entries, newest first, filtered (all filters together).

        ``bucket``, ``asset_id`` and ``min_amount``/``max_amount`` (decimal strings, bounds included, compared with
        the signed posting amount) keep an entry when one of its postings matches them all (of the participant's
        postings, with ``participant_id``); ``action_type`` is the entry's.

        ``event_id`` is served from the event's own list, ``reference_id``, ``participant_id`` and ``rule_id``
        from the journal index; ``program_id``, ``asset_id`` and the time range are checked on the candidates.
        Like the events list, one call looks at most at ``_JOURNAL_SCAN_MAX`` candidates: a page may come back
        short (even empty) with ``has_more`` and a cursor to go on from (docs/limits.md).
        """
        limit = page_size(limit, self._limits)
        await self._caught_up()
        after = _decode_cursor(cursor)
        if after is not None and len(after) != 8:  # a journal cursor is a be64 sequence; any other is foreign
            raise cursors.invalid_cursor()

        low = amounts.parse_decimal(min_amount, "min_amount") if min_amount is not None else None
        high = amounts.parse_decimal(max_amount, "max_amount") if max_amount is not None else None

        def posting_matches(posting: Posting) -> bool:
            return (
                (
                    participant_id is None
                    or (posting.entity_type == "PARTICIPANT" and posting.entity_id == participant_id)
                )
                and (asset_id is None or posting.asset_id == asset_id)
                and (bucket is None or posting.bucket == bucket)
                and (low is None or Decimal(posting.amount) >= low)
                and (high is None or Decimal(posting.amount) <= high)
            )

        def keep(entry: JournalEntry) -> bool:
            return (
                (program_id is None or entry.program_id == program_id)
                and (event_id is None or entry.event_id == event_id)
                and (rule_id is None or entry.rule_id == rule_id)
                and (reference_id is None or entry.reference_id == reference_id)
                and (action_type is None or entry.action_type == action_type)
                and any(posting_matches(posting) for posting in entry.postings)
                and (created_from is None or entry.created_at >= created_from)
                and (created_to is None or entry.created_at < created_to)
            )

        if event_id is not None:
            return await self._event_entries(event_id, keep)
        candidates = (
            (key, _records.decode_entry(raw))
            for key, raw in self._journal_candidates(reference_id, participant_id, rule_id, after)
        )
        return bounded_page(candidates, keep, None, limit=limit, after=after, scan_max=_JOURNAL_SCAN_MAX)

    def _journal_candidates(
        self, reference_id: str | None, participant_id: str | None, rule_id: str | None, after: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(be64(sequence), stored entry)`` newest first, older than ``after``, from the most selective source."""
        indexed = [
            (kind, key)
            for kind, key in (("reference", reference_id), ("participant", participant_id), ("rule", rule_id))
            if key is not None
        ]
        if not indexed:
            yield from self._store.scan("journal", start=after, reverse=True)
            return
        prefix = _records.journal_index_prefix(*indexed[0])
        start = prefix + after if after is not None else None
        for index_key, _ in self._store.scan("journal_index", prefix, start=start, reverse=True):
            key = index_key[-8:]
            raw = self._store.get_raw("journal", key)
            assert raw is not None, "a journal index entry names an entry that does not exist"
            yield key, raw

    async def _event_entries(self, event_id: str, keep: Callable[[JournalEntry], bool]) -> Page:
        """An event's entries (at most a few per event), newest first, via the ids the event records."""
        try:
            event = await self.get_event(event_id)
        except NotFound:
            return Page(data=[], has_more=False, next_cursor=None)
        entries = [await self.get_journal_entry(entry_id) for entry_id in reversed(event.journal_entry_ids)]
        return Page(data=[entry for entry in entries if keep(entry)], has_more=False, next_cursor=None)


def bounded_page(
    candidates: Iterable[tuple[bytes, Any]],
    keep: Callable[[Any], bool],
    render: Callable[[Any], Any] | None,
    *,
    limit: int,
    after: bytes | None,
    scan_max: int,
) -> Page:
    """A page of the kept ``(store key, item)`` candidates (None items are skipped), rendered, looking at no more
    than ``scan_max`` of them: past that the page comes back short with a cursor at the last key looked at.

    The cursor of a full page is the last returned item's key, so the next page resumes strictly after it.
    """
    found: list[Any] = []
    last_found = last_key = after
    looked_at = 0
    for key, item in candidates:
        if looked_at == scan_max:  # the work bound: say where to go on from
            return Page(data=found, has_more=True, next_cursor=_encode_cursor(last_key))
        looked_at += 1
        last_key = key
        if item is None or not keep(item):
            continue
        if len(found) == limit:
            return Page(data=found, has_more=True, next_cursor=_encode_cursor(last_found))
        found.append(item if render is None else render(item))
        last_found = key
    return Page(data=found, has_more=False, next_cursor=None)


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


def _mentions(state: ParticipantState, needle: str) -> bool:
    """Whether ``needle`` (casefolded) is in the participant's external id, email, phone or a name."""
    texts = (state.external_id, *(state.profile.get(name) for name in _SEARCHED_PROFILE_FIELDS))
    return any(text is not None and needle in text.casefold() for text in texts)


_SEARCHED_PROFILE_FIELDS = ("email", "phone", "first_name", "last_name", "display_name")


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
