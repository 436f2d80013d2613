"""Turning in-memory changes into store writes, and stored records back into memory. Keys per store.py."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import msgspec

from scrip_actor.amounts import check_counter
from scrip_actor.ids import KIND_STATE_CHANGE, SequenceIds
from scrip_actor.ledger import (
    OPEN_LOT_STATUSES,
    Changes,
    ParticipantRecord,
    ParticipantState,
    World,
    check_entry,
    check_lot_balances,
    decimal_text,
)
from scrip_actor.model import JournalEntry, Lot, StateChange, StateOperation, StateType
from scrip_actor.report_totals import hour_of, micros, time_index_prefix
from scrip_actor.store import Op, Store, be64, encode, external_id_key, unbe64

__all__ = [
    "STATE_SEQUENCE_KEY",
    "changes_ops",
    "decode_state_change",
    "journal_index_prefix",
    "journal_index_prefixes",
    "load_participant",
    "participant_created_key",
    "schedule_key",
    "state_history_key",
]

_lot_decoder = msgspec.json.Decoder(Lot)
_record_decoder = msgspec.json.Decoder(ParticipantRecord)
_entry_decoder = msgspec.json.Decoder(JournalEntry)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded UP: a key never comes due before its lot does."""
    delta = moment - _EPOCH
    return max(0, -(-(delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds) // 1000))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule_key(due: datetime, lot_id: str) -> bytes:
    """Key of a lot's due time in the ``schedule`` database."""
    return be64(_ms(due)) + lot_id.encode()


def participant_created_key(created_at: datetime, participant_id: str) -> bytes:
    """Key of a participant in ``participants_by_created``: creation time (µs since the epoch), then id."""
    return be64(micros(created_at)) + participant_id.encode()


def lot_key(lot: Lot) -> bytes:
    """Key of a lot: participant, asset, number (so a prefix scan gives a participant's lots in FIFO order)."""
    return f"{lot.participant_id}{lot.asset_id}".encode() + be64(lot.number)


def changes_ops(changes: Changes, journal_head: tuple[int, str]) -> list[Op]:
    """All writes of one committed :class:`Changes`, with the journal head after it."""
    ops: list[Op] = []
    for state in changes.participants:
        ops.append(("participants", state.id.encode(), encode(state.record_fields())))
        if state.stored_external_id != state.external_id:
            # Only new participants and renamed ones touch the (random-key) external id index.
            ops.append(("participant_ext", external_id_key(state.external_id), state.id.encode()))
            if state.stored_external_id is not None:
                ops.append(("participant_ext", external_id_key(state.stored_external_id), None))
            else:  # a new participant: schema 9 lists participants newest first from this index
                ops.append(("participants_by_created", participant_created_key(state.created_at, state.id), b""))
            state.stored_external_id = state.external_id
    for lot in changes.lots:
        assert 0 <= lot.remaining_minor <= lot.amount_minor
        ops.append(("lots", lot_key(lot), encode(lot)))
    assert len(changes.entry_bytes) == len(changes.entries)
    for entry, stored in zip(changes.entries, changes.entry_bytes, strict=True):
        # LedgerTx.commit checked and hashed each entry just before this; verify and decode_entry check after reading.
        assert entry.entry_hash
        assert entry.sequence > 0
        sequence_key = be64(entry.sequence)
        ops.append(("journal", sequence_key, stored))
        for prefix in journal_index_prefixes(entry):  # a loop, not a generator: this runs for every entry
            ops.append(("journal_index", prefix + sequence_key, b""))  # noqa: PERF401
    for account, balance in changes.accounts.items():
        ops.append(("accounts", account.encode(), encode(balance)))
    for due, lot_id, participant_id in changes.schedule:
        ops.append(("schedule", schedule_key(due, lot_id), participant_id.encode()))
    ops.extend(changes.report_ops)
    if changes.entries:
        ops.append(("meta", b"journal_head", encode(list(journal_head))))
    if changes.state_changes:
        for participant_id, sequence, fields in changes.state_changes:
            # The pair of decode_state_change's checks after reading: a numbered entry of the stored shape.
            assert sequence > 0
            assert len(fields) == len(_StoredStateChange.__struct_fields__)
            ops.append(("state_history", state_history_key(participant_id, sequence), encode(fields)))
        ops.append(("meta", STATE_SEQUENCE_KEY, encode(changes.state_changes[-1][1])))
    return ops


class _StoredStateChange(msgspec.Struct, array_like=True, frozen=True):
    """A state-history entry as stored: a JSON array, the id and participant left to the key (ledger.py's
    _numbered_state_changes writes the fields in this order)."""

    state_type: StateType  # Literal types: decoding checks them after reading
    key: str
    operation: StateOperation
    old_value: str | None
    new_value: str | None
    source: Literal["rule", "api", "lifecycle"]
    rule_id: str | None
    event_id: str | None
    program_id: str | None
    event_timestamp: datetime | None
    changed_at: datetime


_stored_state_decoder = msgspec.json.Decoder(_StoredStateChange)


def decode_state_change(key: bytes, raw: bytes, ids: SequenceIds) -> StateChange:
    """The public entry stored under ``key`` (counters' values in plain decimal text, as everywhere)."""
    assert len(key) > 9, "a state-history key is participant id NUL be64(sequence)"
    assert key[-9] == 0, "a state-history key is participant id NUL be64(sequence)"
    sequence = unbe64(key[-8:])
    stored = _stored_state_decoder.decode(raw)
    old_value, new_value = stored.old_value, stored.new_value
    if stored.state_type == "counter":  # stored as the Decimal's str(), which may use an exponent
        old_value = None if old_value is None else decimal_text(Decimal(old_value))
        new_value = None if new_value is None else decimal_text(Decimal(new_value))
    return StateChange(
        id=ids.make(KIND_STATE_CHANGE, sequence),
        sequence=sequence,
        participant_id=key[:-9].decode(),
        state_type=stored.state_type,
        key=stored.key,
        operation=stored.operation,
        old_value=old_value,
        new_value=new_value,
        source=stored.source,
        event_id=stored.event_id,
        rule_id=stored.rule_id,
        program_id=stored.program_id,
        event_timestamp=stored.event_timestamp,
        changed_at=stored.changed_at,
    )


STATE_SEQUENCE_KEY = b"state_sequence"  # meta: the last state-history entry's sequence


def state_history_key(participant_id: str, sequence: int) -> bytes:
    """Key of a state-history entry: the participant's prefix, then its number (a prefix scan lists them in order)."""
    return participant_id.encode() + b"\0" + be64(sequence)


_index_prefixes: dict[tuple[str, str], bytes] = {}
_INDEX_PREFIXES_MAX = 65536


def journal_index_prefix(kind: str, key: str) -> bytes:
    """``kind NUL id NUL`` as bytes, the ``journal_index`` prefix of a participant's or a rule's entries (cached:
    rules and active participants repeat)."""
    prefix = _index_prefixes.get((kind, key))
    if prefix is None:
        if len(_index_prefixes) >= _INDEX_PREFIXES_MAX:
            _index_prefixes.clear()
        prefix = _index_prefixes[(kind, key)] = f"{kind}\0{key}\0".encode()
    return prefix


# The hour the last entry fell in: [its start, its end, its ``time`` prefix]. Entries come in time order, so nearly
# every one is in the same hour as the last, which two datetime comparisons tell (no arithmetic; a dict keyed by
# the moment, as before, missed on every step and cost ~10 k instructions an event in hashing and clearing).
_last_hour: list[Any] = [_EPOCH, _EPOCH, b""]


def _time_prefix(entry: JournalEntry) -> bytes:
    """The ``time`` index prefix of an entry's hour."""
    moment = entry.created_at
    last = _last_hour
    if last[0] <= moment < last[1]:
        return last[2]  # type: ignore[no-any-return]
    hour = hour_of(moment)
    start = _EPOCH + timedelta(hours=hour)
    last[:] = [start, start + timedelta(hours=1), time_index_prefix(hour)]
    return last[2]  # type: ignore[no-any-return]


def journal_index_prefixes(entry: JournalEntry) -> list[bytes]:
    """The index prefixes an entry is listed under: the hour it was created in, its rule, its reference and each
    participant it posts to.

    Only what a query cannot find otherwise: programs and assets are few, so a journal scan bounded per call
    serves those filters (schema 5 dropped their index keys: two puts less per entry).
    """
    prefixes = [_time_prefix(entry)]  # schema 9: the hour of created_at, for the reports' period edges
    if entry.rule_id:
        prefixes.append(journal_index_prefix("rule", entry.rule_id))
    if entry.reference_id:  # schema 6: a hold's chain (hold, release, settle, void) and a lot's settlement
        prefixes.append(journal_index_prefix("reference", entry.reference_id))
    for posting in entry.postings:
        if posting.entity_type == "PARTICIPANT":
            prefix = journal_index_prefix("participant", posting.entity_id)
            if prefix not in prefixes:
                prefixes.append(prefix)
    return prefixes


def load_participant(store: Store, participant_id: str) -> ParticipantState | None:
    """Read a participant and its open lots from the store (assertions check the lot invariant on the way in)."""
    raw = store.get_raw("participants", participant_id.encode())
    if raw is None:
        return None
    record = _record_decoder.decode(raw)
    assert record.id == participant_id
    lots: dict[str, list[Lot]] = {}
    for _, value in store.scan("lots", participant_id.encode()):
        lot = _lot_decoder.decode(value)
        assert 0 <= lot.remaining_minor <= lot.amount_minor
        if lot.status in OPEN_LOT_STATUSES:
            lots.setdefault(lot.asset_id, []).append(lot)
    for asset_id in lots:
        lots[asset_id].sort(key=lambda lot: (lot.created_at, lot.number))
    for asset_id in record.lot_numbers:
        lots.setdefault(asset_id, [])
    state = ParticipantState(record, lots)
    state.stored_external_id = record.external_id
    check_lot_balances(state)  # the pair of the check LedgerTx makes before writing
    for value in state.counters.values():
        check_counter(value)  # the pair of the bounds every write holds a counter to (add_checked_counters)
    return state


def load_world(store: Store, world: World) -> None:
    """Read the accounts, the report totals and the journal head back (on open); the head must be the journal's
    last entry."""
    for key, raw in store.scan("accounts"):
        world.accounts[key.decode()] = msgspec.json.decode(raw, type=int)
    world.reports.load(store.scan)
    head = store.get("meta", b"journal_head", list[Any])
    if head is not None:
        world.journal_sequence, world.journal_hash = int(head[0]), str(head[1])
    state_sequence = store.get("meta", STATE_SEQUENCE_KEY, int)
    world.state_sequence = state_sequence or 0
    last = next(store.scan("journal", reverse=True), None)
    assert (last is None) == (world.journal_sequence == 0), "journal head and journal disagree"
    if last is not None:
        entry = decode_entry(last[1])
        assert entry.sequence == world.journal_sequence, "journal head is not the last entry"
        assert entry.entry_hash == world.journal_hash, "journal head hash is not the last entry's"


def load_schedule(store: Store) -> list[tuple[int, str, bytes]]:
    """The due lots as a heap of ``(due_ms, participant_id, key)``."""
    heap = [(unbe64(key[:8]), value.decode(), key) for key, value in store.scan("schedule")]
    heapq.heapify(heap)
    return heap


def decode_entry(raw: bytes) -> JournalEntry:
    """Decode a journal entry and check its invariants after reading it back."""
    entry = _entry_decoder.decode(raw)
    check_entry(entry)
    return entry
