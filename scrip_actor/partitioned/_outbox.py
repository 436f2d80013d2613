"""The cross-partition outbox: an effect on another partition's participant, applied there exactly once.

A transfer's recipient or a referrer's credit may live on another partition. The origin partition cannot write
there, so in the SAME LMDB txn as its own effects (and its consumed offset) it appends an ``OutboxRecord`` keyed by
(origin partition, origin offset, ordinal). A relay reads ``pending`` in key order, produces each record to its
destination partition's topic, and once the broker has acknowledged them calls ``mark_relayed`` (a new txn). A
crash between produce and mark-relayed re-produces them: the destination absorbs that, because ``apply_once`` checks
and records (origin partition, origin offset, ordinal) in the SAME txn as the applied effect — True means "apply it
now", False means "already applied, skip".

Dedupe markers would grow forever, so ``prune`` keeps, per origin, a *watermark*: every record of that origin below
it counts as applied, and the markers below it are deleted. It is set to the highest origin offset applied so far,
which is safe because the relay produces an origin's records in offset order and the destination consumes one topic
partition in order, so applied offsets are monotone per origin (a re-relay only repeats records already applied).
The markers of the highest offset itself are kept, as more ordinals of that offset may still arrive.

Keyspaces in the ``outbox`` named database (big-endian numbers, so key order is offset order):
``o:`` + (origin, offset, ordinal) → pending record; ``a:`` + (origin, offset, ordinal) → applied marker;
``w:`` + origin → watermark offset.
"""

from __future__ import annotations

import struct

import lmdb
import msgspec

from scrip_actor.store import Op

OUTBOX_DB = b"outbox"
_KEY = struct.Struct(">IQI")
_ORIGIN = struct.Struct(">I")
_OFFSET = struct.Struct(">Q")


class OutboxRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One effect for another partition; ``payload`` is the destination's command, encoded by the caller."""

    origin_partition: int
    origin_offset: int
    ordinal: int
    destination_partition: int
    payload: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(OutboxRecord)


def _key(prefix: bytes, record: OutboxRecord) -> bytes:
    return prefix + _KEY.pack(record.origin_partition, record.origin_offset, record.ordinal)


class Outbox:
    """Both ends of the outbox on one partition's LMDB environment (room for one more named database)."""

    def __init__(self, env: lmdb.Environment) -> None:
        self._db = env.open_db(OUTBOX_DB)

    def append(self, txn: lmdb.Transaction, record: OutboxRecord) -> None:
        """Record an effect for another partition, in the caller's txn (the one with its own effects)."""
        assert record.origin_partition != record.destination_partition, record
        assert txn.put(_key(b"o:", record), _ENCODER.encode(record), db=self._db, overwrite=False), record

    # --- the same writes as ops, for the engine's writer (one LMDB record with the effects that caused them) -----

    @staticmethod
    def append_op(record: OutboxRecord) -> Op:
        """:meth:`append` as a writer op (``Store.open_side_database("outbox")`` must have been called). A shared
        wallet's or budget's owner may address itself (its own asks and answers go through its log: _effects.py)."""
        return (OUTBOX_DB.decode(), _key(b"o:", record), _ENCODER.encode(record))

    @staticmethod
    def relayed_ops(records: list[OutboxRecord]) -> list[Op]:
        """:meth:`mark_relayed` as writer ops."""
        return [(OUTBOX_DB.decode(), _key(b"o:", record), None) for record in records]

    def applied_op(self, txn: lmdb.Transaction, record: OutboxRecord) -> Op | None:
        """:meth:`apply_once` as a writer op: None for a duplicate (already applied, or below the watermark).

        The check reads committed state only, so the caller must not look at a second copy of a record before the
        first one's op is durable (the engine role applies effect records one at a time).
        """
        if record.origin_offset < self.watermark(txn, record.origin_partition):
            return None
        key = _key(b"a:", record)
        if txn.get(key, db=self._db) is not None:
            return None
        return (OUTBOX_DB.decode(), key, b"")

    def pending(self, txn: lmdb.Transaction, limit: int = 1_000) -> list[OutboxRecord]:
        """Records not yet marked relayed, in (origin, offset, ordinal) order."""
        records: list[OutboxRecord] = []
        with txn.cursor(db=self._db) as cursor:
            if not cursor.set_range(b"o:"):
                return records
            for key, value in cursor:
                if not key.startswith(b"o:") or len(records) >= limit:
                    break
                record = _DECODER.decode(value)
                assert _key(b"o:", record) == key, (key, record)
                records.append(record)
        return records

    def mark_relayed(self, txn: lmdb.Transaction, records: list[OutboxRecord]) -> None:
        """Forget records the broker has acknowledged (a second mark is harmless)."""
        for record in records:
            txn.delete(_key(b"o:", record), db=self._db)

    def watermark(self, txn: lmdb.Transaction, origin_partition: int) -> int:
        """Every record of this origin below this offset counts as applied (0 before any prune)."""
        raw = txn.get(b"w:" + _ORIGIN.pack(origin_partition), db=self._db)
        return 0 if raw is None else _OFFSET.unpack(raw)[0]

    def apply_once(self, txn: lmdb.Transaction, record: OutboxRecord) -> bool:
        """True the first time (apply the effect in this same txn), False for a duplicate."""
        if record.origin_offset < self.watermark(txn, record.origin_partition):
            return False
        return txn.put(_key(b"a:", record), b"", db=self._db, overwrite=False)

    def prune(self, txn: lmdb.Transaction, origin_partition: int) -> int:
        """Raise the origin's watermark to its highest applied offset and delete the markers below; their count."""
        prefix = b"a:" + _ORIGIN.pack(origin_partition)
        keys: list[bytes] = []
        with txn.cursor(db=self._db) as cursor:
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    keys.append(bytes(key))
        if not keys:
            return 0
        highest_offset = _KEY.unpack(keys[-1][2:])[1]
        old_watermark = self.watermark(txn, origin_partition)
        assert highest_offset >= old_watermark, (highest_offset, old_watermark)
        below = [key for key in keys if _KEY.unpack(key[2:])[1] < highest_offset]
        for key in below:
            txn.delete(key, db=self._db)
        txn.put(b"w:" + _ORIGIN.pack(origin_partition), _OFFSET.pack(highest_offset), db=self._db)
        return len(below)
