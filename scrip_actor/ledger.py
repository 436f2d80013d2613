"""The double-entry ledger in memory: accounts, participant balances, lots, and one step's transaction.

Pure domain code: nothing here does I/O or awaits. A :class:`LedgerTx` works on copies of the states it touches;
:meth:`LedgerTx.commit` swaps the copies in and returns a :class:`Changes` record for the store, or the caller drops
the transaction and nothing happened (that is how an event is atomic).

Invariants, asserted when an entry is built and again by ``verify`` after reading it back:

* the postings of an entry sum to zero per asset, and there are at least two;
* a lot's remaining amount stays within ``0..amount``;
* for a LOT asset, ``available == sum(remaining of AVAILABLE lots) - overdraft`` and
  ``deferred == sum(remaining of DEFERRED lots)``;
* the journal sequence increases by one and each entry's hash covers the previous entry's hash.
"""

from __future__ import annotations

import bisect
import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from scrip_actor.amounts import AMOUNT_MINOR_MAX, format_minor
from scrip_actor.counters import CounterWindow, effective
from scrip_actor.durations import format_duration
from scrip_actor.ids import KIND_ENTRY, SequenceIds
from scrip_actor.model import Asset, Balance, CounterReset, JournalEntry, Lot, Participant, ParticipantTier, Posting
from scrip_actor.report_totals import ReportTotals
from scrip_actor.tiers import TierHolding

__all__ = [
    "GENESIS_HASH",
    "OPEN_LOT_STATUSES",
    "SYSTEM_BREAKAGE",
    "SYSTEM_ISSUANCE",
    "SYSTEM_REDEMPTION",
    "ActionFailed",
    "Changes",
    "LedgerTx",
    "ParticipantRecord",
    "ParticipantState",
    "RemoteCredit",
    "RemoteTarget",
    "WalletShort",
    "World",
    "account_key",
    "check_entry",
    "check_lot_balances",
    "credit_remote",
    "decimal_text",
    "entries_since",
    "entry_count",
    "entry_hash",
    "recount_lots",
    "schedule_at",
    "transit_account",
]

SYSTEM_ISSUANCE = "SYSTEM_ISSUANCE"
SYSTEM_BREAKAGE = "SYSTEM_BREAKAGE"
SYSTEM_REDEMPTION = "SYSTEM_REDEMPTION"
GENESIS_HASH = "0" * 64

AVAILABLE, HELD, DEFERRED = 0, 1, 2
_BUCKETS: tuple[Literal["AVAILABLE", "HELD", "DEFERRED"], ...] = ("AVAILABLE", "HELD", "DEFERRED")
_BUCKET_INDEX = {bucket: index for index, bucket in enumerate(_BUCKETS)}
# A lot with value left in one of the participant's buckets (its status names the bucket); the others are closed.
OPEN_LOT_STATUSES = ("AVAILABLE", "HELD", "DEFERRED")


class ActionFailed(Exception):
    """An action cannot apply (balance too small, wallet empty, blocked status, bad amount): the event fails."""


class WalletShort(ActionFailed):
    """A credit needs more than the program wallet holds. In partitioned mode a partition's wallet account is its
    lease of a wallet shared by all partitions, so the step may be held until the wallet's owner partition sends
    more (scrip_actor/partitioned/_wallet_leases.py) instead of failing the event."""

    def __init__(self, message: str, *, program_id: str, asset_id: str, need_minor: int, available_minor: int) -> None:
        super().__init__(message)
        self.program_id, self.asset_id = program_id, asset_id
        self.need_minor, self.available_minor = need_minor, available_minor

    def reworded(self, message: str) -> WalletShort:
        """The same shortage, told with ``message`` (an action's label in front)."""
        return WalletShort(
            message,
            program_id=self.program_id,
            asset_id=self.asset_id,
            need_minor=self.need_minor,
            available_minor=self.available_minor,
        )


def derived_id(seed: str, counter: int) -> str:
    """Deterministic UUID from a seed (an event id) and a counter, so replays produce the same ids."""
    return _format_uuid(_seed_int(seed) + counter)


