"""LMDB: the only store. Schema, codecs, and the one group-commit writer.

Layout (named databases; big-endian integer keys where order matters):

=================  ==========================================  ==============================================
database           key                                         value
=================  ==========================================  ==============================================
meta               b"schema", b"journal_head", b"id_prefix"    JSON; b"processed_below": be64 (see Admission)
programs           program id                                  Program
assets             asset id                                    Asset
asset_symbols      upper-cased symbol                          asset id
rules              rule id                                     Rule (current version)
rule_versions      rule id + be32(version)                     RuleVersion
participants       participant id                              ParticipantRecord
participant_ext    sha256(external id)                         participant id
lots               participant id + asset id + be64(number)    Lot
events             be64(sequence)                              StoredEvent, written once at admission (_event_records)
event_outcomes     be64(sequence)                              StoredOutcome: status, attempts, entries, evaluations
rule_sets          be32(number)                                [[rule id, version, name], ...] an outcome's rules
events_by_external sha256(external id) + be64(sequence)        b"" (written at admission; the list filter's index)
events_by_rule     rule id + NUL + be64(sequence)              b"" (the rule MATCHED; written with the outcome)
events_failed      be64(sequence)                              b"" (FAILED; deleted when the event is retried)
inbox_pending      be64(position)                              be64(sequence) of a retried event, until its outcome
idempotency        program id + NUL + sha256(key)              be64(event sequence)
journal            be64(sequence)                              JournalEntry; the id carries the sequence
journal_index      kind + NUL + id + NUL + be64(sequence)      b"" (participant/rule/program/asset)
accounts           account key                                 balance in minor units (JSON int)
schedule           be64(due_ms) + lot id                       participant id (lot expiry/maturity to sweep)
automations        automation id                               Automation (schema 10, docs/automations.md)
automation_sched.  be64(due_ms) + automation id [+ NUL manual]  b"": its next fire (or a trigger); automation_schedule
automation_runs    automation id + be64(fire_ms)               AutomationRun: a fire's cursor while it runs
automation_subs.   automation id + NUL + participant id        Subscription; full name automation_subscriptions
webhook_endpoints  endpoint id                                 StoredEndpoint (secrets Fernet-encrypted)
webhook_events     be64(outbox sequence)                       OutboxRecord: the envelope's bytes, its endpoints
webhook_deliveries delivery id                                 WebhookDelivery (status, attempts, response)
webhook_queue      endpoint id + NUL + be64(outbox sequence)   delivery id, while the delivery is PENDING
webhook_by_endpoint endpoint id + NUL + be64(outbox sequence)  delivery id (GET .../deliveries, newest first)
=================  ==========================================  ==============================================

Values are msgspec JSON: unlike msgpack it stores Python ints of any size exactly (amounts at scale 18 exceed
64 bits). The writer owns every write transaction: records go in the order the engine produced them, so the disk is
always a prefix of memory. It also keeps the process's resident share of LMDB's memory map bounded
(``storage.lmdb_map_resident_max_mb``; see scrip_actor._residency).
"""

from __future__ import annotations

import hashlib
import operator
import os
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from time import monotonic
from typing import Any, TypeVar

import lmdb
import msgspec
import trio

from scrip_actor._data_dir import (
    DATA_FILE_NAME,
    ENV_DIR_NAME,
    DataDirLock,
    check_data_file,
    held_in_this_process,
    prepare_data_dir,
)
from scrip_actor._residency import MapResidency
from scrip_actor._write_thread import WriteThread
from scrip_actor.errors import DataDirInUse, DataFileDamaged, SchemaMismatch
from scrip_actor.ids import new_prefix

__all__ = [
    "DATABASES",
    "PROCESSED_BELOW_KEY",
    "Op",
    "Store",
    "Writer",
    "be32",
    "be64",
    "events_by_external_key",
    "events_by_rule_key",
    "external_id_key",
    "idempotency_key",
    "unbe32",
    "unbe64",
]

