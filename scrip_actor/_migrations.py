"""Store migrations, run on open inside the open's own write transaction (all or nothing).

Each step brings a store from one schema version to the next; ``Store`` applies them in order and then records
the new version in the same transaction, so a crash mid-migration leaves the old version, untouched.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec

from scrip_actor.model import Event

__all__ = [
    "migrate",
    "migrate_3_to_4",
    "migrate_4_to_5",
    "migrate_5_to_6",
    "migrate_6_to_7",
    "migrate_7_to_8",
    "migrate_8_to_9",
]

_log = logging.getLogger(__name__)
_event_decoder = msgspec.json.Decoder(Event)
_PROGRESS_EVERY = 100_000


def migrate_3_to_4(txn: Any, dbs: dict[str, Any]) -> int:
    """Build the event-list indexes (by external id, by matched rule, FAILED) from the events. Returns the count.

    Measured: 300k events in 3.1 s, open included (about 10 s per million) on the project's 2-core machine
    (docs/benchmarks.md); progress is logged every 100k.
    """
    # Imported here: store imports this module, and these helpers live in store.
    from scrip_actor.store import be64, events_by_external_key, events_by_rule_key

    count = 0
    cursor = txn.cursor(db=dbs["events"])
    for key, value in cursor.iternext():
        event = _event_decoder.decode(value)
        assert be64(event.sequence) == bytes(key), "an event is stored under another sequence"
        txn.put(events_by_external_key(event.external_id, event.sequence), b"", db=dbs["events_by_external"])
        for evaluation in event.rule_evaluations:
            if evaluation.status == "MATCHED":
                txn.put(events_by_rule_key(evaluation.rule_id, event.sequence), b"", db=dbs["events_by_rule"])
        if event.status == "FAILED":
            txn.put(bytes(key), b"", db=dbs["events_failed"])
        count += 1
        if count % _PROGRESS_EVERY == 0:
            _log.warning("migrating the store to schema 4: %d events indexed", count)
    _log.warning("migrated the store to schema 4: %d events indexed", count)
    return count


def _backfill_reports(txn: Any, dbs: dict[str, Any]) -> int:
    """Backfill the reports' running totals and the time indexes (schema 9) from the journal, the events, the
    participants and the lots. Returns the number of journal entries read.

    One pass over each; the totals are written whole at the end (they are small: hours x programs x assets).
    """
    from scrip_actor._event_records import decode_stored_event
    from scrip_actor.ledger import ParticipantRecord
    from scrip_actor.model import JournalEntry, Lot
    from scrip_actor.report_totals import event_time_key, hour_of, recompute, time_index_prefix

    entry_decoder = msgspec.json.Decoder(JournalEntry)
    count = 0

    def entries() -> Any:
        nonlocal count
        for key, value in txn.cursor(db=dbs["journal"]).iternext():
            entry = entry_decoder.decode(value)
            txn.put(time_index_prefix(hour_of(entry.created_at)) + bytes(key), b"", db=dbs["journal_index"])
            count += 1
            if count % _PROGRESS_EVERY == 0:
                _log.warning("migrating the store to schema 9: %d journal entries read", count)
            yield entry

    def events() -> Any:
        for key, value in txn.cursor(db=dbs["events"]).iternext():
            stored = decode_stored_event(bytes(value))
            hour = hour_of(stored.event_timestamp)
            txn.put(event_time_key(stored.program_id, hour) + bytes(key), b"", db=dbs["events_by_time"])
            yield stored.program_id, stored.event_timestamp, bytes(key)

    record_decoder = msgspec.json.Decoder(ParticipantRecord)
    lot_decoder = msgspec.json.Decoder(Lot)
    participants = (record_decoder.decode(value) for _, value in txn.cursor(db=dbs["participants"]).iternext())
    lots = (lot_decoder.decode(value) for _, value in txn.cursor(db=dbs["lots"]).iternext())
    totals = recompute(entries(), events(), participants, lots)
    for db, values in totals.stored_form().items():
        for key, value in values.items():
            txn.put(key, value, db=dbs[db])
    _log.warning("migrated the store to schema 9: %d journal entries read", count)
    return count


def migrate(txn: Any, dbs: dict[str, Any], from_version: int, to_version: int) -> None:
    """Bring a store from ``from_version`` to ``to_version``, one step after another, in ``txn``."""
    steps = {
        3: migrate_3_to_4,
        4: migrate_4_to_5,
        5: migrate_5_to_6,
        6: migrate_6_to_7,
        7: migrate_7_to_8,
        8: migrate_8_to_9,
        9: migrate_9_to_10,
    }
    version = from_version
    while version < to_version:
        steps[version](txn, dbs)
        version += 1
    assert version == to_version


class _ParticipantRecordV4(msgspec.Struct, kw_only=True):
    """A participant as schema 4 stored it: a JSON object (schema 5 stores the same fields as an array)."""

    id: str
    external_id: str
    status: str = "ACTIVE"
    profile: dict[str, str] = {}
    tags: list[str] = []
    counters: dict[str, str] = {}
    attributes: dict[str, str] = {}
    program_ids: list[str] = []
    balances: dict[str, list[int]] = {}
    overdraft: dict[str, int] = {}
    lot_numbers: dict[str, int] = {}
    created_at: datetime
    updated_at: datetime


def migrate_4_to_5(txn: Any, dbs: dict[str, Any]) -> int:
    """Split each event into its admitted record and its outcome, number the rule sets its evaluations name,
    store participants and idempotency records in their compact forms, drop the journal index's program and
    asset keys (schema 5 serves those filters with a bounded scan), and replace the first attempts' inbox
    records by the processed-below mark. Returns the events migrated.

    Everything is re-read and checked on the way (the outcome must decode back to the same Event), so a store
    this cannot migrate exactly stays at schema 4 (the open's transaction aborts).
    """
    from scrip_actor._event_records import decode_event, encode_event, encode_outcome
    from scrip_actor.ids import KIND_ENTRY, SequenceIds
    from scrip_actor.ledger import ParticipantRecord
    from scrip_actor.store import PROCESSED_BELOW_KEY, be32, be64, encode, unbe64

    ids = SequenceIds(msgspec.json.decode(txn.get(b"id_prefix", db=dbs["meta"]), type=int))
    rule_sets: dict[tuple[tuple[str, int], ...], int] = {}
    members_by_number: dict[int, list[tuple[str, int, str]]] = {}
    count = 0
    for key, value in list(txn.cursor(db=dbs["events"]).iternext()):
        event = _event_decoder.decode(value)
        assert be64(event.sequence) == bytes(key), "an event is stored under another sequence"
        pending_first_attempt = event.attempts == 0 and event.status in ("RECEIVED", "PENDING", "PROCESSING")
        named = event.participant_id if pending_first_attempt else None  # afterwards, the outcome carries it
        admitted = msgspec.structs.replace(event, participant_id=named)
        txn.put(bytes(key), encode_event(admitted, msgspec.json.encode(event.event_data)), db=dbs["events"])
        outcome = None
        if not pending_first_attempt:
            if event.status in ("RECEIVED", "PROCESSING"):  # never processed to disk: it is PENDING again
                event.status = "PENDING"
            number = _rule_set_number(event, rule_sets, members_by_number, txn, dbs, be32, encode)
            entries = [ids.sequence(KIND_ENTRY, entry_id) for entry_id in event.journal_entry_ids]
            assert None not in entries, f"event {event.id} names a journal entry of another store"
            outcome = encode_outcome(event, number, entries)  # type: ignore[arg-type]
            txn.put(bytes(key), outcome, db=dbs["event_outcomes"])
        migrated = decode_event(event.sequence, txn.get(bytes(key), db=dbs["events"]), outcome, ids, members_by_number)
        if not pending_first_attempt:
            assert migrated == event, f"event {event.id} would not read back the same after migration"
        count += 1
        if count % _PROGRESS_EVERY == 0:
            _log.warning("migrating the store to schema 5: %d events", count)
    # First attempts still to process lose their inbox records: the open finds them from the processed-below mark.
    waiting = [bytes(key) for key, value in txn.cursor(db=dbs["inbox_pending"]).iternext() if not value]
    for key in waiting:
        txn.delete(key, db=dbs["inbox_pending"])
    last_event = txn.cursor(db=dbs["events"])
    mark = unbe64(min(waiting)) if waiting else (unbe64(last_event.key()) + 1 if last_event.last() else 1)
    txn.put(PROCESSED_BELOW_KEY, be64(mark), db=dbs["meta"])
    for key, value in list(txn.cursor(db=dbs["idempotency"]).iternext()):
        sequence, _payload_hash = msgspec.json.decode(value, type=tuple[int, str])
        txn.put(bytes(key), be64(sequence), db=dbs["idempotency"])
    for key, value in list(txn.cursor(db=dbs["participants"]).iternext()):
        old = msgspec.json.decode(value, type=_ParticipantRecordV4)
        txn.put(bytes(key), encode(ParticipantRecord(**msgspec.structs.asdict(old))), db=dbs["participants"])
    index = dbs["journal_index"]
    for prefix in (b"program\0", b"asset\0"):  # schema 5 indexes entries by participant and rule only
        cursor = txn.cursor(db=index)
        while cursor.set_range(prefix) and bytes(cursor.key()).startswith(prefix):
            cursor.delete()
    _log.warning("migrated the store to schema 5: %d events, %d rule sets", count, len(rule_sets))
    return count


def _rule_set_number(
    event: Event,
    rule_sets: dict[tuple[tuple[str, int], ...], int],
    members_by_number: dict[int, list[tuple[str, int, str]]],
    txn: Any,
    dbs: dict[str, Any],
    be32: Any,
    encode: Any,
) -> int:
    """The rule set number of an event's evaluations, storing the set when it is new (0: no evaluations)."""
    if not event.rule_evaluations:
        return 0
    members = [(e.rule_id, e.rule_version, e.rule_name) for e in event.rule_evaluations]
    key = tuple((rule_id, version) for rule_id, version, _ in members)
    number = rule_sets.get(key)
    if number is None:
        number = rule_sets[key] = len(rule_sets) + 1
        members_by_number[number] = members
        txn.put(be32(number), encode(members), db=dbs["rule_sets"])
    return number


def migrate_5_to_6(txn: Any, dbs: dict[str, Any]) -> int:
    """Schema 6 adds the ``operation_keys`` database (balance operations' idempotency), which the open has just
    created empty, three optional lot fields (``reference_id``, ``provisional``, ``parent_lot_id``) that schema 5's
    lots read back at their defaults, and a journal index by ``reference_id``, built here (settlement entries
    name their lot). Returns the entries indexed."""
    from scrip_actor._records import decode_entry, journal_index_prefix

    assert "operation_keys" in dbs
    count = 0
    for key, raw in txn.cursor(db=dbs["journal"]).iternext():
        entry = decode_entry(bytes(raw))
        if entry.reference_id:  # schema 6 indexes entries by reference (scrip_actor._records)
            txn.put(journal_index_prefix("reference", entry.reference_id) + bytes(key), b"", db=dbs["journal_index"])
            count += 1
    _log.warning("migrated the store to schema 6: %d journal entries indexed by reference", count)
    return count


def migrate_6_to_7(txn: Any, dbs: dict[str, Any]) -> int:
    """Schema 7 adds the ``redemptions`` and ``redemptions_by_participant`` databases, which the open has just
    created empty (no store before it held a redemption): nothing to rewrite. Returns 0."""
    assert "redemptions" in dbs
    assert "redemptions_by_participant" in dbs
    return 0


def migrate_7_to_8(txn: Any, dbs: dict[str, Any]) -> int:
    """Schema 8 adds the reward catalog (``rewards``, ``reward_counts``), created empty by the open. Returns 0."""
    assert "rewards" in dbs
    assert "reward_counts" in dbs
    return 0


def migrate_8_to_9(txn: Any, dbs: dict[str, Any]) -> int:
    """Schema 9 (program mechanics) adds databases, created empty by the open: a participant's state history
    (``state_history``) starts with the changes made after the upgrade; tier definitions (``tiers``) and rule
    budgets (``rule_budgets``) start empty; participants are listed newest first from ``participants_by_created``,
    backfilled here from every participant record; and the reports' running totals and time indexes are backfilled
    from the journal, events, participants and lots (:func:`_backfill_reports`). Returns the participants indexed."""
    from scrip_actor._records import participant_created_key
    from scrip_actor.ledger import ParticipantRecord

    assert "state_history" in dbs
    assert "tiers" in dbs  # tier definitions; participants hold no level until an event or a call gives one
    assert "rule_budgets" in dbs  # no rule had a budget before schema 9 (its rules read back with budgets=[])
    assert "participants_by_created" in dbs
    decoder = msgspec.json.Decoder(ParticipantRecord)
    count = 0
    for key, raw in txn.cursor(db=dbs["participants"]).iternext():
        record = decoder.decode(bytes(raw))
        assert record.id.encode() == bytes(key), "a participant is stored under another id"
        txn.put(participant_created_key(record.created_at, record.id), b"", db=dbs["participants_by_created"])
        count += 1
    _log.warning("migrated the store to schema 9: %d participants indexed by creation time", count)
    _backfill_reports(txn, dbs)
    return count


def migrate_9_to_10(txn: Any, dbs: dict[str, Any]) -> int:
    """Schema 10 (push and time) only adds databases, created empty by the open: a v9 store has no webhook
    endpoints, nothing in the outbox, and no automations. Returns 0 (no record rewritten)."""
    assert "meta" in dbs
    assert "automations" in dbs
    assert "automation_schedule" in dbs
    assert "automation_runs" in dbs
    assert "automation_subscriptions" in dbs
    assert "webhook_endpoints" in dbs
    assert "webhook_events" in dbs
    assert "webhook_deliveries" in dbs
    assert "webhook_queue" in dbs
    assert "webhook_by_endpoint" in dbs
    _log.warning("migrated the store to schema 10: new databases created empty")
    return 0
