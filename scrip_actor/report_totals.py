"""Running totals behind the ledger reports, kept exactly with every commit (pure: no I/O).

A report must answer from a store of a million journal entries without reading them, so every commit also
updates a few counters in memory, the way :class:`~scrip_actor.ledger.World` keeps account balances, and hands
back their new absolute values as store writes of the same transaction (schema 9). Three families:

* **Hour rows** (``report_hours``): per ``(program, asset, hour of the entry's created_at)`` the value issued to,
  redeemed from, expired from and forfeited by participants, the rest of their net change ("other adjustments"),
  and the number of entries. Under the asset ``""`` a program's row counts its entries and its events (by the
  event's ``event_timestamp``). A period report adds whole hours and reads the journal only for the two hours
  its ``from`` and ``to`` cut through (found by the ``time`` keys of the journal index).
* **Counts** (``report_counts``): participants holding a nonzero balance per ``(program, asset)`` and per asset
  over all programs, and participants enrolled per program. (A program's latest activity is the largest
  ``last_us`` of its ``""`` rows, so it costs no write of its own.)
* **Lot expiry** (``report_expiry``): the value and the number of open lots per ``(program, asset, expiry day)``
  (day 0 means "never expires"), for the expiration schedule.

How an entry counts (docs/reports.md): ``d`` is the participants' net change of one asset in one entry.
EXPIRATION entries are *expired* (-d), FORFEIT *forfeited* (-d); a positive ``d`` of CREDIT, ADJUST or SETTLE is
*issued*; a negative ``d`` of DEBIT or REDEMPTION is *redeemed*; every other nonzero ``d`` (a redemption reversal,
a void-hold, a debit adjustment, a transfer's zero) is *other*. So for any set of entries, exactly,
``issued - redeemed - expired - forfeited + other`` is the participants' net change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from scrip_actor.model import JournalEntry, Lot

if TYPE_CHECKING:  # ledger imports this module; at run time the states are only read through their attributes
    from scrip_actor.ledger import ParticipantState

__all__ = [
    "ALL_PROGRAMS",
    "COLUMNS",
    "ReportTotals",
    "classify",
    "day_of",
    "event_time_key",
    "hour_of",
    "time_index_prefix",
]

# Columns of an hour row.
ISSUED, REDEEMED, EXPIRED, FORFEITED, OTHER, ENTRIES, EVENTS, LAST = range(8)
COLUMNS = ("issued", "redeemed", "expired", "forfeited", "other", "entries", "events", "last_us")
# LAST is not a sum but a maximum: the latest entry or event time (µs) of a program's "" row; NONE_US until one.
NONE_US = -(2**62)
ALL_PROGRAMS = "*"  # the holders key over every program (no program id is "*": ids are generated)
NEVER_DAY = 0  # expiry "day" of a lot that never expires; real days are stored as day index + 1
_OPEN = ("AVAILABLE", "HELD", "DEFERRED")
_ISSUE_ACTIONS = frozenset({"CREDIT", "ADJUST", "SETTLE"})
_REDEEM_ACTIONS = frozenset({"DEBIT", "REDEMPTION"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
_HOUR_US = 3_600_000_000
_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_encode = msgspec.json.encode
Op = tuple[str, bytes, bytes | None]
_Cell = tuple[list[int], list[int], bytes]  # an hour row, its (program, asset) lifetime total, its stored key


def hour_of(moment: datetime) -> int:
    """Whole hours since the epoch, floored (UTC; negative before 1970)."""
    return (moment - EPOCH) // _HOUR


def day_of(moment: datetime) -> int:
    """Whole UTC days since the epoch, floored."""
    return (moment - EPOCH) // _DAY


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (exact)."""
    return (moment - EPOCH) // _MICROSECOND


def time_index_prefix(hour: int) -> bytes:
    """The ``journal_index`` prefix of the entries created in one hour (schema 9)."""
    return f"time\0{hour}\0".encode()


def event_time_key(program_id: str, hour: int) -> bytes:
    """The ``events_by_time`` prefix of a program's events of one hour (by event_timestamp); the key adds be64(seq)."""
    return f"{program_id}\0{hour}\0".encode()


def classify(entry: JournalEntry) -> dict[str, tuple[int, int]]:
    """Per asset the participants' net change in ``entry`` as ``(column, signed amount to add)``; zero: absent."""
    net: dict[str, int] = {}
    for posting in entry.postings:
        if posting.entity_type == "PARTICIPANT":
            net[posting.asset_id] = net.get(posting.asset_id, 0) + posting.amount_minor
    action = entry.action_type
    return {asset_id: _column(action, change) for asset_id, change in net.items() if change != 0}