def _seed_int(seed: str) -> int:
    """128 bits of SHA-256 of the seed, with the counter's room cleared (ids of one seed differ in the low bits)."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big") & ~0xFFFF_FFFF


def _format_uuid(value: int) -> str:
    """RFC 4122 text of a version-8 (custom) UUID built from ``value``; cheaper than ``str(uuid.UUID(...))``."""
    value = (value & ~(0xF000 << 64) | (0x8000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def account_key(entity_type: str, entity_id: str, asset_id: str, bucket: str = "AVAILABLE") -> str:
    """Key of a non-participant account (system accounts, program wallets)."""
    return f"{entity_type}:{entity_id}:{asset_id}:{bucket}"


class ParticipantRecord(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """A participant as stored (lots live in their own database): a JSON array, so names are not repeated."""

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
    # Schema 9: counters with a reset_after window (scrip_actor/counters.py). Last, with a default, so records of
    # earlier schemas (shorter arrays) decode unchanged.
    counter_windows: dict[str, CounterWindow] = {}
    # Schema 9: tier levels held, per program id then tier key (scrip_actor/tiers.py). Last, with a default.
    tiers: dict[str, dict[str, TierHolding]] = {}


class ParticipantState:
    """A participant in memory: the actor's state, kept exactly equal to what has been committed or is queued."""

    __slots__ = (
        "_cel_view",
        "_lots_shared",
        "attributes",
        "balances",
        "commit_ticket",
        "counter_windows",
        "counters",
        "created_at",
        "external_id",
        "id",
        "lot_numbers",
        "lot_sums",
        "lots",
        "lots_due_from",
        "overdraft",
        "profile",
        "program_ids",
        "status",
        "stored_external_id",
        "tags",
        "tiers",
        "updated_at",
    )

    def __init__(self, record: ParticipantRecord, lots: dict[str, list[Lot]]) -> None:
        self.id = record.id
        self.external_id = record.external_id
        self.status = record.status
        self.profile = dict(record.profile)
        self.tags = set(record.tags)
        self.counters = {key: Decimal(value) for key, value in record.counters.items()}
        self.counter_windows = dict(record.counter_windows)
        self.tiers = {program_id: dict(held) for program_id, held in record.tiers.items()}
        self.attributes = dict(record.attributes)
        self.program_ids = list(record.program_ids)
        self.balances = {asset: list(values) for asset, values in record.balances.items()}
        self.overdraft = dict(record.overdraft)
        self.lot_numbers = dict(record.lot_numbers)
        self.created_at = record.created_at
        self.updated_at = record.updated_at
        # Open lots only (AVAILABLE, HELD or DEFERRED with something remaining), oldest first.
        self.lots = lots
        # Kept with every change of ``lots``, so an event costs O(1) however many lots are open (recount_lots):
        # per asset, [remaining of AVAILABLE lots, remaining of DEFERRED lots]; and a time no open lot is due
        # before (a lower bound: settlement looks at the lots only once it has passed; None: none is due, ever).
        self.lot_sums: dict[str, list[int]] = {}
        self.lots_due_from: datetime | None = None
        recount_lots(self)
        self.commit_ticket = 0
        self.stored_external_id: str | None = None  # what the store's external id index says (None: not stored)
        self._cel_view: dict[str, object] | None = None
        self._lots_shared = False  # see clone() and own_lots()

    def clone(self) -> ParticipantState:
        """A copy whose containers can change without touching this one (lots are copied on write)."""
        copy = ParticipantState.__new__(ParticipantState)
        copy.id = self.id
        copy.external_id = self.external_id
        copy.status = self.status
        # Empty containers are made with a literal (cheaper than copying): most participants have no profile,
        # windows, tiers or attributes, and this runs for every event.
        copy.profile = self.profile.copy() if self.profile else {}
        copy.tags = self.tags.copy() if self.tags else set()
        copy.counters = self.counters.copy() if self.counters else {}
        copy.counter_windows = self.counter_windows.copy() if self.counter_windows else {}
        # Holdings are frozen: copying the two levels of dicts is enough (and nothing, for most participants).
        copy.tiers = {program_id: dict(held) for program_id, held in self.tiers.items()} if self.tiers else {}
        copy.attributes = self.attributes.copy() if self.attributes else {}
        copy.program_ids = self.program_ids.copy()
        balances = copy.balances = {}
        for asset, values in self.balances.items():  # a loop: a comprehension is a function call in 3.11
            balances[asset] = values.copy()
        copy.created_at = self.created_at
        copy.updated_at = self.updated_at
        # Copied on write: most events change no lot, and copying them was the largest part of a clone. Both
        # sides are marked shared, so whichever changes them first makes its own (own_lots).
        copy.overdraft = self.overdraft
        copy.lot_numbers = self.lot_numbers
        copy.lots = self.lots
        copy.lot_sums = self.lot_sums
        copy._lots_shared = self._lots_shared = True
        copy.lots_due_from = self.lots_due_from
        copy.commit_ticket = self.commit_ticket
        copy.stored_external_id = self.stored_external_id
        # The view is never changed in place (a new one is built after invalidate()), so the copy may share it
        # until it changes what the view shows: a credit or a lot does not, so most events reuse it.
        copy._cel_view = self._cel_view
        return copy

    def own_lots(self) -> None:
        """Make ``lots``, ``lot_sums``, ``lot_numbers`` and ``overdraft`` this state's own before changing any of
        them in place (a clone shares them with its original until then). Every such change in ledger.py calls
        this first; nothing outside this module changes them."""
        if self._lots_shared:
            self.lots = {asset: list(lots) for asset, lots in self.lots.items()}
            self.lot_sums = {asset: list(sums) for asset, sums in self.lot_sums.items()}
            self.lot_numbers = dict(self.lot_numbers)
            self.overdraft = dict(self.overdraft)
            self._lots_shared = False

    def to_record(self) -> ParticipantRecord:
        """The storable form."""
        return ParticipantRecord(
            id=self.id,
            external_id=self.external_id,
            status=self.status,
            profile=dict(self.profile),
            tags=sorted(self.tags),
            # Dicts keep their insertion order, which processing makes deterministic: no need to sort them here.
            counters={key: decimal_text(value) for key, value in self.counters.items()},
            attributes=self.attributes,
            program_ids=self.program_ids,
            balances=self.balances,
            overdraft={asset: value for asset, value in self.overdraft.items() if value},
            lot_numbers=self.lot_numbers,
            created_at=self.created_at,
            updated_at=self.updated_at,
            counter_windows=self.counter_windows,
            tiers=self.tiers,
        )

    def record_fields(self) -> list[object]:
        """:meth:`to_record`'s fields in its array order, without building the struct: the store encodes this list
        to the very bytes the record would encode to (``ParticipantRecord`` is ``array_like``; a test holds the
        two equal), at a third of the cost, on every event."""
        overdraft = self.overdraft
        if overdraft and not all(overdraft.values()):
            overdraft = {asset: value for asset, value in overdraft.items() if value}
        counters = self.counters
        return [
            self.id,
            self.external_id,
            self.status,
            self.profile,
            sorted(self.tags) if len(self.tags) > 1 else list(self.tags),
            {key: decimal_text(value) for key, value in counters.items()} if counters else {},
            self.attributes,
            self.program_ids,
            self.balances,
            overdraft,
            self.lot_numbers,
            self.created_at,
            self.updated_at,
            self.counter_windows,
            self.tiers,
        ]

    def cel_view_at(self, now: datetime) -> dict[str, object]:
        """:meth:`cel_view` with each counter's effective value at ``now`` (0 once its reset window has passed)."""
        view = self.cel_view()
        if not self.counter_windows:
            return view
        reset = [key for key, window in self.counter_windows.items() if window.current(now) is not window]
        if not reset:
            return view
        counters = dict(view["counters"])  # type: ignore[call-overload]
        counters.update(dict.fromkeys(reset, 0.0))
        return {**view, "counters": counters}

    def effective_counters(self, now: datetime) -> dict[str, Decimal]:
        """Every counter's effective value at ``now``."""
        if not self.counter_windows:
            return self.counters
        return {key: effective(value, self.counter_windows.get(key), now)[0] for key, value in self.counters.items()}

    def cel_view(self) -> dict[str, object]:
        """The participant as CEL sees it: counters are doubles.

        Cached until :meth:`invalidate`, which every change of a field shown here must call (balances and lots
        are not shown, so the ledger's operations keep it). One call in ``_VIEW_CHECK_EVERY`` compares the cache
        with a fresh view, so a change that forgot to invalidate is caught by the tests rather than misread.
        """
        global _views_served
        view = self._cel_view
        if view is None:
            view = self._cel_view = self._fresh_view()
        else:
            _views_served += 1
            if _views_served % _VIEW_CHECK_EVERY == 0:
                assert view == self._fresh_view(), f"participant {self.id} changed without invalidate()"
        return view

    def _fresh_view(self) -> dict[str, object]:
        return {
            "id": self.id,
            "external_id": self.external_id,
            "status": self.status,
            "tags": sorted(self.tags),
            "counters": {key: float(value) for key, value in self.counters.items()},
            "attributes": dict(self.attributes),
            "program_ids": list(self.program_ids),
            "tiers": {},  # the event's program's tiers are laid over this by the step (tier_effects.cel_tiers)
        }

    def balance(self, asset_id: str) -> list[int]:
        """The mutable ``[available, held, deferred]`` triple of an asset (created at zero)."""
        values = self.balances.get(asset_id)
        if values is None:
            values = self.balances[asset_id] = [0, 0, 0]
        return values

    def public(self, assets: dict[str, Asset], now: datetime | None = None) -> Participant:
        """The caller-facing record, amounts formatted at each asset's scale, counters at their effective value at
        ``now`` (the wall clock, for the API; None: as stored)."""
        counters = self.counters if now is None else self.effective_counters(now)
        balances = []
        for asset_id, (available, held, deferred) in sorted(self.balances.items()):
            scale = assets[asset_id].scale if asset_id in assets else 0
            balances.append(
                Balance(
                    asset_id=asset_id,
                    available=format_minor(available, scale),
                    held=format_minor(held, scale),
                    deferred=format_minor(deferred, scale),
                )
            )
        return Participant(
            id=self.id,
            external_id=self.external_id,
            status=self.status,  # type: ignore[arg-type]
            email=self.profile.get("email"),
            phone=self.profile.get("phone"),
            first_name=self.profile.get("first_name"),
            last_name=self.profile.get("last_name"),
            display_name=self.profile.get("display_name"),
            tags=sorted(self.tags),
            counters={key: decimal_text(value) for key, value in sorted(counters.items())},
            counter_resets=self._counter_resets(now),
            attributes=dict(sorted(self.attributes.items())),
            program_ids=list(self.program_ids),
            balances=balances,
            created_at=self.created_at,
            updated_at=self.updated_at,
            tiers=self.public_tiers(),
        )

    def public_tiers(self) -> dict[str, ParticipantTier]:
        """The levels held (rank above 0), by tier key; programs in id order, so a key two programs share shows
        the later program's (each is listed under its program by ``…/state/tiers?program_id=``)."""
        shown: dict[str, ParticipantTier] = {}
        for program_id in sorted(self.tiers):
            for key, holding in self.tiers[program_id].items():
                if holding.rank > 0:
                    shown[key] = ParticipantTier(level=holding.level, rank=holding.rank, program_id=program_id)
        return dict(sorted(shown.items()))

    def _counter_resets(self, now: datetime | None) -> dict[str, CounterReset]:
        resets = {}
        for key, window in sorted(self.counter_windows.items()):
            current = window if now is None else window.current(now)
            resets[key] = CounterReset(
                reset_after=format_duration(window.reset_after), last_reset_at=current.started_at
            )
        return resets

    def invalidate(self) -> None:
        """Forget the cached CEL view after a change."""
        self._cel_view = None

    def counters_changed(self) -> None:
        """:meth:`invalidate` after a change of counters only: the view gets new counters and keeps the rest (a
        counter action is the commonest change; tags need sorting, attributes and program ids copying)."""
        view = self._cel_view
        if view is not None:
            view = dict(view)  # a new view: the old one may be shared with the original (see clone)
            view["counters"] = {key: float(value) for key, value in self.counters.items()}
            self._cel_view = view