# 4: the events_by_external / events_by_rule / events_failed indexes.
# 5: events written once, outcomes beside them with evaluations against numbered rule sets, compact participants,
#    idempotency records without the payload hash (the event carries it). v3 and v4 stores are migrated on open.
# 9: the reports' running totals (report_hours, report_counts, report_expiry), the journal index's hour keys and
#    events_by_time; a v8 store is backfilled from its journal, events, participants and lots on open.
# 10: push and time (webhook endpoints, their outbox and deliveries; automations and their runs); a v9 store gains
#     the new databases empty.
SCHEMA_VERSION = 10
# Older schemas a writable open migrates, step by step (scrip_actor._migrations).
_MIGRATABLE_VERSIONS = (3, 4, 5, 6, 7, 8, 9)
KEY_BYTES_MAX = 511  # LMDB's compiled-in maximum key size
# Databases keyed by an increasing sequence: new keys are always the largest (see Store.write).
_APPEND_DATABASES = frozenset({"journal", "events", "inbox_pending", "events_failed", "rule_sets", "webhook_events"})
# Databases whose records each carry a key's whole new value: within one batch only the last one is put (fill).
_LAST_VALUE_DATABASES = frozenset(
    {"meta", "accounts", "participants", "event_outcomes", "redemptions", "rewards", "reward_counts", "tiers"}
    | {"rule_budgets", "report_hours", "report_counts", "report_expiry"}
    | {"automations", "automation_runs", "automation_subscriptions"}  # schema 10
    | {"webhook_endpoints", "webhook_deliveries"}
)
SIDE_DATABASES = ("outbox", "claims", "parked", "leases")  # see Store.open_side_database
DATABASES = (
    "meta",
    "programs",
    "assets",
    "asset_symbols",
    "rules",
    "rule_versions",
    "participants",
    "participant_ext",
    "lots",
    "events",
    "event_outcomes",
    "rule_sets",
    "events_by_external",
    "events_by_rule",
    "events_failed",
    "inbox_pending",
    "idempotency",
    "journal",
    "journal_index",
    "accounts",
    "schedule",
    "operation_keys",  # schema 6: a balance operation's idempotency key -> its request hash and result
    "redemptions",  # schema 7: redemption id -> the redemption, what it spent, its reversals
    "redemptions_by_participant",  # schema 7: participant NUL be64(created µs) id -> b""
    "rewards",  # schema 8: reward id -> the catalog item with its redeemed count
    "reward_counts",  # schema 8: reward id NUL participant id -> be64(units redeemed), for max_per_participant
    "state_history",  # schema 9: participant id NUL be64(state change sequence) -> the StateChange
    "participants_by_created",  # schema 9: be64(created µs) participant id -> b"", GET /participants newest first
    "tiers",  # schema 9: program id NUL tier key -> the tier definition (scrip_actor/tiers.py)
    "rule_budgets",  # schema 9: rule id NUL asset id -> the budget's consumed amount and current period
    "report_hours",  # schema 9: program NUL asset NUL hour -> the hour's report columns (report_totals.py)
    "report_counts",  # schema 9: holders / enrolled / last activity per program (and asset) -> an int
    "report_expiry",  # schema 9: program NUL asset NUL expiry day + 1 (0: never) -> [open lot value, open lots]
    "events_by_time",  # schema 9: program NUL hour of event_timestamp NUL be64(sequence) -> b""
    "automations",  # schema 10: automation id -> the Automation (scrip_actor/automations.py)
    "automation_schedule",  # schema 10: be64(due ms) automation id [NUL "manual"] -> b"", its next fire
    "automation_runs",  # schema 10: automation id be64(fire ms) -> the AutomationRun while it executes
    "automation_subscriptions",  # schema 10: automation id NUL participant id -> the Subscription
    "webhook_endpoints",  # schema 10: endpoint id -> the endpoint, its secrets encrypted (scrip_actor/webhooks)
    "webhook_events",  # schema 10: be64(outbox sequence) -> the outbox record: the envelope and its endpoints
    "webhook_deliveries",  # schema 10: delivery id -> the delivery (status, attempts, last response)
    "webhook_queue",  # schema 10: endpoint id NUL be64(outbox sequence) -> delivery id, while PENDING
    "webhook_by_endpoint",  # schema 10: endpoint id NUL be64(outbox sequence) -> delivery id (the endpoint's list)
)

