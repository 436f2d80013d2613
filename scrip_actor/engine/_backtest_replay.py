"""The backtest's replay: a program's recorded events stepped again, in a sandbox that is never committed.

**The same code path.** Every event goes through :func:`scrip_actor.engine._step.step_event`, the pure function
live processing calls, with the same arguments: the event as it was admitted (its attempt number as it was then,
so a participant it creates gets the same derived id), its data as CEL sees it, the rules, the program, the
participant, ``wall_now`` = the event's recorded ``processed_at`` (so lots settle as they did), the tiers and the
budgets. Only the world, the participants and the budgets are the sandbox's: a fresh :class:`World` (its own
accounts, journal head and report totals), a dict of participant states and a :class:`Budgets`. Nothing here
writes to the store or touches the engine's cache: the store is read in short read transactions (a chunk of
records each), and the sandbox is dropped with the job.

**The state at the window start** is rebuilt by deterministic replay: every earlier event of the program, oldest
first, with the rules that were in force at its inbox position (the stored rule history,
:class:`~scrip_actor._rule_sets.HistoricalRuleSets`, as recovery uses). The program wallet's own operations
(FUND, BURN) are not events; they are applied from the journal, each before the first event the live engine
processed after it. Within the window the proposed rules' effects carry forward, so a later event of the same
participant sees the state the proposed rules produced. Operators' direct changes (balance adjustments, holds,
transfers, redemptions, tag or attribute edits through the API) are not replayed; the report warns with their
count (docs/backtest.md).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import msgspec

from scrip_actor import _records
from scrip_actor._event_records import decode_stored_event
from scrip_actor._rule_sets import HistoricalRuleSets
from scrip_actor.backtest_model import Backtest
from scrip_actor.budgets import Budget, Budgets, BudgetState
from scrip_actor.engine._backtest_report import EventSide, Tally
from scrip_actor.engine._step import (
    StepLimits,
    created_participant_id,
    legacy_participant_id,
    new_participant,
    step_event,
)
from scrip_actor.ids import KIND_ENTRY, SequenceIds
from scrip_actor.ledger import Changes, ParticipantState, World, account_key
from scrip_actor.model import Event, JournalEntry, Program
from scrip_actor.rules import CompiledRule, cel_event_data
from scrip_actor.store import Store, be64
from scrip_actor.tier_effects import ProgramTiers

__all__ = ["OverBound", "ReplayPlan", "ReplaySources", "Sandbox", "replay"]

READ_CHUNK_RECORDS = 256  # records read per LMDB read transaction: no transaction outlives a chunk
STEPS_PER_YIELD = 1  # events stepped between two yields to the caller, which decides when to give trio the thread
STATE_CHANGES_COUNTED_MAX = 10_000  # state-history entries looked at per participant for the warning
_WALLET_OPERATIONS = frozenset({"FUND", "BURN"})
_SETTLEMENTS = frozenset({"EXPIRATION", "MATURITY"})  # made by the steps themselves, replayed with them
_PAUSED = " events are not processed"


class Sandbox:
    """The replay's ledger: a world, participants and budgets of its own (the step's ``lookups`` too)."""

    def __init__(self, id_prefix: int, assets: Mapping[str, Any]) -> None:
        self.world = World(SequenceIds(id_prefix))
        self.world.assets = dict(assets)
        self.states: dict[str, ParticipantState] = {}
        self._by_external: dict[str, str] = {}
        self.budgets = Budgets()
        self._budget_rules: list[CompiledRule] | None = None

    def participant(self, participant_id: str) -> ParticipantState | None:
        """The sandbox's participant with this id, or None."""
        return self.states.get(participant_id)

    def participant_by_external(self, external_id: str) -> ParticipantState | None:
        """The sandbox's participant with this external id, or None."""
        participant_id = self._by_external.get(external_id)
        return self.states.get(participant_id) if participant_id is not None else None

    def keep(self, state: ParticipantState) -> None:
        """Hold ``state`` as the participant's current state in the sandbox."""
        self.states[state.id] = state
        self._by_external[state.external_id] = state.id

    def apply(self, changes: Changes | None) -> None:
        """What a step committed, kept (the step already moved the sandbox world's accounts and head)."""
        if changes is not None:
            for state in changes.participants:
                self.keep(state)

    def apply_wallet_entry(self, entry: JournalEntry) -> None:
        """A wallet operation of the live journal (FUND, BURN): its non-participant postings, applied."""
        for posting in entry.postings:
            if posting.entity_type != "PARTICIPANT":
                key = account_key(posting.entity_type, posting.entity_id, posting.asset_id, posting.bucket)
                self.world.accounts[key] = self.world.accounts.get(key, 0) + posting.amount_minor

    def sync_budgets(self, rules: list[CompiledRule], at: datetime) -> None:
        """Budgets for ``rules`` (once per rule list): a budget whose asset and schedule are unchanged keeps its
        state (as a live rule change does), a new one starts a period at ``at``, a rule without any has none."""
        if rules is self._budget_rules:
            return
        self._budget_rules = rules
        for compiled in rules:
            rule = compiled.rule
            if not rule.budgets:
                self.budgets.by_rule.pop(rule.id, None)
                continue
            before = {budget.spec.asset_id: budget for budget in self.budgets.by_rule.get(rule.id, [])}
            fresh = []
            for spec in rule.budgets:
                asset = self.world.assets[spec.asset_id]
                old = before.get(spec.asset_id)
                placeholder = BudgetState(
                    rule_id=rule.id,
                    asset_id=spec.asset_id,
                    consumed_minor=0,
                    period_start_sequence=self.world.journal_sequence + 1,
                    period_started_at=at,
                    next_reset_at=None,
                )
                budget = Budget(spec, asset, placeholder)
                if old is not None and _schedule(old) == _schedule(budget):
                    budget.state = old.state
                else:
                    budget.state = msgspec.structs.replace(placeholder, next_reset_at=budget.next_reset_after(at))
                fresh.append(budget)
            self.budgets.by_rule[rule.id] = fresh