_VIEW_CHECK_EVERY = 64
_views_served = 0


def decimal_text(value: Decimal) -> str:
    """Exact, plain decimal text (no exponent): ``Decimal("1E+2")`` -> ``"100"``."""
    text = str(value)  # a third of format()'s cost, and the same text unless str() chose an exponent
    if "E" in text:
        text = format(value, "f")
    return text


class World:
    """Ledger state shared by all participants: assets, system and wallet accounts, the journal head."""

    def __init__(self, ids: SequenceIds) -> None:
        self.ids = ids
        self.assets: dict[str, Asset] = {}
        self.accounts: dict[str, int] = {}
        self.journal_sequence = 0
        self.journal_hash = GENESIS_HASH
        self.state_sequence = 0  # the last state-history entry's number (StateChange.sequence)
        self.reports = ReportTotals()  # schema 9: the reports' running totals, kept by every commit


class FollowUp(msgspec.Struct, frozen=True, kw_only=True):
    """A SCHEDULE_EVENT (``delay``) or BROADCAST (``broadcast``) a rule's action asked for: an automation to be
    created with the event's outcome (engine/_automations.py), never an await inside the step."""

    participant_id: str
    event_name: str
    payload: dict[str, Any]
    delay_s: float = 0.0
    broadcast: bool = False
    rule_id: str | None = None


def transit_account(partition: int) -> str:
    """The SYSTEM account holding value on its way to or from partition ``partition`` (partitioned mode)."""
    return f"SYSTEM_TRANSIT_P{partition}"


class RemoteTarget(msgspec.Struct, frozen=True):
    """A rule's target that lives on another partition (partitioned mode): only a CREDIT reaches it, through the
    cross-partition outbox (scrip_actor/engine/_cross_partition.py)."""

    partition: int
    external_id: str


class RemoteCredit(msgspec.Struct, kw_only=True):
    """A rule's CREDIT to a :class:`RemoteTarget`, posted here into the destination's transit account; the
    publisher turns it into an outbox record, sent with the event's outcome (``entry`` is numbered at commit)."""

    target: RemoteTarget
    asset_id: str
    amount_minor: int
    program_id: str
    rule_id: str
    description: str | None
    expires_at: datetime | None
    matures_at: datetime | None
    entry: JournalEntry  # the CREDIT entry here (source -> transit), its id the credit's reference