def _column(action: str, change: int) -> tuple[int, int]:
    """Where a nonzero net change ``change`` of the participants counts, and the amount to add there."""
    if action == "EXPIRATION":
        return EXPIRED, -change
    if action == "FORFEIT":
        return FORFEITED, -change
    if change > 0 and action in _ISSUE_ACTIONS:
        return ISSUED, change
    if change < 0 and action in _REDEEM_ACTIONS:
        return REDEEMED, -change
    return OTHER, change


def net_change(row: list[int]) -> int:
    """The participants' net change an hour row (or a sum of rows) records."""
    return row[ISSUED] - row[REDEEMED] - row[EXPIRED] - row[FORFEITED] + row[OTHER]


def lot_contribution(lot: Lot) -> tuple[tuple[str, str, int], int] | None:
    """The expiry key and the value an open lot adds to the schedule (None: closed or empty)."""
    if lot.status not in _OPEN or lot.remaining_minor == 0:
        return None
    day = NEVER_DAY if lot.expires_at is None else day_of(lot.expires_at) + 1
    return (lot.program_id, lot.asset_id, day), lot.remaining_minor


def hour_key(program_key: str, asset_id: str, hour: int) -> bytes:
    """Key of an hour row: ``program NUL asset NUL hour`` (text: read back only by a whole scan on open)."""
    return f"{program_key}\0{asset_id}\0{hour}".encode()


def expiry_key(key: tuple[str, str, int]) -> bytes:
    """Key of a lot expiry cell."""
    return f"{key[0]}\0{key[1]}\0{key[2]}".encode()