def _schedule(budget: Budget) -> tuple[str | None, str | None, str | None]:
    spec = budget.spec
    return spec.schedule_type, spec.cron_expression, spec.interval


@dataclass(frozen=True, slots=True)
class ReplaySources:
    """What the replay reads: the store (read-only), the engine's event decoder, the live world (assets and the id
    prefix only), the step's limits and the tier definitions."""

    store: Store
    id_prefix: int  # the store's id prefix: the sandbox's entry ids look like the live ones
    stored_event: Callable[[int, bytes], Event | None]
    world: World
    step_limits: StepLimits
    tiers: Callable[[], Mapping[str, ProgramTiers]]
    rule_history: Callable[[], HistoricalRuleSets]  # every stored rule version, read afresh for each run


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """One backtest's inputs, checked: the program, the window, the proposed rules (None: the current ones,
    compiled by the caller as well), and the bound on window events."""

    program: Program
    from_: datetime
    to: datetime
    rules: list[CompiledRule]
    events_max: int


class _Wallet:
    """The program wallet's FUND/BURN entries of the live journal, applied in the order the live engine saw them."""

    def __init__(self, entries: list[JournalEntry]) -> None:
        self._entries = sorted(entries, key=lambda entry: entry.sequence)
        self._next = 0

    def before(self, sandbox: Sandbox, event: Event, first_entry_sequence: int | None) -> None:
        """Apply every wallet entry the live engine made before it processed ``event``: by journal position when
        the event made entries, else by time (the wallet operation's commit before the event's processing)."""
        while self._next < len(self._entries):
            entry = self._entries[self._next]
            if first_entry_sequence is not None:
                if entry.sequence > first_entry_sequence:
                    return
            elif event.processed_at is None or entry.created_at >= event.processed_at:
                return
            sandbox.apply_wallet_entry(entry)
            self._next += 1


def scan_program_journal(store: Store, program_id: str, wallet: list[JournalEntry]) -> Generator[None, None, int]:
    """Collect into ``wallet`` the program wallet's FUND/BURN entries; yields after every chunk read, and returns
    how many operator entries of the program (adjustments, holds, ...) no replay repeats."""
    operations = 0
    needle = f'"program_id":"{program_id}"'.encode()
    for index, raw in enumerate(_chunked_values(store, "journal"), 1):
        if index % READ_CHUNK_RECORDS == 0:
            yield
        if b'"event_id":null' not in raw or needle not in raw:
            continue  # an event's entry (replayed with its event), or another program's
        entry = _records.decode_entry(raw)
        if entry.action_type in _WALLET_OPERATIONS:
            wallet.append(entry)
        elif entry.action_type not in _SETTLEMENTS:
            operations += 1
    return operations


def _chunked_values(store: Store, db: str) -> Iterator[bytes]:
    """Every value of ``db`` in key order, read :data:`READ_CHUNK_RECORDS` per read transaction."""
    for _, raw in _chunked(store, db):
        yield raw


def _chunked(store: Store, db: str) -> Iterator[tuple[bytes, bytes]]:
    start: bytes | None = None
    while True:
        scan = store.scan(db, start=start)
        chunk = list(islice(scan, READ_CHUNK_RECORDS))
        scan.close()  # ends the read transaction before the caller does anything else
        yield from chunk
        if len(chunk) < READ_CHUNK_RECORDS:
            return
        start = chunk[-1][0]