class Changes(msgspec.Struct, kw_only=True):
    """What one committed transaction changed, for the store to write."""

    participants: list[ParticipantState]
    lots: list[Lot]
    entries: list[JournalEntry]
    accounts: dict[str, int]  # new absolute balances
    schedule: list[tuple[datetime, str, str]]  # (due, lot id, participant id) to add
    entry_bytes: list[bytes] = []  # each entry's stored JSON, aligned with ``entries``
    # Numbered, in the order they were made: (participant id, sequence, the stored fields; see _numbered_state_changes).
    state_changes: list[tuple[str, int, tuple[object, ...]]] = []
    report_ops: list[tuple[str, bytes, bytes | None]] = []  # the report totals' new values (report_totals.py)


_entry_encoder = msgspec.json.Encoder()
_EMPTY_HASH_TAIL = b',"entry_hash":""}'


def entry_hash(entry: JournalEntry) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON (with ``entry_hash`` empty)."""
    canonical = msgspec.json.encode(msgspec.structs.replace(entry, entry_hash=""))
    return hashlib.sha256(entry.previous_hash.encode() + canonical).hexdigest()


def check_entry(entry: JournalEntry) -> None:
    """Assert an entry's own invariants (used before writing and after reading)."""
    postings = entry.postings
    assert len(postings) >= 2, f"entry {entry.id} has fewer than two postings"
    if len(postings) == 2:  # the common shape, checked without building a dict
        first, second = postings
        assert first.asset_id == second.asset_id, f"entry {entry.id} mixes assets in two postings"
        assert first.amount_minor == -second.amount_minor, f"entry {entry.id} postings do not sum to zero"
        assert first.amount_minor != 0, f"entry {entry.id} has a zero posting"
        assert abs(first.amount_minor) <= AMOUNT_MINOR_MAX, f"entry {entry.id} posting out of range"
        return
    sums: dict[str, int] = {}
    for posting in entry.postings:
        assert posting.amount_minor != 0, f"entry {entry.id} has a zero posting"
        assert abs(posting.amount_minor) <= AMOUNT_MINOR_MAX, f"entry {entry.id} posting out of range"
        sums[posting.asset_id] = sums.get(posting.asset_id, 0) + posting.amount_minor
    for asset_id, total in sums.items():
        assert total == 0, f"entry {entry.id} postings of asset {asset_id} sum to {total}, not zero"


def _wallet_short(asset: Asset, program_id: str, need_minor: int, available_minor: int) -> WalletShort:
    return WalletShort(
        f"program wallet for asset {asset.symbol} has {format_minor(available_minor, asset.scale)}, "
        f"needs {format_minor(need_minor, asset.scale)}",
        program_id=program_id,
        asset_id=asset.id,
        need_minor=need_minor,
        available_minor=available_minor,
    )