class ReportTotals:
    """The report aggregates in memory; :meth:`record_commit` and :meth:`record_event` keep them and return the
    store writes that make the stored copy equal (absolute values, so the store's last-value fill applies)."""

    def __init__(self) -> None:
        self.hours: dict[tuple[str, str, int], list[int]] = {}
        # (program key, asset) -> the sum of its hour rows: the lifetime figures without adding every hour.
        self.totals: dict[tuple[str, str], list[int]] = {}
        self.holders: dict[tuple[str, str], int] = {}  # (program id or ALL_PROGRAMS, asset) -> participants
        self.enrolled: dict[str, int] = {}  # program id -> participants enrolled
        self.last_activity_us: dict[str, int] = {}  # program id -> latest entry or event time, µs since the epoch
        self._cells: dict[tuple[str, str, int], _Cell] = {}
        self._event_prefixes: dict[bytes, bytes] = {}  # a program's "" row key -> its hour's events_by_time prefix
        self.expiry: dict[tuple[str, str, int], list[int]] = {}  # (program, asset, day + 1 or 0) -> [value, lots]

    # --- keeping them --------------------------------------------------------------------------------------------

    def _cell(self, program_key: str, asset_id: str, hour: int) -> _Cell:
        """An hour row with its lifetime total and its stored key (made on first use; rows are never dropped)."""
        key = (program_key, asset_id, hour)
        cell = self._cells.get(key)
        if cell is None:
            row = self.hours[key] = [0] * len(COLUMNS)
            row[LAST] = NONE_US
            total = self.totals.get((program_key, asset_id))
            if total is None:
                total = self.totals[(program_key, asset_id)] = [0] * len(COLUMNS)
                total[LAST] = NONE_US
            cell = self._cells[key] = (row, total, hour_key(program_key, asset_id, hour))
        return cell

    def _count(self, program_key: str, hour: int, column: int, moment_us: int) -> _Cell:
        """Count an entry or an event in its program's ``""`` row, and move the row's latest time on."""
        cell = self._cell(program_key, "", hour)
        row, total, _ = cell
        row[column] += 1
        total[column] += 1
        if moment_us > row[LAST]:
            row[LAST] = moment_us
            if moment_us > total[LAST]:
                total[LAST] = moment_us
                if program_key:
                    self.last_activity_us[program_key] = moment_us
        return cell

    def record_entries(self, entries: Iterable[JournalEntry], ops: list[Op]) -> None:
        """Add committed entries to the hour rows (one write per row and commit, however many entries).

        This runs for every commit, so the common entry (two legs, one of them a participant's, a row already
        made) takes an inlined path: no call but the dict lookups. :meth:`_count` and :meth:`_cell` say the same
        for the rest.
        """
        rows: dict[bytes, list[int]] = {}
        cells = self._cells
        moment: datetime | None = None
        moment_us = hour = 0
        for entry in entries:
            if entry.created_at is not moment:  # the entries of one step mostly share their time
                moment = entry.created_at
                moment_us = (moment - EPOCH) // _MICROSECOND
                hour = moment_us // _HOUR_US
            program_key = entry.program_id or ""
            cell = cells.get((program_key, "", hour))
            if cell is None:
                cell = self._cell(program_key, "", hour)
            row, total, stored_key = cell
            row[ENTRIES] += 1
            total[ENTRIES] += 1
            if moment_us > row[LAST]:
                row[LAST] = moment_us
                if moment_us > total[LAST]:
                    total[LAST] = moment_us
                    if program_key:
                        self.last_activity_us[program_key] = moment_us
            rows[stored_key] = row
            postings = entry.postings
            if len(postings) == 2:  # the common entry: one leg each side, one asset; classified without dicts
                first, second = postings
                if first.entity_type == "PARTICIPANT":
                    if second.entity_type == "PARTICIPANT":
                        continue  # between participants: net zero
                    change = first.amount_minor
                elif second.entity_type == "PARTICIPANT":
                    change = second.amount_minor
                else:
                    continue  # between system accounts: no participant change
                if change > 0 and entry.action_type == "CREDIT":
                    column, amount = ISSUED, change  # what _column says, without the call
                else:
                    column, amount = _column(entry.action_type, change)
                cell = cells.get((program_key, first.asset_id, hour))
                if cell is None:
                    cell = self._cell(program_key, first.asset_id, hour)
                row, total, stored_key = cell
                row[column] += amount
                total[column] += amount
                rows[stored_key] = row
                continue
            for asset_id, (column, amount) in classify(entry).items():
                row, total, stored_key = self._cell(program_key, asset_id, hour)
                row[column] += amount
                total[column] += amount
                rows[stored_key] = row
        for stored_key, row in rows.items():
            ops.append(("report_hours", stored_key, _encode(row)))

    def record_event(self, program_id: str, event_timestamp: datetime, sequence_key: bytes, ops: list[Op]) -> None:
        """Count an accepted event under its program and the hour of its event_timestamp; index it by that hour.

        Every admission runs this, so :meth:`_count` is inlined for a row that exists and the index prefix of
        the row's hour is kept beside it (rows, and so prefixes, are as many as (program, hour) pairs seen).
        """
        moment_us = (event_timestamp - EPOCH) // _MICROSECOND
        hour = moment_us // _HOUR_US
        cell = self._cells.get((program_id, "", hour))
        if cell is None:
            cell = self._cell(program_id, "", hour)
        row, total, stored_key = cell
        row[EVENTS] += 1
        total[EVENTS] += 1
        if moment_us > row[LAST]:
            row[LAST] = moment_us
            if moment_us > total[LAST]:
                total[LAST] = moment_us
                self.last_activity_us[program_id] = moment_us
        ops.append(("report_hours", stored_key, _encode(row)))
        prefix = self._event_prefixes.get(stored_key)
        if prefix is None:
            prefix = self._event_prefixes[stored_key] = event_time_key(program_id, hour)
        ops.append(("events_by_time", prefix + sequence_key, b""))

    def _add_count(self, table: dict[Any, int], key: Any, stored_key: bytes, delta: int, ops: list[Op]) -> None:
        value = table.get(key, 0) + delta
        assert value >= 0, f"report count {stored_key!r} would go negative"
        if value:
            table[key] = value
        else:
            table.pop(key, None)
        ops.append(("report_counts", stored_key, _encode(value) if value else None))

    def record_participants(
        self,
        states: Iterable[ParticipantState],
        originals: Mapping[str, ParticipantState],
        ops: list[Op],
        crossed_zero: set[str] | None = None,
    ) -> None:
        """Count the participants whose enrolment or set of nonzero balances changed (old out, new in).

        ``crossed_zero``: the participants with a balance bucket that left or reached zero in this commit
        (``LedgerTx.post`` notes them); any other participant with an ``original`` holds what it held, so its
        balances are not even looked at. None: nobody crossed zero.
        """
        for state in states:
            original = originals.get(state.id)
            if original is not None and original.program_ids == state.program_ids:
                if crossed_zero is None or state.id not in crossed_zero:
                    continue  # the common step: balances moved, but no bucket went to or from zero
                if _same_holdings(original, state):
                    continue
            old_programs: list[str] = original.program_ids if original is not None else []
            old_held = _held_assets(original) if original is not None else set()
            new_held = _held_assets(state)
            if old_programs == state.program_ids and old_held == new_held:
                continue
            self._count_difference(old_programs, old_held, state.program_ids, new_held, ops)

    def _count_difference(
        self, old_programs: list[str], old_held: set[str], new_programs: list[str], new_held: set[str], ops: list[Op]
    ) -> None:
        """Move one participant's counts from its old enrolment and holdings to its new ones, touching only the
        counts that change (a first balance of one more asset moves that asset's holders, not the enrolment)."""
        old_set, new_set = set(old_programs), set(new_programs)
        for program_id in old_programs:
            if program_id not in new_set:
                self._add_count(self.enrolled, program_id, f"enrolled\0{program_id}".encode(), -1, ops)
            for asset_id in old_held if program_id not in new_set else old_held - new_held:
                self._add_holder(program_id, asset_id, -1, ops)
        for program_id in new_programs:
            if program_id not in old_set:
                self._add_count(self.enrolled, program_id, f"enrolled\0{program_id}".encode(), 1, ops)
            for asset_id in new_held if program_id not in old_set else new_held - old_held:
                self._add_holder(program_id, asset_id, 1, ops)
        for asset_id in old_held - new_held:
            self._add_holder(ALL_PROGRAMS, asset_id, -1, ops)
        for asset_id in new_held - old_held:
            self._add_holder(ALL_PROGRAMS, asset_id, 1, ops)

    def _add_holder(self, program_key: str, asset_id: str, delta: int, ops: list[Op]) -> None:
        stored_key = f"holders\0{program_key}\0{asset_id}".encode()
        self._add_count(self.holders, (program_key, asset_id), stored_key, delta, ops)

    def record_lots(self, lots: Iterable[Lot], originals: Mapping[str, ParticipantState], ops: list[Op]) -> None:
        """Move each changed lot's value from its old expiry cell to its new one."""
        if not lots:
            return  # most commits change no lot
        lookups = _Lookups(originals)
        for lot in lots:
            old = lookups.old_version(lot)
            if old is not None:
                self._add_lot(old, -1, ops)
            self._add_lot(lot, 1, ops)

    def _add_lot(self, lot: Lot, sign: int, ops: list[Op]) -> None:
        found = lot_contribution(lot)
        if found is None:
            return
        key, value = found
        cell = self.expiry.get(key)
        if cell is None:
            cell = self.expiry[key] = [0, 0]
        cell[0] += sign * value
        cell[1] += sign
        assert cell[0] >= 0, f"lot expiry cell {key} value would go negative"
        assert cell[1] >= 0, f"lot expiry cell {key} count would go negative"
        if cell[1] == 0:
            assert cell[0] == 0
            del self.expiry[key]
            ops.append(("report_expiry", expiry_key(key), None))
        else:
            ops.append(("report_expiry", expiry_key(key), _encode(cell)))

    # --- loading them ------------------------------------------------------------------------------------------

    def load(self, scan: Any) -> None:
        """Read the stored aggregates back (on open); ``scan(db)`` yields ``(key, value)`` pairs."""
        for key, raw in scan("report_hours"):
            program_key, asset_id, hour = bytes(key).decode().split("\0")
            row, total, _ = self._cell(program_key, asset_id, int(hour))
            row[:] = msgspec.json.decode(raw, type=list[int])
            assert len(row) == len(COLUMNS), f"report row {key!r} has {len(row)} columns"
            for column in range(LAST):
                total[column] += row[column]
            if row[LAST] > total[LAST]:
                total[LAST] = row[LAST]
                if program_key and asset_id == "":
                    self.last_activity_us[program_key] = row[LAST]
        for key, raw in scan("report_counts"):
            kind, _, rest = bytes(key).decode().partition("\0")
            value = msgspec.json.decode(raw, type=int)
            assert value >= 1, f"report count {key!r} is {value}: counts of zero are deleted, never stored"
            if kind == "holders":
                program_id, asset_id = rest.split("\0")
                self.holders[(program_id, asset_id)] = value
            else:
                assert kind == "enrolled", f"unknown report count {kind!r}"
                self.enrolled[rest] = value
        for key, raw in scan("report_expiry"):
            program_id, asset_id, day = bytes(key).decode().split("\0")
            cell = msgspec.json.decode(raw, type=list[int])
            # The pair of _add_lot's checks before writing: [value, open lots], an empty cell is deleted, and every
            # open lot holds at least one minor unit.
            assert len(cell) == 2, f"lot expiry cell {key!r} has {len(cell)} parts"
            assert cell[1] >= 1, f"lot expiry cell {key!r} counts {cell[1]} lots"
            assert cell[0] >= cell[1], f"lot expiry cell {key!r} holds less than its lots"
            self.expiry[(program_id, asset_id, int(day))] = cell

    def stored_form(self) -> dict[str, dict[bytes, bytes]]:
        """Every aggregate as the store would hold it (what ``verify`` compares a recomputation against)."""
        counts: dict[bytes, bytes] = {}
        for (program_id, asset_id), value in self.holders.items():
            counts[f"holders\0{program_id}\0{asset_id}".encode()] = _encode(value)
        for program_id, value in self.enrolled.items():
            counts[f"enrolled\0{program_id}".encode()] = _encode(value)
        return {
            "report_hours": {hour_key(*key): _encode(row) for key, row in self.hours.items()},
            "report_counts": counts,
            "report_expiry": {expiry_key(key): _encode(cell) for key, cell in self.expiry.items()},
        }


