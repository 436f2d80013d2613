"""``verify``: replay the journal from disk and check every ledger invariant independently of the engine.

It recomputes every balance from the postings alone and compares it with what the engine cached, walks the hash
chain, checks each lot against its participant's balances, checks that every acknowledged event is either
waiting in the inbox or has its outcome, recomputes the reports' running totals (scrip_actor/_verify_reports.py),
and checks tier definitions, the levels participants hold and the schedule record behind every deadline
(scrip_actor/_verify_tiers.py).
It only reads, and it reports every problem it finds rather than stopping at the first.

Beside a running server (another process) it is safe and exact: it takes no lock and writes nothing, and every check
reads one LMDB read transaction, so it judges one committed state, whole, however much the server commits
meanwhile. The report names that state (``snapshot_txn_id``, ``journal_head``). The cost of a live check is that the
server cannot reuse pages freed while verify runs, so the data file may grow by what the server writes meanwhile.
In the process that has the engine open, use ``Engine.verify()``: a second LMDB environment on one file in one
process would break LMDB's locks (``verify()`` refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from scrip_actor._event_records import RuleSetMembers, decode_event, decode_stored_event
from scrip_actor._records import (
    STATE_SEQUENCE_KEY,
    decode_state_change,
    journal_index_prefix,
    journal_index_prefixes,
    participant_created_key,
    schedule_key,
)
from scrip_actor._verify_reports import check_report_totals
from scrip_actor._verify_tiers import check_tiers_and_schedule
from scrip_actor.amounts import format_minor
from scrip_actor.budgets import BudgetState, issued_minor
from scrip_actor.config import Config
from scrip_actor.errors import SchemaMismatch
from scrip_actor.ids import KIND_ENTRY, SequenceIds
from scrip_actor.ledger import (
    GENESIS_HASH,
    OPEN_LOT_STATUSES,
    ParticipantRecord,
    account_key,
    decimal_text,
    entry_hash,
)
from scrip_actor.model import Asset, Event, JournalEntry, Lot, Rule, StateChange
from scrip_actor.store import (
    KEY_BYTES_MAX,
    PROCESSED_BELOW_KEY,
    Store,
    be64,
    events_by_external_key,
    events_by_rule_key,
    external_id_key,
    idempotency_key,
    unbe32,
    unbe64,
)
from scrip_actor.webhooks._verify import check_webhooks

__all__ = ["VerifyReport", "verify", "verify_store"]

_PROBLEMS_MAX = 1000


class VerifyReport(msgspec.Struct, kw_only=True):
    """What ``verify`` checked and what it found wrong (``ok`` when ``problems`` is empty)."""

    ok: bool
    problems: list[str]
    journal_entries: int
    postings: int
    participants: int
    lots: int
    events: int
    events_pending: int
    snapshot_txn_id: int = 0  # the LMDB transaction whose committed state was checked (0: none was opened)
    journal_head: int = 0  # the last journal sequence in that state
    schema_ok: bool = True  # False: the store is of another schema version and nothing else was checked


T = TypeVar("T")


class _Snapshot:
    """The store's reads, all through one read transaction: every check sees the same committed state."""

    def __init__(self, store: Store, txn: Any) -> None:
        self._dbs = store.dbs
        self._txn = txn

    @property
    def txn_id(self) -> int:
        return int(self._txn.id())

    @property
    def id_prefix(self) -> int:
        prefix = self.get("meta", b"id_prefix", int)
        assert prefix is not None, "store has no id prefix"
        return prefix

    def get_raw(self, db: str, key: bytes) -> bytes | None:
        if not 0 < len(key) <= KEY_BYTES_MAX:
            return None  # LMDB cannot hold such a key: absent (see Store.get_raw)
        value = self._txn.get(key, db=self._dbs[db])
        return None if value is None else bytes(value)

    def get(self, db: str, key: bytes, type_: type[T]) -> T | None:
        raw = self.get_raw(db, key)
        return None if raw is None else msgspec.json.decode(raw, type=type_)

    def scan(self, db: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` of every key starting with ``prefix``, in key order."""
        assert len(prefix) <= KEY_BYTES_MAX
        cursor = self._txn.cursor(db=self._dbs[db])
        positioned = cursor.set_range(prefix) if prefix else cursor.first()
        while positioned:
            key = bytes(cursor.key())
            if not key.startswith(prefix):
                return
            yield key, bytes(cursor.value())
            positioned = cursor.next()


class _Checker:
    def __init__(self, store: _Snapshot) -> None:
        self.store = store
        self.problems: list[str] = []
        self.assets = {a.id: a for a in (msgspec.json.decode(raw, type=Asset) for _, raw in store.scan("assets"))}
        self.balances: dict[tuple[str, str, str], int] = {}  # participant, asset, bucket
        self.accounts: dict[str, int] = {}
        self.entry_ids: set[str] = set()
        self.ids = SequenceIds(store.id_prefix)
        self.entries = 0
        self.postings = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < _PROBLEMS_MAX:
            self.problems.append(text)

    def journal(self) -> None:
        previous_hash = GENESIS_HASH
        expected_sequence = 1
        for key, raw in self.store.scan("journal"):
            entry = msgspec.json.decode(raw, type=JournalEntry)
            self.entries += 1
            where = f"journal entry #{entry.sequence} ({entry.id})"
            if unbe64(key) != entry.sequence or entry.sequence != expected_sequence:
                self.problem(f"{where}: sequence {entry.sequence} where {expected_sequence} was expected")
            expected_sequence = entry.sequence + 1
            if entry.previous_hash != previous_hash:
                self.problem(f"{where}: previous_hash does not link to the entry before it")
            if entry_hash(entry) != entry.entry_hash:
                self.problem(f"{where}: entry_hash does not match its content (tampered or corrupted)")
            previous_hash = entry.entry_hash
            self.entry_ids.add(entry.id)
            if self.ids.sequence(KIND_ENTRY, entry.id) != entry.sequence:
                self.problem(f"{where}: its id does not carry its sequence")
            self._postings(entry, where)
            for prefix in journal_index_prefixes(entry):
                if self.store.get_raw("journal_index", prefix + key) is None:
                    self.problem(f"{where}: missing from the journal index under {prefix!r}")
        head = self.store.get("meta", b"journal_head", list[object])
        if self.entries and (head is None or head[0] != expected_sequence - 1 or head[1] != previous_hash):
            self.problem(f"journal head {head} is not the last entry (#{expected_sequence - 1})")

    def _postings(self, entry: JournalEntry, where: str) -> None:
        if len(entry.postings) < 2:
            self.problem(f"{where}: has {len(entry.postings)} posting(s); at least two are required")
        sums: dict[str, int] = {}
        for posting in entry.postings:
            self.postings += 1
            asset = self.assets.get(posting.asset_id)
            if asset is None:
                self.problem(f"{where}: posting names unknown asset {posting.asset_id}")
                continue
            if format_minor(posting.amount_minor, asset.scale) != posting.amount:
                self.problem(
                    f"{where}: posting amount {posting.amount!r} disagrees with {posting.amount_minor} minor units"
                )
            sums[posting.asset_id] = sums.get(posting.asset_id, 0) + posting.amount_minor
            if posting.entity_type == "PARTICIPANT":
                key = (posting.entity_id, posting.asset_id, posting.bucket)
                self.balances[key] = self.balances.get(key, 0) + posting.amount_minor
            else:
                account = account_key(posting.entity_type, posting.entity_id, posting.asset_id, posting.bucket)
                self.accounts[account] = self.accounts.get(account, 0) + posting.amount_minor
        for asset_id, total in sums.items():
            if total != 0:
                self.problem(f"{where}: postings of asset {asset_id} sum to {total}, not zero")

    def accounts_match(self) -> None:
        stored = {key.decode(): msgspec.json.decode(raw, type=int) for key, raw in self.store.scan("accounts")}
        for account in sorted(set(stored) | set(self.accounts)):
            if stored.get(account, 0) != self.accounts.get(account, 0):
                self.problem(
                    f"account {account}: cached {stored.get(account, 0)}, journal says {self.accounts.get(account, 0)}"
                )
            if account.startswith("PROGRAM:") and stored.get(account, 0) < 0:
                self.problem(f"wallet {account} is negative")

    def participants(self) -> tuple[int, int]:
        participants = lots_seen = 0
        seen: set[tuple[str, str, str]] = set()
        for _, raw in self.store.scan("participants"):
            record = msgspec.json.decode(raw, type=ParticipantRecord)
            participants += 1
            if self.store.get_raw("participant_ext", external_id_key(record.external_id)) != record.id.encode():
                self.problem(f"participant {record.id}: external id {record.external_id!r} index does not point to it")
            if (
                self.store.get_raw("participants_by_created", participant_created_key(record.created_at, record.id))
                is None
            ):
                self.problem(f"participant {record.id}: missing from the participants_by_created index")
            for asset_id, values in record.balances.items():
                for bucket, value in zip(("AVAILABLE", "HELD", "DEFERRED"), values, strict=True):
                    key = (record.id, asset_id, bucket)
                    seen.add(key)
                    if self.balances.get(key, 0) != value:
                        self.problem(
                            f"participant {record.id} {asset_id} {bucket}: cached {value}, "
                            f"journal says {self.balances.get(key, 0)}"
                        )
            lots_seen += self._lots(record)
        for key, value in self.balances.items():
            if key not in seen and value != 0:
                self.problem(f"participant {key[0]} {key[1]} {key[2]}: journal says {value} but no balance is cached")
        indexed = sum(1 for _ in self.store.scan("participants_by_created"))
        if indexed != participants:  # each participant is there (checked above) once, and nothing else is
            self.problem(f"participants_by_created holds {indexed} entries for {participants} participants")
        return participants, lots_seen

    def state_history(self) -> None:
        """Every state-history entry decodes, names a participant that exists and a number at or below the stored
        last one; and each tag, counter and attribute's newest entry says what the participant holds now, so no
        change was lost from the history or recorded without being made (a store upgraded from schema 8 has no
        history of older changes: keys without entries are not checked)."""
        last = self.store.get("meta", STATE_SEQUENCE_KEY, int) or 0
        newest: dict[tuple[str, str, str | None], StateChange] = {}
        participant_id = None
        for key, raw in self.store.scan("state_history"):
            try:
                change = decode_state_change(key, raw, self.ids)
            except (msgspec.DecodeError, AssertionError, ArithmeticError) as error:
                self.problem(f"state history {key!r}: does not decode ({error})")
                continue
            if change.participant_id != participant_id:
                self._newest_state_holds(participant_id, newest)
                participant_id, newest = change.participant_id, {}
            if not 1 <= change.sequence <= last:
                self.problem(f"state change {change.sequence}: numbered beyond the last one recorded ({last})")
            # Tiers are per program (two programs may share a key); tags, counters, attributes per participant.
            program = change.program_id if change.state_type == "tier" else None
            newest[(change.state_type, change.key, program)] = change
        self._newest_state_holds(participant_id, newest)

    def _newest_state_holds(
        self, participant_id: str | None, newest: dict[tuple[str, str, str | None], StateChange]
    ) -> None:
        if participant_id is None:
            return
        raw = self.store.get_raw("participants", participant_id.encode())
        if raw is None:
            self.problem(f"state history of participant {participant_id}: the participant does not exist")
            return
        record = msgspec.json.decode(raw, type=ParticipantRecord)
        held: dict[str, Callable[[str], str | None]] = {
            "tag": lambda key: key if key in record.tags else None,
            "counter": lambda key: None if key not in record.counters else decimal_text(Decimal(record.counters[key])),
            "attribute": record.attributes.get,
        }
        for (state_type, key, _), change in newest.items():
            if state_type in held and held[state_type](key) != change.new_value:
                self.problem(
                    f"participant {participant_id} {state_type} {key!r}: holds {held[state_type](key)!r}, its "
                    f"newest state change (number {change.sequence}) says {change.new_value!r}"
                )
        self._newest_tiers_hold(participant_id, record, newest)

    def _newest_tiers_hold(
        self, participant_id: str, record: ParticipantRecord, newest: dict[tuple[str, str, str | None], StateChange]
    ) -> None:
        """Each tier's newest entry (per program) names the level held there (none at rank 0). An entry of a sweep
        over several programs names none, and is not checked."""
        for (state_type, key, program_id), change in newest.items():
            if state_type != "tier" or program_id is None:
                continue
            holding = record.tiers.get(program_id, {}).get(key)
            level = holding.level if holding is not None and holding.rank > 0 else None
            if level != change.new_value:
                self.problem(
                    f"participant {participant_id} tier {key!r}: holds {level!r}, its newest state change "
                    f"(number {change.sequence}) says {change.new_value!r}"
                )

    def _lots(self, record: ParticipantRecord) -> int:
        count = 0
        sums: dict[str, list[int]] = {}
        for _, raw in self.store.scan("lots", record.id.encode()):
            lot = msgspec.json.decode(raw, type=Lot)
            count += 1
            if not 0 <= lot.remaining_minor <= lot.amount_minor:
                self.problem(f"lot {lot.id}: remaining {lot.remaining_minor} outside 0..{lot.amount_minor}")
            if lot.status in ("CONSUMED", "EXPIRED") and lot.remaining_minor != 0:
                self.problem(f"lot {lot.id}: {lot.status} with {lot.remaining_minor} remaining")
            self._lot_links(record, lot)
            totals = sums.setdefault(lot.asset_id, [0, 0, 0])
            if lot.status in OPEN_LOT_STATUSES:
                totals[OPEN_LOT_STATUSES.index(lot.status)] += lot.remaining_minor
        for asset_id, asset in self.assets.items():
            if asset.inventory_mode != "LOT" or (asset_id not in record.balances and asset_id not in sums):
                continue
            available, held, deferred = record.balances.get(asset_id, [0, 0, 0])
            lot_available, lot_held, lot_deferred = sums.get(asset_id, [0, 0, 0])
            overdraft = record.overdraft.get(asset_id, 0)
            if available != lot_available - overdraft:
                self.problem(
                    f"participant {record.id} {asset.symbol}: available {available} "
                    f"!= lots {lot_available} - overdraft {overdraft}"
                )
            if held != lot_held:
                self.problem(f"participant {record.id} {asset.symbol}: held {held} != held lots {lot_held}")
            if deferred != lot_deferred:
                self.problem(
                    f"participant {record.id} {asset.symbol}: deferred {deferred} != deferred lots {lot_deferred}"
                )
        return count

    def _lot_links(self, record: ParticipantRecord, lot: Lot) -> None:
        """A lot belongs to its participant, to a LOT asset, and (while open) to its schedule records."""
        if lot.participant_id != record.id:
            self.problem(f"lot {lot.id}: stored under participant {record.id} but names {lot.participant_id}")
        asset = self.assets.get(lot.asset_id)
        if asset is None or asset.inventory_mode != "LOT":
            self.problem(f"lot {lot.id}: asset {lot.asset_id} is not a LOT asset")
        if lot.status not in OPEN_LOT_STATUSES:
            return
        due = [lot.expires_at] + ([lot.matures_at] if lot.status == "DEFERRED" else [])
        for moment in due:
            if moment is not None and self.store.get_raw("schedule", schedule_key(moment, lot.id)) is None:
                self.problem(f"lot {lot.id}: open, due {moment.isoformat()}, but not scheduled: it would never settle")

    def orphan_lots(self) -> None:
        """Lots whose participant record does not exist."""
        known = {key.decode() for key, _ in self.store.scan("participants")}
        for _, raw in self.store.scan("lots"):
            lot = msgspec.json.decode(raw, type=Lot)
            if lot.participant_id not in known:
                self.problem(f"lot {lot.id}: its participant {lot.participant_id} does not exist")

    def events(self) -> tuple[int, int]:
        """Every event decodes, sits where it will be processed (or is final), and its entries and indexes exist.

        A first attempt still to process has no outcome and a sequence at or above the processed-below mark (the
        open scans from there); a retry still to process has an outcome PENDING (RECEIVED before schema 9) and an
        inbox record.
        """
        queued = {be64(unbe64(value)) if value else key for key, value in self.store.scan("inbox_pending")}
        raw_mark = self.store.get_raw("meta", PROCESSED_BELOW_KEY)
        mark = unbe64(raw_mark) if raw_mark is not None else 0
        rule_sets = self._rule_sets()
        events = 0
        waiting_count = 0
        for key, raw in self.store.scan("events"):
            events += 1
            sequence = unbe64(key)
            outcome = self.store.get_raw("event_outcomes", key)
            try:
                event = decode_event(sequence, raw, outcome, self.ids, rule_sets)
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError, AssertionError) as error:
                self.problem(f"event #{sequence}: its records do not decode ({error})")
                continue
            final = event.status in ("COMPLETED", "FAILED")
            if final and key in queued:
                self.problem(f"event {event.id}: {event.status} but still in the inbox")
            if outcome is None and sequence < mark:
                self.problem(f"event {event.id}: not processed, below the processed-below mark {mark}: never found")
            if outcome is not None and not final and key not in queued:
                self.problem(f"event {event.id}: {event.status} but not in the inbox: it would never be processed")
            waiting_count += not final
            for entry_id in event.journal_entry_ids:
                if entry_id not in self.entry_ids:
                    self.problem(f"event {event.id}: journal entry {entry_id} is missing")
            if event.status == "FAILED" and event.journal_entry_ids:
                self.problem(f"event {event.id}: FAILED yet has journal entries")
            self._event_indexes(key, event)
        for key, _ in self.store.scan("event_outcomes"):
            if self.store.get_raw("events", key) is None:
                self.problem(f"an outcome is stored for event #{unbe64(key)}, which does not exist")
        for key, value in self.store.scan("inbox_pending"):
            sequence = unbe64(value) if value else unbe64(key)
            if self.store.get_raw("events", be64(sequence)) is None:
                self.problem(f"inbox position #{unbe64(key)} names event #{sequence}, which does not exist")
        self._idempotency()
        self._operation_keys()
        self._redemptions()
        return events, waiting_count

    def rule_budgets(self) -> None:
        """Each budget's ``consumed_minor``, recomputed from the journal alone: what its rule issued of its asset in
        the entries from the period's first sequence on (the journal index by rule; scrip_actor.budgets counts the
        same way in the step). They are written in one record, so a difference is a torn or tampered store."""
        rules = {key: msgspec.json.decode(raw, type=Rule) for key, raw in self.store.scan("rules")}
        for key, rule in rules.items():
            for budget in rule.budgets:
                if self.store.get_raw("rule_budgets", key + b"\0" + budget.asset_id.encode()) is None:
                    self.problem(f"rule {rule.id} budget of asset {budget.asset_id}: no record of what it consumed")
        for key, raw in self.store.scan("rule_budgets"):
            try:
                state = msgspec.json.decode(raw, type=BudgetState)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                self.problem(f"rule budget {bytes(key)!r}: unreadable record ({error})")
                continue
            where = f"rule {state.rule_id} budget of asset {state.asset_id}"
            if bytes(key) != state.rule_id.encode() + b"\0" + state.asset_id.encode():
                self.problem(f"{where}: stored under another key {bytes(key)!r}")  # the open asserts it
            rule = rules.get(state.rule_id.encode())
            if rule is None or all(budget.asset_id != state.asset_id for budget in rule.budgets):
                self.problem(f"{where}: stored, but the rule has no such budget")
            if state.period_start_sequence > self.entries + 1:
                self.problem(f"{where}: its period starts at #{state.period_start_sequence}, after the journal's end")
            entries = []
            for index_key, _ in self.store.scan("journal_index", journal_index_prefix("rule", state.rule_id)):
                sequence = unbe64(bytes(index_key)[-8:])
                stored = (
                    self.store.get_raw("journal", be64(sequence)) if sequence >= state.period_start_sequence else None
                )
                if stored is not None:
                    entries.append(msgspec.json.decode(stored, type=JournalEntry))
            issued = issued_minor(entries, state.rule_id).get(state.asset_id, 0)
            if issued != state.consumed_minor:
                self.problem(
                    f"{where}: {state.consumed_minor} recorded as consumed, "
                    f"the journal has {issued} issued since #{state.period_start_sequence}"
                )

    def _rule_sets(self) -> dict[int, RuleSetMembers]:
        """The numbered rule sets outcomes refer to (numbered 1, 2, 3... without gaps)."""
        sets: dict[int, RuleSetMembers] = {}
        for key, raw in self.store.scan("rule_sets"):
            number = unbe32(key)
            if number != len(sets) + 1:
                self.problem(f"rule set {number} follows rule set {len(sets)}: the numbering has a gap")
            sets[number] = [tuple(member) for member in msgspec.json.decode(raw, type=list[tuple[str, int, str]])]  # type: ignore[misc]
        return sets

    def _event_indexes(self, key: bytes, event: Event) -> None:
        """The list filters' indexes hold this event wherever it belongs (stale rule entries are allowed: the
        filter re-checks the event, and a retried event may no longer match a rule its failed attempt matched)."""
        if self.store.get_raw("events_by_external", events_by_external_key(event.external_id, event.sequence)) is None:
            self.problem(f"event {event.id}: missing from the external-id index")
        if (self.store.get_raw("events_failed", key) is not None) != (event.status == "FAILED"):
            self.problem(f"event {event.id}: the FAILED index disagrees with its status {event.status}")
        if event.status not in ("COMPLETED", "FAILED"):
            return
        for evaluation in event.rule_evaluations:
            rule_key = events_by_rule_key(evaluation.rule_id, event.sequence)
            if evaluation.status == "MATCHED" and self.store.get_raw("events_by_rule", rule_key) is None:
                self.problem(f"event {event.id}: missing from the index of rule {evaluation.rule_id}")

    def _idempotency(self) -> None:
        for key, raw in self.store.scan("idempotency"):
            if len(raw) != 8:
                self.problem(f"idempotency key {key!r}: its record is not an event sequence")
                continue
            sequence = unbe64(raw)
            stored = self.store.get_raw("events", be64(sequence))
            if stored is None:
                self.problem(f"idempotency key {key!r} names event #{sequence}, which does not exist")
                continue
            event = decode_stored_event(stored)
            if idempotency_key(event.program_id, event.idempotency_key) != key:
                self.problem(f"idempotency key {key!r} names event #{sequence}, whose own key differs")

    def _redemptions(self) -> None:
        """Each redemption's amount and reversed amount, recomputed from the journal alone: its REDEMPTION entry
        and the REDEMPTION_REVERSAL entries that name it (the journal index by reference), per the participant's
        postings."""
        for key, raw in self.store.scan("redemptions"):
            record = msgspec.json.decode(raw, type=dict[str, Any])
            redemption_id, participant_id = bytes(key).decode(), record["redemption"]["participant_id"]
            totals = {"REDEMPTION": 0, "REDEMPTION_REVERSAL": 0}
            prefix = journal_index_prefix("reference", redemption_id)
            for index_key, _ in self.store.scan("journal_index", prefix):
                stored = self.store.get_raw("journal", bytes(index_key)[-8:])
                entry = None if stored is None else msgspec.json.decode(stored, type=JournalEntry)
                if entry is None or entry.action_type not in totals:
                    continue
                moved = sum(p.amount_minor for p in entry.postings if p.entity_id == participant_id)
                totals[entry.action_type] += abs(moved)
            if totals["REDEMPTION"] != record["amount_minor"]:
                self.problem(
                    f"redemption {redemption_id}: {record['amount_minor']} recorded, "
                    f"the journal spent {totals['REDEMPTION']}"
                )
            if totals["REDEMPTION_REVERSAL"] != record.get("reversed_minor", 0):
                self.problem(
                    f"redemption {redemption_id}: {record.get('reversed_minor', 0)} recorded as reversed, "
                    f"the journal gave back {totals['REDEMPTION_REVERSAL']}"
                )

    def _operation_keys(self) -> None:
        """Every stored answer of a balance operation names a journal entry of its kind that exists (they are
        written in one record, so one without the other means a torn or tampered store)."""
        for key, raw in self.store.scan("operation_keys"):
            try:
                operation, _, result = msgspec.json.decode(raw, type=tuple[str, str, dict[str, Any]])
                entry_id = str(result["journal_entry_id"])
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as error:
                self.problem(f"operation key {bytes(key)!r}: unreadable record ({error})")
                continue
            sequence = self.ids.sequence(KIND_ENTRY, entry_id)
            stored = None if sequence is None else self.store.get_raw("journal", be64(sequence))
            if stored is None:
                self.problem(f"operation key {bytes(key)!r} answers with entry {entry_id}, which does not exist")
                continue
            action_type = msgspec.json.decode(stored, type=JournalEntry).action_type
            if action_type != operation:
                self.problem(f"operation key {bytes(key)!r}: a {operation} answered with a {action_type} entry")


def verify(data_dir: str, config: Config | None = None) -> VerifyReport:
    """Check a store's ledger from scratch, from another process than the one serving it, or with none. Never writes.

    A store of another schema version is not OK: its one problem says which version it is and what to do.
    (In the process that has the engine open, use ``Engine.verify()``.)

    Raises:
        StoreUnusable: no store, a damaged data file, or the store is open in this process.
    """
    config = config or Config()
    try:
        store = Store(
            data_dir,
            map_size_bytes=config.storage.lmdb_map_size_bytes,
            sync=False,
            max_readers=config.storage.max_readers,
            readonly=True,
        )
    except SchemaMismatch as mismatch:
        return _not_checked(mismatch.message)
    try:
        return verify_store(store)
    finally:
        store.close()


def _not_checked(problem: str) -> VerifyReport:
    return VerifyReport(
        ok=False,
        schema_ok=False,
        problems=[problem],
        journal_entries=0,
        postings=0,
        participants=0,
        lots=0,
        events=0,
        events_pending=0,
    )


def verify_store(store: Store) -> VerifyReport:
    """Check an open store, all in one read transaction (one committed state, even beside a live writer)."""
    with store.env.begin() as txn:
        snapshot = _Snapshot(store, txn)
        checker = _Checker(snapshot)
        checker.journal()
        checker.accounts_match()
        participants, lots = checker.participants()
        checker.orphan_lots()
        checker.state_history()
        events, pending = checker.events()
        checker.rule_budgets()
        check_report_totals(snapshot, checker.problem)
        check_tiers_and_schedule(snapshot, checker.problem)
        check_webhooks(snapshot, checker.problem)
        return VerifyReport(
            ok=not checker.problems,
            problems=checker.problems,
            journal_entries=checker.entries,
            postings=checker.postings,
            participants=participants,
            lots=lots,
            events=events,
            events_pending=pending,
            snapshot_txn_id=snapshot.txn_id,
            journal_head=checker.entries,
        )