class LedgerTx:
    """One step's changes, applied to copies; :meth:`commit` makes them real, dropping the object undoes them.

    Args:
        world: the shared ledger state.
        now: the step's logical time (the event's ``event_timestamp``); relative expiry counts from it.
        id_seed: seed of the deterministic ids of entries and lots (the event id, or a sweep's id).
    """

    def __init__(self, world: World, *, now: datetime, id_seed: str, program_id: str | None) -> None:
        self.world = world
        self.now = now
        self.id_seed = id_seed
        self.program_id = program_id
        self.event_id: str | None = None
        self._counter = 0
        self._seed_int: int | None = None  # computed on first use: most steps create no lot
        self._crossed_zero: set[str] | None = None  # see _post_to_participant
        self._participants: dict[str, ParticipantState] = {}
        self._originals: dict[str, ParticipantState] = {}
        self._account_deltas: dict[str, int] = {}
        self._entries: list[JournalEntry] = []
        self._lots: dict[str, Lot] = {}
        self._schedule: list[tuple[datetime, str, str]] = []
        self._state_notes: list[tuple[str, str, str, str, object, object, str, str | None]] = []
        # SET_TIER actions (participant, tier, level, rule id), resolved after the rules (scrip_actor.tier_effects).
        self.tier_sets: list[tuple[str, str, str, str | None]] = []
        self.follow_ups: list[FollowUp] = []  # SCHEDULE_EVENT / BROADCAST, as data for the publisher
        self.remote_credits: list[RemoteCredit] = []  # CREDITs to another partition's participants, likewise

    # --- working copies ---------------------------------------------------------------------------------------

    def edit(self, state: ParticipantState) -> ParticipantState:
        """The working copy of ``state`` for this transaction (made on first use)."""
        copy = self._participants.get(state.id)
        if copy is None:
            copy = state.clone()
            self._participants[state.id] = copy
            self._originals[state.id] = state
        return copy

    def adopt_new(self, state: ParticipantState) -> ParticipantState:
        """Register a participant created inside this transaction."""
        assert state.id not in self._participants
        self._participants[state.id] = state
        return state

    def touched(self, participant_id: str) -> ParticipantState | None:
        """The working copy if this transaction already touched the participant."""
        return self._participants.get(participant_id)

    def account_balance(self, key: str) -> int:
        """An account's balance including this transaction's uncommitted postings."""
        return self.world.accounts.get(key, 0) + self._account_deltas.get(key, 0)

    def next_id(self) -> str:
        """A fresh deterministic id for an entry or lot."""
        self._counter += 1
        if self._seed_int is None:
            self._seed_int = _seed_int(self.id_seed)
        return _format_uuid(self._seed_int + self._counter)

    def note_state(
        self,
        participant_id: str,
        state_type: str,
        key: str,
        operation: str,
        old_value: str | Decimal | None,
        new_value: str | Decimal | None,
        *,
        source: str = "rule",
        rule_id: str | None = None,
    ) -> None:
        """Record a change of a participant's state for its history, numbered by :meth:`commit`, undone by
        :meth:`rollback`. Values are text, or a counter's Decimal (formatted when read, not on the event path)."""
        self._state_notes.append((participant_id, state_type, key, operation, old_value, new_value, source, rule_id))

    # --- postings ---------------------------------------------------------------------------------------------

    def post(
        self,
        action_type: str,
        legs: list[tuple[str, str, str, str, int]],
        *,
        rule_id: str | None,
        description: str | None,
        reference_id: str | None = None,
        created_at: datetime | None = None,
        program_id: str | None = None,
    ) -> None:
        """Record an entry from ``(entity_type, entity_id, asset_id, bucket, amount_minor)`` legs; apply them."""
        postings = []
        for entity_type, entity_id, asset_id, bucket, amount_minor in legs:
            scale = self.world.assets[asset_id].scale
            postings.append(
                Posting(
                    entity_type=entity_type,  # type: ignore[arg-type]
                    entity_id=entity_id,
                    asset_id=asset_id,
                    bucket=bucket,  # type: ignore[arg-type]
                    amount_minor=amount_minor,
                    amount=format_minor(amount_minor, scale),
                )
            )
            if entity_type == "PARTICIPANT":
                _post_to_participant(self, entity_id, asset_id, bucket, amount_minor)
            else:
                key = account_key(entity_type, entity_id, asset_id, bucket)
                self._account_deltas[key] = self._account_deltas.get(key, 0) + amount_minor
        entry = JournalEntry(
            id="",  # id and sequence are assigned at commit, in commit order
            sequence=0,
            action_type=action_type,
            program_id=program_id or self.program_id,
            event_id=self.event_id,
            rule_id=rule_id,
            reference_id=reference_id,
            description=description,
            created_at=created_at or self.now,
            postings=postings,
            previous_hash="",
        )
        self._entries.append(entry)

    def source_leg(self, asset: Asset, program_id: str, amount_minor: int) -> tuple[str, str, str, str, int]:
        """Where a credit's value comes from: SYSTEM_ISSUANCE, or the program wallet (which must cover it)."""
        if asset.issuance_policy == "UNLIMITED":
            return ("SYSTEM", SYSTEM_ISSUANCE, asset.id, "AVAILABLE", -amount_minor)
        wallet = account_key("PROGRAM", program_id, asset.id)
        available = self.account_balance(wallet)
        if available < amount_minor:
            raise _wallet_short(asset, program_id, amount_minor, available)
        return ("PROGRAM", program_id, asset.id, "AVAILABLE", -amount_minor)

    # --- operations -------------------------------------------------------------------------------------------

    def credit(
        self,
        state: ParticipantState,
        asset: Asset,
        amount_minor: int,
        *,
        program_id: str,
        rule_id: str | None,
        description: str | None,
        expires_at: datetime | None = None,
        matures_at: datetime | None = None,
    ) -> None:
        """Credit ``amount_minor`` to a participant; a LOT asset gets a new lot. Returns the entry id."""
        assert amount_minor > 0
        participant = self.edit(state)
        source = self.source_leg(asset, program_id, amount_minor)
        deferred = matures_at is not None and matures_at > self.now
        bucket = "DEFERRED" if deferred else "AVAILABLE"
        self.post(
            "CREDIT",
            [source, ("PARTICIPANT", participant.id, asset.id, bucket, amount_minor)],
            rule_id=rule_id,
            description=description,
        )
        if asset.inventory_mode == "LOT":
            self.open_lot(participant, asset, amount_minor, program_id, expires_at, matures_at, deferred)
        # No invalidate(): balances and lots are not part of the CEL view (ParticipantState.cel_view).

    def open_lot(
        self,
        participant: ParticipantState,
        asset: Asset,
        amount_minor: int,
        program_id: str,
        expires_at: datetime | None,
        matures_at: datetime | None,
        deferred: bool,
        held: tuple[str | None, bool] | None = None,
    ) -> Lot:
        """A new lot of a credit. ``held``: ``(reference_id, provisional)`` of a lot credited straight to HELD."""
        number = participant.lot_numbers.get(asset.id, 0) + 1
        remaining = amount_minor
        if not deferred and held is None:
            remaining -= self.repay_overdraft(participant, asset.id, amount_minor)
        status = "DEFERRED" if deferred else "HELD" if held else "AVAILABLE" if remaining else "CONSUMED"
        lot = Lot(
            id=self.next_id(),
            participant_id=participant.id,
            asset_id=asset.id,
            program_id=program_id,
            number=number,
            amount_minor=amount_minor,
            remaining_minor=remaining,
            amount=format_minor(amount_minor, asset.scale),
            remaining=format_minor(remaining, asset.scale),
            status=status,  # type: ignore[arg-type]
            created_at=self.now,
            expires_at=expires_at,
            matures_at=matures_at,
            event_id=self.event_id,
            reference_id=held[0] if held else None,
            provisional=held[1] if held else False,
        )
        self.add_lot(participant, lot, number_checked=True)
        return lot

    def add_lot(self, participant: ParticipantState, lot: Lot, *, number_checked: bool = False) -> None:
        """Record a new lot (its number the participant's next), open and scheduled when it is still open."""
        participant.own_lots()
        assert number_checked or lot.number == participant.lot_numbers.get(lot.asset_id, 0) + 1
        participant.lot_numbers[lot.asset_id] = lot.number
        self._lots[lot.id] = lot
        if lot.status in OPEN_LOT_STATUSES:
            _add_open_lot(participant, lot)
            for due in (lot.expires_at, lot.matures_at if lot.status == "DEFERRED" else None):
                if due is not None:
                    self._schedule.append((due, lot.id, participant.id))

    def repay_overdraft(self, participant: ParticipantState, asset_id: str, amount_minor: int) -> int:
        """Value arriving in AVAILABLE first covers an overdraft; returns how much it covered."""
        owed = participant.overdraft.get(asset_id, 0)
        repaid = min(owed, amount_minor)
        if repaid:
            participant.own_lots()
            participant.overdraft[asset_id] = owed - repaid
        return repaid

    def debit(
        self,
        state: ParticipantState,
        asset: Asset,
        amount_minor: int,
        *,
        allow_negative: bool,
        rule_id: str | None,
        description: str | None,
    ) -> None:
        """Debit AVAILABLE value to SYSTEM_REDEMPTION; LOT assets spend the oldest spendable lots first."""
        assert amount_minor > 0
        participant = self.edit(state)
        if asset.inventory_mode == "LOT":
            spendable = self.spendable_lot_value(participant, asset.id)
        else:
            spendable = participant.balance(asset.id)[AVAILABLE]
        if spendable < amount_minor and not allow_negative:
            raise ActionFailed(
                f"insufficient {asset.symbol} balance: available {format_minor(max(spendable, 0), asset.scale)}, "
                f"needs {format_minor(amount_minor, asset.scale)}"
            )
        if asset.inventory_mode == "LOT":
            self.consume_lots(participant, asset, amount_minor)
        self.post(
            "DEBIT",
            [
                ("PARTICIPANT", participant.id, asset.id, "AVAILABLE", -amount_minor),
                ("SYSTEM", SYSTEM_REDEMPTION, asset.id, "AVAILABLE", amount_minor),
            ],
            rule_id=rule_id,
            description=description,
        )

    def spendable_lot_value(self, participant: ParticipantState, asset_id: str) -> int:
        """Value that may be spent now: AVAILABLE lots not yet expired at ``now``, less any overdraft."""
        total = 0
        for lot in participant.lots.get(asset_id, ()):
            if lot.status == "AVAILABLE" and (lot.expires_at is None or lot.expires_at > self.now):
                total += lot.remaining_minor
        return total - participant.overdraft.get(asset_id, 0)

    def consume_lots(self, participant: ParticipantState, asset: Asset, amount_minor: int) -> None:
        participant.own_lots()
        needed = amount_minor
        lots = participant.lots.get(asset.id, [])
        kept: list[Lot] = []
        for lot in lots:
            spendable = lot.status == "AVAILABLE" and (lot.expires_at is None or lot.expires_at > self.now)
            if needed == 0 or not spendable:
                kept.append(lot)
                continue
            taken = min(needed, lot.remaining_minor)
            needed -= taken
            participant.lot_sums[asset.id][AVAILABLE] -= taken
            remaining = lot.remaining_minor - taken
            assert 0 <= remaining <= lot.amount_minor
            changed = msgspec.structs.replace(
                lot,
                remaining_minor=remaining,
                remaining=format_minor(remaining, asset.scale),
                status="AVAILABLE" if remaining else "CONSUMED",
            )
            self._lots[changed.id] = changed
            if remaining:
                kept.append(changed)
        participant.lots[asset.id] = kept
        if needed:
            # allow_negative: what the lots could not cover becomes an overdraft, repaid by the next credits.
            participant.overdraft[asset.id] = participant.overdraft.get(asset.id, 0) + needed

    def settle_lots(self, state: ParticipantState, until: datetime) -> int:
        """Mature and expire every lot of ``state`` due at or before ``until``. Returns entries written.

        Maturity moves DEFERRED to AVAILABLE (MATURITY entry); expiry moves what remains to SYSTEM_BREAKAGE
        (EXPIRATION entry). Each entry is dated at the lot's own due time, so the journal does not depend on when
        the sweep happened to run.
        """
        if state.lots_due_from is None or state.lots_due_from > until:
            return 0  # the common case, in O(1) however many lots are open
        written = 0
        for asset_id in sorted(state.lots):
            for lot in list(state.lots[asset_id]):
                written += self._settle_lot(state, lot, until)
        recount_lots(self.touched(state.id) or state)  # the bound moves on (a cache: the original may take it)
        return written

    def _settle_lot(self, state: ParticipantState, lot: Lot, until: datetime) -> int:
        due = (lot.status == "DEFERRED" and lot.matures_at is not None and lot.matures_at <= until) or (
            lot.expires_at is not None and lot.expires_at <= until
        )
        if not due:
            return 0  # the common case: no copy of the participant is made
        written = 0
        participant = self.edit(state)
        asset = self.world.assets[lot.asset_id]
        current = next(candidate for candidate in participant.lots[lot.asset_id] if candidate.id == lot.id)
        matures = current.status == "DEFERRED" and current.matures_at is not None and current.matures_at <= until
        if matures and not (current.expires_at is not None and current.expires_at <= current.matures_at):  # type: ignore[operator]
            assert current.matures_at is not None
            self.post(
                "MATURITY",
                [
                    ("PARTICIPANT", participant.id, asset.id, "DEFERRED", -current.remaining_minor),
                    ("PARTICIPANT", participant.id, asset.id, "AVAILABLE", current.remaining_minor),
                ],
                rule_id=None,
                description="lot matured",
                reference_id=current.id,
                created_at=current.matures_at,
                program_id=current.program_id,
            )
            repaid = self.repay_overdraft(participant, asset.id, current.remaining_minor)
            remaining = current.remaining_minor - repaid
            current = self.replace_lot(participant, current, asset, remaining, "AVAILABLE" if remaining else "CONSUMED")
            written += 1
        if current.status in OPEN_LOT_STATUSES and current.expires_at is not None and current.expires_at <= until:
            bucket = current.status
            self.post(
                "EXPIRATION",
                [
                    ("PARTICIPANT", participant.id, asset.id, bucket, -current.remaining_minor),
                    ("SYSTEM", SYSTEM_BREAKAGE, asset.id, "AVAILABLE", current.remaining_minor),
                ],
                rule_id=None,
                description="lot expired",
                reference_id=current.id,
                created_at=current.expires_at,
                program_id=current.program_id,
            )
            self.replace_lot(participant, current, asset, 0, "EXPIRED")
            written += 1
        return written

    def replace_lot(
        self, participant: ParticipantState, lot: Lot, asset: Asset, remaining: int, status: str, **fields: object
    ) -> Lot:
        """Change an open lot's remaining value and status (and any other ``fields``), keeping the sums right."""
        participant.own_lots()
        assert 0 <= remaining <= lot.amount_minor
        changed = msgspec.structs.replace(
            lot,
            remaining_minor=remaining,
            remaining=format_minor(remaining, asset.scale),
            status=status,  # type: ignore[arg-type]
            **fields,
        )
        self._lots[changed.id] = changed
        participant.lots[asset.id] = [candidate for candidate in participant.lots[asset.id] if candidate.id != lot.id]
        if lot.status in OPEN_LOT_STATUSES:
            participant.lot_sums[asset.id][_BUCKETS.index(lot.status)] -= lot.remaining_minor
        if status in OPEN_LOT_STATUSES:
            _add_open_lot(participant, changed)
        return changed

    def is_empty(self) -> bool:
        """True when nothing was changed."""
        return not self._participants and not self._entries and not self._state_notes

    # --- savepoints -------------------------------------------------------------------------------------------

    def savepoint(self) -> _Savepoint | None:
        """Mark what the transaction holds now, so :meth:`rollback` can undo everything after it (the step's
        settlement and enrolment stand when its rules fail). Nothing held: None, free; otherwise the working
        copies are cloned once, which only a step that settled a lot or enrolled a participant pays."""
        if self.is_empty() and not self._account_deltas and not self.follow_ups and not self.remote_credits:
            return None
        return _Savepoint(
            counter=self._counter,
            participants={key: state.clone() for key, state in self._participants.items()},
            originals=dict(self._originals),
            account_deltas=dict(self._account_deltas),
            entries=len(self._entries),
            lots=dict(self._lots),
            schedule=len(self._schedule),
            state_notes=len(self._state_notes),
            follow_ups=len(self.follow_ups),
            remote_credits=len(self.remote_credits),
        )

    def rollback(self, savepoint: _Savepoint | None) -> None:
        """Undo everything done since ``savepoint`` (None: since the transaction began)."""
        if savepoint is None:
            self._counter = 0
            self._participants, self._originals, self._account_deltas = {}, {}, {}
            self._entries, self._lots, self._schedule, self._state_notes, self.follow_ups = [], {}, [], [], []
            self.remote_credits = []
            return
        self._counter = savepoint.counter
        self._participants = {key: state.clone() for key, state in savepoint.participants.items()}
        self._originals = dict(savepoint.originals)
        self._account_deltas = dict(savepoint.account_deltas)
        del self._entries[savepoint.entries :]
        self._lots = dict(savepoint.lots)
        del self._schedule[savepoint.schedule :]
        del self._state_notes[savepoint.state_notes :]
        del self.follow_ups[savepoint.follow_ups :]
        del self.remote_credits[savepoint.remote_credits :]

    def check(self) -> None:
        """Raise ActionFailed now if :meth:`commit` would refuse (a bound would break). Changes nothing."""
        self._check()

    # --- commit -----------------------------------------------------------------------------------------------

    def commit(self, updated_at: datetime) -> Changes:
        """Make the changes real in memory: chain and number the entries, apply account deltas, return them.

        Everything that can refuse is checked first (:meth:`_check`, raising ActionFailed); only then is the shared
        world changed, and from there on nothing may fail: a half-applied commit would tear the journal.
        """
        accounts = self._check()
        world = self.world
        entries = []
        entry_bytes = []
        sequence, previous_hash = world.journal_sequence, world.journal_hash
        make_id = world.ids.make
        for numbered in self._entries:
            # Numbered in place: the entries are this transaction's own until it returns them.
            sequence += 1
            numbered.id = make_id(KIND_ENTRY, sequence)
            numbered.sequence = sequence
            numbered.previous_hash = previous_hash
            numbered.entry_hash = ""
            # One encode serves both the hash and the store: entry_hash is the last field, so the stored JSON is
            # the canonical JSON with the empty hash filled in (entry_hash() recomputes it the long way).
            canonical = _entry_encoder.encode(numbered)
            assert canonical.endswith(_EMPTY_HASH_TAIL)
            hasher = hashlib.sha256(previous_hash.encode())
            hasher.update(canonical)
            digest = hasher.hexdigest()
            numbered.entry_hash = digest
            check_entry(numbered)
            previous_hash = digest
            entries.append(numbered)
            entry_bytes.append(b"".join((canonical[:-2], digest.encode(), b'"}')))  # fill in the empty ""
        state_changes = _numbered_state_changes(self, updated_at) if self._state_notes else []
        # Publish: from here on nothing can fail.
        world.journal_sequence, world.journal_hash = sequence, previous_hash
        if state_changes:
            world.state_sequence = state_changes[-1][1]
        world.accounts.update(accounts)
        for state in self._participants.values():
            if state.id in self._originals:
                state.updated_at = updated_at
        report_ops = _record_reports(self, entries)
        return Changes(
            participants=list(self._participants.values()),
            lots=list(self._lots.values()),
            entries=entries,
            accounts=accounts,
            schedule=list(self._schedule),
            entry_bytes=entry_bytes,
            state_changes=state_changes,
            report_ops=report_ops,
        )

    def _check(self) -> dict[str, int]:
        """Refuse (ActionFailed) what would break a bound; return the new account balances. Changes nothing."""
        accounts = {}
        for key, delta in self._account_deltas.items():
            balance = self.world.accounts.get(key, 0) + delta
            if abs(balance) > AMOUNT_MINOR_MAX:
                raise ActionFailed(f"account {key} would leave the supported range of amounts")
            assert not key.startswith("PROGRAM:") or balance >= 0, f"wallet {key} would go negative"
            accounts[key] = balance
        for state in self._participants.values():
            for asset_id, values in state.balances.items():
                if max(values) > AMOUNT_MINOR_MAX or min(values) < -AMOUNT_MINOR_MAX:
                    raise ActionFailed(f"a balance of asset {asset_id} would leave the supported range of amounts")
            check_lot_balances(state)
        return accounts

    def participants(self) -> list[ParticipantState]:
        """The working copies this transaction touched (new participants included)."""
        return list(self._participants.values())