_LINEAR_LOOKUPS_MAX = 4  # per (participant, asset) and commit; then an index of the open lots pays for itself


class _Lookups:
    """Finds the committed versions of one commit's changed lots."""

    def __init__(self, originals: Mapping[str, ParticipantState]) -> None:
        self.originals = originals
        self.counts: dict[tuple[str, str], int] = {}
        self.indexes: dict[tuple[str, str], dict[str, Lot]] = {}

    def old_version(self, lot: Lot) -> Lot | None:
        """The committed version of a changed lot among its participant's open lots (None: new, or closed).

        A lot numbered above the participant's committed count is new: nothing to look up, so a credit stays
        O(1) however many lots are open. A changed lot is usually near the front (FIFO spends the oldest), so the
        first few lookups scan; a commit changing more of one participant's lots builds an index once.
        """
        original = self.originals.get(lot.participant_id)
        if original is None or lot.number > original.lot_numbers.get(lot.asset_id, 0):
            return None
        key = (lot.participant_id, lot.asset_id)
        index = self.indexes.get(key)
        if index is not None:
            return index.get(lot.id)
        open_lots = original.lots.get(lot.asset_id, [])
        count = self.counts[key] = self.counts.get(key, 0) + 1
        if count > _LINEAR_LOOKUPS_MAX:
            index = self.indexes[key] = {candidate.id: candidate for candidate in open_lots}
            return index.get(lot.id)
        return next((candidate for candidate in open_lots if candidate.id == lot.id), None)


