"""``verify``'s check of the reports' running totals (schema 9): recompute them from the journal, the events, the
participants and the lots, and compare with what the engine stored, key by key.

The totals are a cache like the account balances: a mismatch means a report would answer wrong, so verify names
each differing key (the database, the key, the stored and the recomputed value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from scrip_actor._event_records import decode_stored_event
from scrip_actor.ledger import ParticipantRecord
from scrip_actor.model import JournalEntry, Lot
from scrip_actor.report_totals import event_time_key, hour_of, recompute

__all__ = ["check_report_totals"]

_entry_decoder = msgspec.json.Decoder(JournalEntry)
_record_decoder = msgspec.json.Decoder(ParticipantRecord)
_lot_decoder = msgspec.json.Decoder(Lot)


def check_report_totals(snapshot: Any, problem: Callable[[str], None]) -> None:
    """Report every stored total that differs from a recomputation, and every event missing its time key.

    ``snapshot`` reads one committed state (``scan(db)``, ``get_raw(db, key)``); ``problem`` records a finding.
    """

    def entries() -> Iterator[JournalEntry]:
        for _, raw in snapshot.scan("journal"):
            try:
                yield _entry_decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # the journal check reports it

    def events() -> Iterator[tuple[str, Any, bytes]]:
        for key, raw in snapshot.scan("events"):
            try:
                stored = decode_stored_event(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # the events check reports it
            time_key = event_time_key(stored.program_id, hour_of(stored.event_timestamp)) + key
            if snapshot.get_raw("events_by_time", time_key) is None:
                problem(f"event #{int.from_bytes(key, 'big')}: missing from events_by_time (period reports miss it)")
            yield stored.program_id, stored.event_timestamp, key

    participants = (_record_decoder.decode(raw) for _, raw in snapshot.scan("participants"))
    lots = (_lot_decoder.decode(raw) for _, raw in snapshot.scan("lots"))
    expected = recompute(entries(), events(), participants, lots).stored_form()
    for db, values in expected.items():
        stored = dict(snapshot.scan(db))
        for key in sorted(set(stored) | set(values)):
            if stored.get(key) != values.get(key):
                problem(
                    f"report total {db} {key.decode(errors='replace')!r}: stored {_text(stored.get(key))}, "
                    f"recomputed {_text(values.get(key))}"
                )


def _text(raw: bytes | None) -> str:
    return "nothing" if raw is None else raw.decode(errors="replace")