def replay(sources: ReplaySources, plan: ReplayPlan, job: Backtest, tally: Tally) -> Generator[None, None, None]:
    """Replay the program's history up to ``plan.to`` into a new sandbox, counting the window into ``tally`` and
    the progress into ``job``; yields every :data:`STEPS_PER_YIELD` events (the caller may stop there)."""
    program = plan.program
    sandbox = Sandbox(sources.id_prefix, sources.world.assets)
    wallet_entries: list[JournalEntry] = []
    operations = yield from scan_program_journal(sources.store, program.id, wallet_entries)
    if operations:
        job.warnings.append(
            f"{operations} balance operations of operators (adjustments, holds, transfers, redemptions) are in the "
            "journal of this program; a backtest does not replay them, so balances that depend on them may differ"
        )
    wallet = _Wallet(wallet_entries)
    history = sources.rule_history()
    yield  # once before the first event: a run cancelled as it starts stops here
    stepped = 0
    for scanned, (sequence_key, raw) in enumerate(_chunked(sources.store, "events"), 1):
        if scanned % READ_CHUNK_RECORDS == 0:
            yield  # also while passing other programs' events
        admitted = decode_stored_event(raw)  # cheap: the event's data stays raw bytes
        if admitted.created_at >= plan.to:
            break  # receipt time rises with the sequence: both are assigned together at admission
        if admitted.program_id != program.id:
            continue
        event = sources.stored_event(int.from_bytes(sequence_key, "big"), raw)
        assert event is not None
        in_window = admitted.created_at >= plan.from_
        if event.status not in ("COMPLETED", "FAILED") or (event.error_message or "").endswith(_PAUSED):
            job.events_skipped += in_window
            continue
        if in_window and job.events_replayed >= plan.events_max:
            raise OverBound(f"the window holds more than events_max = {plan.events_max} events")
        rules = plan.rules if in_window else history.at(program.id, event.sequence)
        live_entries = [_live_entry(sources, entry_id) for entry_id in event.journal_entry_ids]
        wallet.before(sandbox, event, min((entry.sequence for entry in live_entries), default=None))
        proposed = _step(sources, sandbox, program, event, admitted.participant_id, rules)
        if in_window:
            actual = EventSide(live_entries, list(event.rule_evaluations), event.error_message, program.id)
            tally.add(event, proposed, actual)
            job.events_replayed += 1
        else:
            job.events_warmup += 1
        job.replayed_to = admitted.created_at
        stepped += 1
        if stepped % STEPS_PER_YIELD == 0:
            yield
    edits = yield from _api_state_changes(sources, list(sandbox.states), plan.to)
    if edits:
        job.warnings.append(
            f"{edits} changes of tags, counters, attributes or tiers were made through the API to this program's "
            "participants before the window ended; a backtest does not replay them, so rules that read them may differ"
        )


def _api_state_changes(sources: ReplaySources, participant_ids: list[str], to: datetime) -> Generator[None, None, int]:
    """How many state-history entries of these participants an operator made (``source: api``) before ``to``."""
    edits = 0
    for index, participant_id in enumerate(participant_ids, 1):
        if index % READ_CHUNK_RECORDS == 0:
            yield
        scan = sources.store.scan("state_history", participant_id.encode() + b"\0")
        for key, raw in islice(scan, STATE_CHANGES_COUNTED_MAX):
            change = _records.decode_state_change(key, raw, sources.world.ids)
            edits += change.source == "api" and change.changed_at < to
        scan.close()
    return edits


class OverBound(Exception):
    """The window holds more events than the run may replay (the job ends FAILED with its partial counts)."""


def _live_entry(sources: ReplaySources, entry_id: str) -> JournalEntry:
    sequence = sources.world.ids.sequence(KIND_ENTRY, entry_id)
    assert sequence is not None
    raw = sources.store.get_raw("journal", be64(sequence))
    assert raw is not None, f"journal entry {entry_id} of a processed event is missing"
    return _records.decode_entry(raw)


def _step(
    sources: ReplaySources,
    sandbox: Sandbox,
    program: Program,
    event: Event,
    admitted_participant_id: str | None,
    rules: list[CompiledRule],
) -> EventSide:
    """Step ``event`` in the sandbox as live processing did (see the module docstring); its proposed side."""
    attempt = max(event.attempts - 1, 0)  # the step saw the attempts made before it
    replayed = msgspec.structs.replace(
        event, participant_id=admitted_participant_id, attempts=attempt, rule_evaluations=[], journal_entry_ids=[]
    )
    live_id = event.participant_id
    state = sandbox.participant(live_id) if live_id is not None else None
    if state is None and admitted_participant_id is None:
        state = sandbox.participant_by_external(event.external_id)
    if state is None and live_id is not None:
        derived = (
            created_participant_id(event.id, attempt, event.external_id),
            legacy_participant_id(event.id, attempt, event.external_id),
        )
        if live_id not in derived:  # created before (through the API, or by another program's event): seed it empty
            state = new_participant(event.external_id, event.created_at, live_id)
            sandbox.keep(state)
    wall_now = event.processed_at or event.created_at
    sandbox.sync_budgets(rules, event.created_at)
    result = step_event(
        replayed,
        cel_event_data(event.event_data),
        rules,
        msgspec.structs.replace(program, status="ACTIVE"),
        state,
        world=sandbox.world,
        limits=sources.step_limits,
        lookups=sandbox,
        wall_now=wall_now,
        tiers=sources.tiers(),
        budgets=sandbox.budgets,
    )
    sandbox.apply(result.changes)
    entries = result.changes.entries if result.changes is not None else []
    return EventSide(entries, result.evaluations, result.failure, program.id)