T = TypeVar("T")
# meta key: every event below this sequence has its first attempt's outcome stored (absent: scan from the first).
PROCESSED_BELOW_KEY = b"processed_below"
# One write: (database, key, value); value None deletes the key.
Op = tuple[str, bytes, bytes | None]

_BE64 = struct.Struct(">Q")
_BE32 = struct.Struct(">I")
_encoder = msgspec.json.Encoder()


def be64(value: int) -> bytes:
    """Big-endian u64: keys that sort in numeric order."""
    return _BE64.pack(value)


def unbe64(data: bytes) -> int:
    """Inverse of :func:`be64`."""
    return int(_BE64.unpack(data)[0])


def be32(value: int) -> bytes:
    """Big-endian u32."""
    return _BE32.pack(value)


def unbe32(data: bytes) -> int:
    """Inverse of :func:`be32`."""
    return int(_BE32.unpack(data)[0])


def external_id_key(external_id: str) -> bytes:
    """The ``participant_ext`` key: a digest, because 255 characters of UTF-8 can exceed LMDB's 511-byte keys."""
    return hashlib.sha256(external_id.encode()).digest()


def events_by_external_key(external_id: str, sequence: int) -> bytes:
    """The ``events_by_external`` key: the external id's digest, then the event's sequence (newest last)."""
    return external_id_key(external_id) + _BE64.pack(sequence)


def events_by_rule_key(rule_id: str, sequence: int) -> bytes:
    """The ``events_by_rule`` key: the rule id, NUL, then the event's sequence."""
    return rule_id.encode() + b"\0" + _BE64.pack(sequence)


def idempotency_key(program_id: str, key: str) -> bytes:
    """The ``idempotency`` key of a client's key in a program (a digest, for the same reason)."""
    return program_id.encode() + b"\0" + hashlib.sha256(key.encode()).digest()


def encode(value: Any) -> bytes:
    """Encode a record for storage (JSON, arbitrary-size ints kept exactly)."""
    return _encoder.encode(value)