def _record_reports(tx: LedgerTx, entries: list[JournalEntry]) -> list[tuple[str, bytes, bytes | None]]:
    """Advance the world's report totals by what ``tx`` commits (report_totals.py); their new values to write."""
    report_ops: list[tuple[str, bytes, bytes | None]] = []
    reports = tx.world.reports
    reports.record_entries(entries, report_ops)
    reports.record_participants(tx._participants.values(), tx._originals, report_ops, tx._crossed_zero)
    reports.record_lots(tx._lots.values(), tx._originals, report_ops)
    return report_ops


def _post_to_participant(tx: LedgerTx, participant_id: str, asset_id: str, bucket: str, amount_minor: int) -> None:
    """Apply one leg of :meth:`LedgerTx.post` to a participant's working copy (bounds: ``_check``).

    A bucket that leaves or reaches zero marks the participant in ``tx._crossed_zero`` (the set is made on first
    use): only such a participant can have changed the set of assets it holds, so only it is re-checked for the
    reports' holder counts (report_totals.record_participants). A rollback keeps the marks: a stale one costs one
    check, never a wrong count.
    """
    values = tx._participants[participant_id].balance(asset_id)
    index = _BUCKET_INDEX[bucket]
    before = values[index]
    values[index] = after = before + amount_minor
    if not before or not after:
        if tx._crossed_zero is None:
            tx._crossed_zero = set()
        tx._crossed_zero.add(participant_id)