def _same_holdings(original: ParticipantState, state: ParticipantState) -> bool:
    """Whether ``state`` holds a nonzero balance of exactly the assets ``original`` did (no set built: this runs
    for every participant every commit touches)."""
    old_balances = original.balances
    for asset_id, values in state.balances.items():
        old = old_balances.get(asset_id)
        if (old is not None and (old[0] != 0 or old[1] != 0 or old[2] != 0)) != (
            values[0] != 0 or values[1] != 0 or values[2] != 0
        ):
            return False
    if len(old_balances) == len(state.balances):
        return True  # balances are never dropped, so the same count means the same assets
    return all(asset_id in state.balances or not any(values) for asset_id, values in old_balances.items())


def _held_assets(state: ParticipantState) -> set[str]:
    """The assets of which a participant holds a nonzero balance (any bucket; an overdraft counts)."""
    return {asset_id for asset_id, values in state.balances.items() if any(values)}


def recompute(
    entries: Iterable[JournalEntry],
    events: Iterable[tuple[str, datetime, bytes]],
    participants: Iterable[Any],
    lots: Iterable[Lot],
) -> ReportTotals:
    """The aggregates recomputed from scratch (verify, the migration, the tests' naive check).

    ``events`` are ``(program id, event_timestamp, be64 sequence)``; ``participants`` anything with ``id``,
    ``program_ids`` and ``balances`` (stored records do). The writes it would make are dropped as they come.
    """
    totals = ReportTotals()
    sink = _Discard()
    totals.record_entries(entries, sink)
    for program_id, event_timestamp, sequence_key in events:
        totals.record_event(program_id, event_timestamp, sequence_key, sink)
    totals.record_participants(participants, {}, sink)
    for lot in lots:
        totals._add_lot(lot, 1, sink)
    return totals


class _Discard(list[Op]):
    """A list that keeps nothing: a recomputation over a million entries need not hold its million writes."""

    def append(self, item: Op) -> None:
        pass