class Store:
    """An open LMDB environment with its named databases, plus typed read helpers.

    Reads run on the caller's thread in short read-only transactions; LMDB readers never block the writer.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        map_size_bytes: int,
        sync: bool,
        max_readers: int,
        readonly: bool = False,
    ) -> None:
        path = Path(data_dir)
        self.path = path
        self.dbs: dict[str, Any] = {}
        self._reader: Any = None
        self._lock: DataDirLock | None = None
        # Refusals come before LMDB maps anything: a bad directory, another owner, a file that would SIGBUS.
        prepare_data_dir(path, create=not readonly)
        if readonly:
            if held_in_this_process(path):
                # A second LMDB environment on one file in one process breaks LMDB's POSIX locks when it closes.
                raise DataDirInUse(f"data directory {path} is open in this process: use Engine.verify()")
            map_size_bytes = _readonly_map_size(path, map_size_bytes)
        else:
            self._lock = DataDirLock(path)  # held until close(): this process owns the directory
        try:
            if not readonly:
                check_data_file(path, map_size_bytes=map_size_bytes, extend_free_tail=True)
            self.env = _open_environment(path, map_size_bytes, sync=sync, max_readers=max_readers, readonly=readonly)
            try:
                self._open_databases(readonly)
            except BaseException:
                self.env.close()
                raise
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _open_databases(self, readonly: bool) -> None:
        """Open every named database; refuse a store of another schema before writing anything to it."""
        if readonly:
            # Handles must outlive one transaction: let py-lmdb open them in its own committed read transaction.
            try:
                meta = self.env.open_db(b"meta", create=False)
            except lmdb.NotFoundError:
                raise SchemaMismatch(schema_problem(self.path, None)) from None
            with self.env.begin() as txn:
                problem = schema_problem(self.path, txn.get(b"schema", db=meta))
            if problem is not None:
                raise SchemaMismatch(problem)
            for name in DATABASES:
                self.dbs[name] = self.env.open_db(name.encode(), create=False)
            return
        fresh = self.env.stat()["entries"] == 0  # no named database yet: nothing was ever written here
        with self.env.begin(write=True) as txn:
            for name in DATABASES:
                self.dbs[name] = self.env.open_db(name.encode(), txn=txn, create=True)
            meta = self.dbs["meta"]
            schema = txn.get(b"schema", db=meta)
            if fresh:
                txn.put(b"schema", encode(SCHEMA_VERSION), db=meta)
            elif schema is not None and _stored_version(schema) in _MIGRATABLE_VERSIONS:
                from scrip_actor._migrations import migrate

                migrate(txn, self.dbs, _stored_version(schema), SCHEMA_VERSION)
                txn.put(b"schema", encode(SCHEMA_VERSION), db=meta)
            else:
                problem = schema_problem(self.path, schema)
                if problem is not None:
                    raise SchemaMismatch(problem)  # the transaction aborts: the old store is left as it was
            if txn.get(b"id_prefix", db=meta) is None:
                txn.put(b"id_prefix", encode(new_prefix()), db=meta)

    def open_side_database(self, name: str) -> None:
        """Open (creating) a named database that is not part of the schema, so the writer can write it.

        Side databases belong to a role, not to every store: partitioned mode's cross-partition ``outbox``
        (scrip_actor/partitioned/_outbox.py) exists only in partition stores. ``max_dbs`` leaves room for them, and
        an embedded store never has one, so the schema and its migrations do not change.
        """
        assert name in SIDE_DATABASES, name
        if name not in self.dbs:
            self.dbs[name] = self.env.open_db(name.encode(), create=True)

    @property
    def id_prefix(self) -> int:
        """This store's random id prefix (see scrip_actor.ids)."""
        prefix = self.get("meta", b"id_prefix", int)
        assert prefix is not None, "store has no id prefix"
        return prefix

    def close(self) -> None:
        """Close the environment, then give up the data directory (idempotent)."""
        if self._reader is not None:
            self._reader.abort()
            self._reader = None
        self.env.close()
        if self._lock is not None:
            self._lock.release()

    # --- reads ------------------------------------------------------------------------------------------------

    def get_raw(self, db: str, key: bytes) -> bytes | None:
        """One value, or None, from the cached read transaction (see :meth:`renew_reader`).

        A key LMDB cannot hold (empty, or longer than its 511-byte limit) is simply absent: ids come from callers.
        """
        if not 0 < len(key) <= KEY_BYTES_MAX:
            return None
        reader = self._reader
        if reader is None:
            reader = self._reader = self.env.begin()
        value = reader.get(key, db=self.dbs[db])  # inline, not get_side_raw: this is on the event path
        return None if value is None else bytes(value)

    def get_side_raw(self, handle: Any, key: bytes) -> bytes | None:
        """:meth:`get_raw` from a database opened by handle (:meth:`open_side_database`'s), in the same cached
        read transaction: reads of both kinds see one snapshot."""
        if not 0 < len(key) <= KEY_BYTES_MAX:
            return None
        reader = self._reader
        if reader is None:
            reader = self._reader = self.env.begin()
        value = reader.get(key, db=handle)
        return None if value is None else bytes(value)

    def renew_reader(self) -> None:
        """Let the cached read transaction see everything committed so far.

        Point reads reuse one read transaction instead of opening one per call (measurably cheaper on the hot
        path). The writer renews it after every commit, on the engine's thread, so a read never misses a
        committed record; what is not yet committed the engine keeps in memory and checks first.
        """
        if self._reader is not None:
            self._reader.abort()  # the next read opens a fresh snapshot
            self._reader = None

    def get(self, db: str, key: bytes, type_: type[T]) -> T | None:
        """One decoded value, or None."""
        raw = self.get_raw(db, key)
        return None if raw is None else msgspec.json.decode(raw, type=type_)

    def scan(
        self, db: str, prefix: bytes = b"", *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` with ``key`` starting with ``prefix``, from ``start`` (exclusive) onwards.

        The read transaction stays open while the iterator lives; callers consume it promptly.
        """
        if len(prefix) > KEY_BYTES_MAX or (start is not None and not 0 < len(start) <= KEY_BYTES_MAX):
            return  # no stored key can match (see get_raw)
        with self.env.begin(db=self.dbs[db]) as txn:
            cursor = txn.cursor()
            if not reverse:
                positioned = cursor.set_range(start if start is not None else prefix)
                if positioned and start is not None and cursor.key() == start:
                    positioned = cursor.next()
                while positioned:
                    key = bytes(cursor.key())
                    if not key.startswith(prefix):
                        return
                    yield key, bytes(cursor.value())
                    positioned = cursor.next()
            else:
                upper = start if start is not None else _prefix_upper_bound(prefix)
                if upper is None:
                    positioned = cursor.last()
                else:
                    positioned = cursor.set_range(upper)
                    positioned = cursor.prev() if positioned else cursor.last()
                while positioned:
                    key = bytes(cursor.key())
                    if start is not None and key >= start:
                        positioned = cursor.prev()
                        continue
                    if not key.startswith(prefix):
                        if key < prefix:
                            return
                        positioned = cursor.prev()
                        continue
                    yield key, bytes(cursor.value())
                    positioned = cursor.prev()

    def count(self, db: str) -> int:
        """Entries in a database."""
        with self.env.begin(db=self.dbs[db]) as txn:
            return int(txn.stat(self.dbs[db])["entries"])

    def disk_size_bytes(self) -> int:
        """Size of the data file."""
        return sum(f.stat().st_size for f in (self.path / "ledger.lmdb").iterdir())

    # --- writes (the writer's thread only) --------------------------------------------------------------------

    def write(self, records: list[list[Op]]) -> None:
        """Apply every record's ops, in order, in one write transaction and commit it (fsync when ``sync``)."""
        txn = self.begin_write()
        try:
            self.fill(txn, records)
        except BaseException:
            txn.abort()
            raise
        self.commit_write(txn)

    def begin_write(self) -> Any:
        """A new write transaction (LMDB: begin, fill and commit it on one thread)."""
        return self.env.begin(write=True)

    def commit_write(self, txn: Any) -> None:
        """Commit a write transaction: this is where the fsync happens (when ``sync``)."""
        txn.commit()

    def fill(self, txn: Any, records: list[list[Op]]) -> None:
        """Apply every record's ops, in order, inside ``txn`` (no commit).

        The result is exactly that of applying each op in turn, but a batch is written database by database with
        py-lmdb's ``Cursor.putmulti``, whose loop runs in C: about 300 ns a put instead of 600 ns for
        ``txn.put`` and its keyword parsing (measured on the ``bench.costs`` batch). Different databases never
        interact, so only the order of ops within one database matters, and it is kept:

        * last-value databases (records carry a key's whole new value): only the last value per key is put, so
          the batch costs one put per key instead of one per record. One transaction, so no reader can tell;
        * every other database: its puts in order (a later put of a key overwrites, as before), appended where
          keys only grow (see :func:`_put_many`); a database with a delete in the batch falls back to one op
          at a time, in order, as a put and a later delete of one key must not swap.

        A batch of one record skips the grouping: putmulti's set-up (a cursor, a call per database) costs more
        than it saves there.
        """
        dbs = self.dbs
        if len(records) < 2:
            for ops in records:
                _put_in_order(txn, dbs, ops)
            return
        latest: defaultdict[str, dict[bytes, bytes | None]] = defaultdict(dict)
        in_order: defaultdict[str, list[Op]] = defaultdict(list)
        deleting: set[str] = set()  # in_order databases with a delete in this batch
        last_value = _LAST_VALUE_DATABASES
        for ops in records:
            for op in ops:
                db = op[0]
                if db in last_value:
                    latest[db][op[1]] = op[2]
                else:
                    if op[2] is None:
                        deleting.add(db)
                    in_order[db].append(op)
        for db, values in latest.items():
            _put_latest(txn, dbs[db], values)
        for db, db_ops in in_order.items():
            if db in deleting:
                _put_in_order(txn, dbs, db_ops)
            else:
                _put_many(txn, dbs[db], db_ops, append=db in _APPEND_DATABASES)


_KEY_VALUE = operator.itemgetter(1, 2)  # an Op's (key, value): the pairs putmulti takes


def _put_in_order(txn: Any, dbs: dict[str, Any], ops: Iterable[Op]) -> None:
    """Apply ``ops`` one at a time, in order: a None value deletes (an absent key is no error)."""
    put, delete = txn.put, txn.delete
    append_databases = _APPEND_DATABASES
    for db, key, value in ops:
        if value is None:
            delete(key, db=dbs[db])
        # Keys only grow here, so append: LMDB then fills pages instead of splitting them in half (measured: see
        # docs/benchmarks.md, Scale). An update of an existing key is not an append; LMDB refuses it without
        # writing (put returns False) and the normal put does it.
        elif db not in append_databases or not put(key, value, db=dbs[db], append=True):
            put(key, value, db=dbs[db])


def _put_latest(txn: Any, handle: Any, values: dict[bytes, bytes | None]) -> None:
    """Write each key's last value of the batch (None: delete it) into one database."""
    if None in values.values():
        deleted = [key for key, value in values.items() if value is None]
        for key in deleted:
            txn.delete(key, db=handle)
            del values[key]
    txn.cursor(db=handle).putmulti(values.items(), dupdata=False, overwrite=True)


def _put_many(txn: Any, handle: Any, ops: list[Op], *, append: bool) -> None:
    """Put every op of ``ops`` (no deletes among them) into one database, in order: a later put of a key wins.

    With ``append``, LMDB appends each key greater than the database's last one and refuses, without writing,
    any other (an update, or a key repeated in the batch); putmulti counts the refusals instead of raising. Then
    every op is put again the ordinary way, in order, which leaves each key with its last value of the batch.
    The ops of an append database are new, growing keys nearly always, so that second pass is rare.
    """
    cursor = txn.cursor(db=handle)
    consumed, added = cursor.putmulti(map(_KEY_VALUE, ops), dupdata=False, overwrite=True, append=append)
    if append and added < consumed:
        cursor.putmulti(map(_KEY_VALUE, ops), dupdata=False, overwrite=True)


def schema_problem(path: Path, raw: bytes | None) -> str | None:
    """Why a store whose ``meta`` schema record is ``raw`` cannot be used by this version (None: it can)."""
    try:
        version = None if raw is None else msgspec.json.decode(raw, type=int)
    except msgspec.DecodeError:
        return f"store {path} has an unreadable schema record {bytes(raw or b'')[:40]!r}; restore it from a backup"
    if version == SCHEMA_VERSION:
        return None
    found = "records no schema version" if version is None else f"schema v{version}"
    needs = f"store {found}, this version needs v{SCHEMA_VERSION}"
    if version is not None and version > SCHEMA_VERSION:
        return f"{needs}: it was written by a newer scrip; run that one"
    if version in _MIGRATABLE_VERSIONS:
        return f"{needs}: run `scrip serve` once to migrate it (the migration runs when the server opens the store)"
    return f"{needs}, and no migration from it exists (there is no `scrip migrate`); run the version that wrote it"


def _stored_version(raw: bytes) -> int | None:
    try:
        return msgspec.json.decode(raw, type=int)
    except msgspec.DecodeError:
        return None


def _readonly_map_size(path: Path, map_size_bytes: int) -> int:
    """A read-only map covering the stored data and the writer's map (so a live writer's growth stays mapped)."""
    facts = check_data_file(path, map_size_bytes=None)
    if facts is None:
        raise DataFileDamaged(f"no store at {path} ({path / ENV_DIR_NAME / DATA_FILE_NAME} does not exist)")
    return max(map_size_bytes, facts.used_bytes, facts.map_size_bytes)


def _open_environment(path: Path, map_size_bytes: int, *, sync: bool, max_readers: int, readonly: bool) -> Any:
    try:
        return lmdb.open(
            str(path / ENV_DIR_NAME),
            map_size=map_size_bytes,
            max_dbs=len(DATABASES) + 4,  # room for SIDE_DATABASES
            max_readers=max_readers,
            sync=sync,
            metasync=sync,
            writemap=False,
            map_async=False,
            readonly=readonly,
            lock=True,
            subdir=True,
            create=not readonly,
        )
    except lmdb.Error as error:
        raise DataFileDamaged(f"LMDB cannot open {path / ENV_DIR_NAME}: {error}") from None


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class WriterStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the group-commit writer."""

    records_appended: int
    records_durable: int
    commits: int
    batch_records_peak: int
    batch_records_last: int
    commit_seconds_last: float
    commit_seconds_peak: float
    commit_seconds_total: float
    # LMDB map residency (see scrip_actor._residency): times the map was dropped from this process's page tables.
    map_trims: int = 0
    map_trim_seconds_total: float = 0.0


class WriterFailed(RuntimeError):
    """A commit failed: memory is now ahead of disk, so the engine stops (fail-stop, never a silent loss)."""


class Writer:
    """The one group-commit writer.

    Producers call :meth:`append` synchronously (it never awaits, so it is safe inside the atomic event step); the
    writer task drains everything appended so far into one LMDB transaction, filled and committed on its own thread
    (see scrip_actor._write_thread for why the trio thread waits during the puts), then runs the records'
    ``on_durable`` callbacks and wakes :meth:`wait_durable` callers. Order of records on disk is the order of
    :meth:`append` calls.

    While it runs, a thread checks the process's file-backed resident memory every 20 ms while records are in
    flight and every second otherwise, and over ``map_resident_max_mb`` (0: never) drops this process's mapping of
    LMDB's pages (they stay in the page cache; see scrip_actor._residency).
    """

    def __init__(self, store: Store, *, batch_records_max: int, map_resident_max_mb: int = 256) -> None:
        # map_resident_max_mb: storage.lmdb_map_resident_max_mb (the default is the setting's; a test checks it).
        assert batch_records_max >= 1
        assert map_resident_max_mb >= 0
        self._store = store
        self._batch_records_max = batch_records_max
        self._residency = MapResidency(store.env, resident_max_bytes=map_resident_max_mb * 1024**2)
        self._pending: list[tuple[list[Op], Callable[[], None] | None]] = []
        self._appended = 0
        self._durable = 0
        self._wakeup = trio.Event()
        self._durable_event = trio.Event()
        self._failure: BaseException | None = None
        self._closing = False
        self._commits = 0
        self._batch_peak = 0
        self._batch_last = 0
        self._commit_s_last = 0.0
        self._commit_s_peak = 0.0
        self._commit_s_total = 0.0
        self._commits_seen_by_residency = -1  # so its first wait is the short one
        self.on_commit: Callable[[int, float], None] | None = None  # (records, seconds): metrics hook

    @property
    def durable(self) -> int:
        """Number of records known to be on disk."""
        return self._durable

    @property
    def next_ticket(self) -> int:
        """The ticket the next :meth:`append` will return."""
        return self._appended + 1

    def append(self, ops: list[Op], on_durable: Callable[[], None] | None = None) -> int:
        """Queue one record (a list of ops applied atomically). Returns its ticket for :meth:`wait_durable`."""
        if self._failure is not None:
            raise WriterFailed("the writer has failed; the engine is stopping") from self._failure
        self._pending.append((ops, on_durable))
        self._appended += 1
        self._wakeup.set()
        return self._appended

    async def wait_durable(self, ticket: int) -> None:
        """Wait until record ``ticket`` is committed to disk.

        Raises:
            WriterFailed: the commit that should have carried the record failed.
        """
        while self._durable < ticket:
            if self._failure is not None:
                raise WriterFailed("commit failed; the record is not durable") from self._failure
            await self._durable_event.wait()
        if self._failure is not None and self._durable < ticket:  # pragma: no cover - loop covers it
            raise WriterFailed("commit failed")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop. Returns after :meth:`close` once everything appended is durable."""
        residency = self._residency
        residency.maybe_trim(monotonic())  # the engine's recovery read through the map before we started
        store = self._store
        # Looked up per batch, so tests can hold a commit (see tests/review/conftest.py WriteGate).
        thread = WriteThread(
            lambda: store.begin_write(),
            lambda txn, records: store.fill(txn, records),
            lambda txn: store.commit_write(txn),
        )
        residency.start(self._busy)
        try:
            await self._commit_loop(thread, task_status)
        finally:
            thread.stop()
            residency.stop()  # before the store can be closed: a trim must not outlive the map

    async def _commit_loop(self, thread: WriteThread, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            batch = self._pending[: self._batch_records_max]
            del self._pending[: len(batch)]
            records = [record_ops for record_ops, _ in batch]
            started = trio.current_time()
            try:
                await thread.write(records)
            except BaseException as error:
                self._failure = error
                self._durable_event.set()
                raise WriterFailed(f"LMDB commit failed: {error!r}") from error
            elapsed_s = trio.current_time() - started
            self._store.renew_reader()
            self._durable += len(batch)
            self._commits += 1
            self._batch_last = len(batch)
            self._batch_peak = max(self._batch_peak, len(batch))
            self._commit_s_last = elapsed_s
            self._commit_s_peak = max(self._commit_s_peak, elapsed_s)
            self._commit_s_total += elapsed_s
            if self.on_commit is not None:
                self.on_commit(len(batch), elapsed_s)
            for _, callback in batch:
                if callback is not None:
                    callback()
            event, self._durable_event = self._durable_event, trio.Event()
            event.set()

    def _busy(self) -> bool:
        """For the residency thread: records in flight, or a commit since it last asked (ints: safe under the GIL)."""
        commits, self._commits_seen_by_residency = self._commits_seen_by_residency, self._commits
        return commits != self._commits or self._durable != self._appended

    def close(self) -> None:
        """Ask :meth:`run` to return once everything appended so far is durable."""
        self._closing = True
        self._wakeup.set()

    def statistics(self) -> WriterStatistics:
        """A snapshot of the writer's counters."""
        residency = self._residency.statistics()
        return WriterStatistics(
            records_appended=self._appended,
            records_durable=self._durable,
            commits=self._commits,
            batch_records_peak=self._batch_peak,
            batch_records_last=self._batch_last,
            commit_seconds_last=self._commit_s_last,
            commit_seconds_peak=self._commit_s_peak,
            commit_seconds_total=self._commit_s_total,
            map_trims=residency.trims,
            map_trim_seconds_total=residency.trim_seconds_total,
        )

    def reset_peaks(self) -> None:
        """Start a new window for the ``*_peak`` figures."""
        self._batch_peak = 0
        self._commit_s_peak = 0.0