def credit_remote(
    tx: LedgerTx,
    target: RemoteTarget,
    asset: Asset,
    amount_minor: int,
    *,
    program_id: str,
    rule_id: str,
    description: str | None,
    expires_at: datetime | None,
    matures_at: datetime | None,
) -> None:
    """A rule's credit to a participant of another partition: its value leaves the source (the issuance, or the
    program wallet, which must cover it) for that partition's transit account in a CREDIT entry of ``tx``, and a
    :class:`RemoteCredit` carries it on (the destination opens the lot with these dates). A function, not a
    method: LedgerTx stays under its 500 lines."""
    assert amount_minor > 0
    source = tx.source_leg(asset, program_id, amount_minor)
    transit = ("SYSTEM", transit_account(target.partition), asset.id, "AVAILABLE", amount_minor)
    tx.post("CREDIT", [source, transit], rule_id=rule_id, description=description)
    tx.remote_credits.append(
        RemoteCredit(
            target=target, asset_id=asset.id, amount_minor=amount_minor, program_id=program_id, rule_id=rule_id,
            description=description, expires_at=expires_at, matures_at=matures_at, entry=tx._entries[-1],
        )
    )  # fmt: skip


def entry_count(tx: LedgerTx) -> int:
    """How many entries ``tx`` has posted so far (a mark for :func:`entries_since`). A function, not a method:
    LedgerTx stays under its 500 lines."""
    return len(tx._entries)


