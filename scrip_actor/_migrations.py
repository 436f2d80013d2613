"""Store migrations, run on open inside the open's own write transaction (all or nothing).

Each step brings a store from one schema version to the next; ``Store`` applies them in order and then records
the new version in the same transaction, so a crash mid-migration leaves the old version, untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from scrip_actor.model import Event

__all__ = ["migrate_3_to_4"]

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