def entries_since(tx: LedgerTx, mark: int) -> list[JournalEntry]:
    """The entries ``tx`` posted after ``mark`` (an :func:`entry_count`): what one rule posted, for its budgets."""
    return tx._entries[mark:]


def schedule_at(tx: LedgerTx, due: datetime, item_id: str, participant_id: str) -> None:
    """Put ``item_id`` of a participant on the durable schedule the sweep wakes for, with ``tx``'s other changes
    (a lot's expiry goes there through :meth:`LedgerTx.add_lot`; a tier deadline is ``tier/{program}/{key}``)."""
    tx._schedule.append((due, item_id, participant_id))


class _Savepoint(msgspec.Struct, kw_only=True):
    """What a :class:`LedgerTx` held at :meth:`LedgerTx.savepoint` (working copies as clones, counts of the rest)."""

    counter: int
    participants: dict[str, ParticipantState]
    originals: dict[str, ParticipantState]
    account_deltas: dict[str, int]
    entries: int
    lots: dict[str, Lot]
    schedule: int
    state_notes: int
    follow_ups: int = 0
    remote_credits: int = 0


def _numbered_state_changes(tx: LedgerTx, changed_at: datetime) -> list[tuple[str, int, tuple[object, ...]]]:
    """``tx``'s noted state changes, numbered on from the world's last one (not yet published), as
    ``(participant id, sequence, stored fields)``: the record scrip_actor/_records.py writes as it is, so a change
    costs a tuple here and one small encode there (the public StateChange is built only when it is read)."""
    sequence = tx.world.state_sequence
    event_id, program_id = tx.event_id, tx.program_id
    event_timestamp = tx.now if event_id is not None else None
    numbered = []
    for participant_id, state_type, key, operation, old, new, source, rule_id in tx._state_notes:
        sequence += 1
        by_rule = source == "rule"
        fields = (state_type, key, operation, old, new, source, rule_id, event_id if by_rule else None, program_id)
        numbered.append((participant_id, sequence, (*fields, event_timestamp if by_rule else None, changed_at)))
    return numbered


def _lot_order(lot: Lot) -> tuple[datetime, int]:
    """FIFO: oldest credit first (by its event time), then by lot number."""
    return (lot.created_at, lot.number)


def check_lot_balances(state: ParticipantState) -> None:
    """Assert the lot/balance invariant of every LOT asset the participant holds, from the running sums: O(assets).

    Its pair is :func:`recount_lots` on every load (scrip_actor._records.load_participant), which rebuilds the sums
    from the lots themselves before this check runs, and ``verify``, which recomputes everything from the journal.
    """
    for asset_id in state.lots:
        values = state.balance(asset_id)
        sums = state.lot_sums.get(asset_id) or [0, 0, 0]
        owed = state.overdraft.get(asset_id, 0)
        assert values[AVAILABLE] == sums[AVAILABLE] - owed, f"lots vs available of {asset_id}"
        assert values[HELD] == sums[HELD], f"lots vs held of {asset_id}"
        assert values[DEFERRED] == sums[DEFERRED], f"lots vs deferred of {asset_id}"


def recount_lots(state: ParticipantState) -> None:
    """Rebuild ``state``'s running lot sums and due bound from its open lots (O(lots): on load, after a settle)."""
    sums: dict[str, list[int]] = {}
    due_from: datetime | None = None
    for asset_id, lots in state.lots.items():
        totals = sums[asset_id] = [0, 0, 0]
        for lot in lots:
            totals[_BUCKETS.index(lot.status)] += lot.remaining_minor
            due = _lot_due(lot)
            if due is not None and (due_from is None or due < due_from):
                due_from = due
    state.lot_sums = sums
    state.lots_due_from = due_from


def _lot_due(lot: Lot) -> datetime | None:
    """When an open lot next needs settling: its maturity while DEFERRED, its expiry, whichever comes first."""
    due = lot.expires_at
    if lot.status == "DEFERRED" and lot.matures_at is not None and (due is None or lot.matures_at < due):
        due = lot.matures_at
    return due


def _add_open_lot(participant: ParticipantState, lot: Lot) -> None:
    """Insert an open lot in FIFO order, and count it in the running sums and the due bound."""
    participant.own_lots()
    lots = participant.lots.setdefault(lot.asset_id, [])
    if lots and _lot_order(lots[-1]) > _lot_order(lot):
        bisect.insort(lots, lot, key=_lot_order)  # a back-dated credit: its place among the older lots
    else:
        lots.append(lot)  # the common case: the newest lot goes last
    participant.lot_sums.setdefault(lot.asset_id, [0, 0, 0])[_BUCKETS.index(lot.status)] += lot.remaining_minor
    due = _lot_due(lot)
    if due is not None and (participant.lots_due_from is None or due < participant.lots_due_from):
        participant.lots_due_from = due
