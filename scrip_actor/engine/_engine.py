"""The embedded engine: one object that owns the store, the writer, the actors and the sweeper.

Use it through :func:`open_engine`::

    async with open_engine("./data") as engine:
        program = await engine.create_program(ProgramCreate(name="Rewards"))
        ...

Every method that changes something returns only once the change is durable (committed to LMDB, fsync'd when
``storage.sync`` is on). Events are the exception by design: :meth:`Engine.submit` returns once the event itself is
durable, and the event is then processed in the background, strictly in submission order per participant.

What is not the hot path lives in stages of its own, each built by :meth:`Engine._build_stages` with exactly its
collaborators: the catalog of programs, assets and rules (``_catalog``), program wallets (``_wallets``), operators'
participant edits (``_participant_admin``) and the read side (``_queries``). The engine's public methods for them
are one-line delegations; the stages never hold the engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import trio

from scrip_actor import _event_records, _records
from scrip_actor._rule_sets import HistoricalRuleSets
from scrip_actor.actors import ActorRegistry, ActorStatistics
from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.budgets import BudgetShort
from scrip_actor.config import Config
from scrip_actor.engine._activity import Activity
from scrip_actor.engine._admission import Admission, pending_positions
from scrip_actor.engine._automation_runs import AutomationRunner
from scrip_actor.engine._automations import Automations
from scrip_actor.engine._backtest_process import run_in_process
from scrip_actor.engine._backtest_replay import ReplaySources
from scrip_actor.engine._backtests import Backtests
from scrip_actor.engine._budgets import RuleBudgets
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._catalog import expression_compiler as _expression_compiler
from scrip_actor.engine._lot_schedule import LotSchedule
from scrip_actor.engine._messages import Process, Sweep
from scrip_actor.engine._operations import Operations
from scrip_actor.engine._participant_admin import ParticipantAdmin
from scrip_actor.engine._participant_cache import ParticipantCache
from scrip_actor.engine._publish import Publisher
from scrip_actor.engine._queries import Queries
from scrip_actor.engine._redemptions import Redemptions
from scrip_actor.engine._reports import Reports
from scrip_actor.engine._rewards import Rewards
from scrip_actor.engine._rule_set_registry import RuleSetRegistry
from scrip_actor.engine._state_history import StateHistory
from scrip_actor.engine._step import StepLimits, step_event, step_sweep
from scrip_actor.engine._tiers import Tiers
from scrip_actor.engine._transfers import Transfers
from scrip_actor.engine._wallets import Wallets
from scrip_actor.errors import (
    Conflict,
    ScripError,
)
from scrip_actor.ids import SequenceIds
from scrip_actor.ledger import ParticipantState, WalletShort, World
from scrip_actor.model import (
    AdjustResult,
    Asset,
    AssetCreate,
    AssetUpdate,
    Balance,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    Event,
    EventSubmit,
    JournalEntry,
    Lot,
    Page,
    Participant,
    ParticipantCreate,
    ParticipantUpdate,
    Program,
    ProgramCreate,
    ProgramUpdate,
    Rule,
    RuleBudget,
    RuleCreate,
    RuleUpdate,
    WalletBalance,
    WalletOperationResult,
)
from scrip_actor.rules import (
    CompiledRule,
)
from scrip_actor.store import (
    Op,
    Store,
    Writer,
    be64,
    unbe64,
)
from scrip_actor.verify import VerifyReport, verify_store
from scrip_actor.webhooks import Outbox, Webhooks

__all__ = ["Engine", "EngineStatistics", "open_engine"]

if not __debug__:  # pragma: no cover - guarded at import so it can never run silently
    raise RuntimeError("scrip-actor relies on assertions for its invariants; do not run it with python -O")

_log = logging.getLogger("scrip_actor.engine")


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _never_hold(_actor: str, _event: Event, _short: WalletShort | BudgetShort) -> object:
    """The embedded engine's answer to a step short of a wallet or a budget: never hold (the credit fails, the
    budgeted match is skipped). Partitioned mode's hook (``Engine.on_short_hold``) answers HOLD, AGAIN or None."""
    return None


class EngineStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine is doing, for metrics and tests."""

    events_inflight: int
    events_inflight_peak: int
    events_accepted: int
    events_completed: int
    events_failed: int
    idempotent_replays: int
    idempotency_conflicts: int
    participants_cached: int
    participants_cached_peak: int
    passivations: int
    journal_sequence: int
    actors: ActorStatistics
    writer_records_durable: int
    writer_commits: int
    writer_batch_records_peak: int
    # Added for operators and benchmarks: the writer's backlog and timing, queue depth now, and refusals.
    writer_records_appended: int = 0
    writer_commit_seconds_last: float = 0.0
    writer_commit_seconds_peak: float = 0.0
    writer_commit_seconds_total: float = 0.0
    messages_queued: int = 0
    events_refused_overload: int = 0
    writer_map_trims: int = 0  # times LMDB's map was dropped from this process's RSS (storage.lmdb_map_resident_max_mb)
    writer_map_trim_seconds_total: float = 0.0
    events_inflight_bytes: int = 0  # event_data bytes of the events in flight (engine.inflight_event_bytes_max)


class Engine:
    """The engine. Create it with :func:`open_engine`, not directly."""

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self._limits = config.limits
        self._clock = clock or _now_utc
        storage = config.storage
        self._store = Store(
            storage.data_dir,
            map_size_bytes=storage.lmdb_map_size_bytes,
            sync=storage.sync,
            max_readers=storage.max_readers,
        )
        self._writer = Writer(
            self._store,
            batch_records_max=config.engine.commit_batch_records_max,
            map_resident_max_mb=config.storage.lmdb_map_resident_max_mb,
        )
        self._writer.on_commit = self._after_commit
        self.on_commit: Callable[[int, float], None] | None = None  # metrics hook: (records, seconds)
        self._ids = SequenceIds(self._store.id_prefix)
        self._cel_compiler = _expression_compiler(config.engine.cel_backend)
        self._world = World(self._ids)
        self._programs: dict[str, Program] = {}
        self._rules: dict[str, Rule] = {}
        self._compiled: dict[str, list[CompiledRule]] = {}  # program id -> active rules by order
        self._registry: ActorRegistry | None = None
        self._cache = ParticipantCache(
            self._store,
            self._writer,
            config.engine.actors_resident_max,
            lambda key: self._registry is not None and self._registry.is_busy(key),
        )
        self._participants = self._cache.states
        self._external_ids = self._cache.external_ids
        self._events_live: dict[str, Event] = {}
        self._schedule, self._rule_sets = LotSchedule(), RuleSetRegistry()
        self._outbox = Outbox(self._clock, config.webhooks.attempts_max)
        self._publisher = Publisher(
            self._writer, self._world, self._cache, self._schedule, self._rule_sets, self._outbox
        )
        limits = config.limits
        self._step_limits = StepLimits(
            cel_cost_per_event_max=limits.cel_cost_per_event_max,
            external_id_length_max=limits.external_id_length_max,
            tags_per_participant_max=limits.tags_per_participant_max,
            counters_per_participant_max=limits.counters_per_participant_max,
            attributes_per_participant_max=limits.attributes_per_participant_max,
        )
        self._counts = {"completed": 0, "failed": 0}
        self._build_stages()  # the stages off the hot path: programs, assets, rules, wallets, participants, reads
        self._build_tiers()  # engine.tiers, after the stages it is given
        # Observation hooks (metrics, benchmarks). They run synchronously on the engine's thread and must be cheap
        # and must not raise: an exception here is a bug and stops the engine.
        self.on_event_processed: Callable[[Event], None] | None = None  # an event's outcome is durable
        self.on_short_hold: Callable[[str, Event, WalletShort | BudgetShort], object] = _never_hold
        try:
            self._recover()
        except BaseException:
            self._store.close()  # give the data directory up: open_engine never got an engine to close
            raise

    # ==========================================================================================================
    # lifecycle
    # ==========================================================================================================

    def _recover(self) -> None:
        """Load programs, assets, rules, accounts and the journal head; find events still to process."""
        store = self._store
        self._catalog.load()
        self.rewards.load()
        self.tiers.load()
        self.automations.load()
        _records.load_world(store, self._world)
        self._rule_budgets.load(self._catalog.rules)  # after the journal head: a missing state counts from it
        # Inbox positions and event sequences share one counter (a retry takes a new position).
        last_event = next(store.scan("events", reverse=True), None)
        last_position = next(store.scan("inbox_pending", reverse=True), None)
        self._admission.inbox_sequence = max(unbe64(last[0]) if last else 0 for last in (last_event, last_position))
        self._schedule.load(store)
        self._rule_sets.load(store)
        self.webhooks.load()

    def _start(self, nursery: trio.Nursery) -> None:
        """Start actors and the sweeper; re-deliver events accepted before a restart, in their original order."""
        self._registry = ActorRegistry(self._step)
        nursery.start_soon(self._registry.run)
        history: HistoricalRuleSets | None = None
        self._admission.processed_below_written, pending = pending_positions(self._store)
        for position, sequence in pending:
            event = self._stored_event(sequence)
            assert event is not None, f"pending event #{sequence} has no record"
            assert event.sequence == sequence
            assert event.status == "PENDING", f"pending event #{sequence} is {event.status}"
            if history is None:  # only a store with queued events pays for reading the rule history
                history = self._rule_history()
            rules = (
                self._compiled.get(event.program_id, [])
                if history.is_current(event.program_id, position)
                else history.at(event.program_id, position)
            )
            self._admission.redeliver(event, position, rules)
        nursery.start_soon(self._schedule.run, self.sweep_due, self.config.engine.sweep_interval_s)
        nursery.start_soon(self.automation_runs.run)
        nursery.start_soon(self.webhooks.run)  # the delivery worker (scrip_actor/webhooks/_service.py)
        self.backtests.nursery = nursery  # backtest runs are tasks of the engine's workers (engine/_backtests.py)

    # ==========================================================================================================
    # helpers
    # ==========================================================================================================

    async def _caught_up(self) -> None:
        """Wait until everything appended so far is on disk (read-your-writes for store queries)."""
        await self._writer.wait_durable(self._writer.statistics().records_appended)

    def _build_stages(self) -> None:
        """Build the stages off the hot path, each given exactly its collaborators (never the engine itself).

        The hot path reads the catalog's objects under their old names (``_programs``, ``_rules``, ``_compiled``,
        ``_cel_compiler``): rebound to the very same objects, not copies (``__init__``'s empty dicts are dropped).
        """
        self._catalog = Catalog(
            store=self._store,
            writer=self._writer,
            world=self._world,
            limits=self._limits,
            clock=self._clock,
            cel_backend=self.config.engine.cel_backend,
            inbox_sequence=lambda: self._admission.inbox_sequence,
        )
        self._programs = self._catalog.programs
        self._rules = self._catalog.rules
        self._build_budgets()
        self._compiled = self._catalog.compiled
        self._cel_compiler = self._catalog.cel_compiler
        self._wallets = Wallets(
            catalog=self._catalog,
            world=self._world,
            clock=self._clock,
            writer=self._writer,
            publish=self._publisher.publish,
        )
        self._participant_admin = ParticipantAdmin(
            world=self._world,
            limits=self._limits,
            clock=self._clock,
            writer=self._writer,
            catalog=self._catalog,
            participant=self._participant,
            participant_by_external=self._participant_by_external,
            external_ids=self._external_ids,
            publish=self._publisher.publish_edit,
        )
        self._admission = Admission(
            store=self._store,
            writer=self._writer,
            ids=self._ids,
            clock=self._clock,
            limits=self._limits,
            settings=self.config.engine,
            catalog=self._catalog,
            cache=self._cache,
            events_live=self._events_live,
            event_by_sequence=self._event_by_sequence,
            deliver=self._deliver,
            reports=self._world.reports,
        )
        self._queries = Queries(
            store=self._store,
            world=self._world,
            limits=self._limits,
            catalog=self._catalog,
            events_live=self._events_live,
            event_by_sequence=self._event_by_sequence,
            participant=self._participant,
            participant_by_external=self._participant_by_external,
            caught_up=self._caught_up,
            clock=self._clock,
        )
        ledger = {"catalog": self._catalog, "world": self._world, "cache": self._cache, "store": self._store}
        self._operations = Operations(**ledger, publisher=self._publisher, deliver=self._deliver, clock=self._clock)
        self._build_faces()

    def _build_faces(self) -> None:
        """The embedded faces of the stages built on operations and reads: ``engine.rewards.create(...)``,
        ``engine.redemptions...``, ``engine.state_history.list_for(...)`` (called by :meth:`_build_stages`)."""
        stages = {"catalog": self._catalog, "store": self._store}
        self.rewards = Rewards(**stages, writer=self._writer, clock=self._clock, limits=self._limits)
        self.redemptions = Redemptions(**stages, writer=self._writer, operations=self._operations, rewards=self.rewards)
        self.transfers = Transfers(catalog=self._catalog, cache=self._cache, operations=self._operations)
        self.state_history = StateHistory(self._store, self._world.ids)
        self.webhooks = Webhooks(self._store, self._writer, self._outbox, self._clock, self.config.webhooks)
        reads = {"store": self._store, "event_by_sequence": self._event_by_sequence, "caught_up": self._caught_up}
        self.activity = Activity(**reads, queries=self._queries, ids=self._world.ids)  # balance operations, events
        self.reports = Reports(
            **stages, world=self._world, rewards=self.rewards, caught_up=self._caught_up, tier_count=self._tier_count
        )
        self.automations, self.automation_runs = _automation_stages(self)  # docs/automations.md
        self.backtests = _backtest_stage(self)  # docs/backtest.md

    def _tier_count(self, program_id: str) -> int:
        return sum(tier.status == "ACTIVE" for tier in self.tiers.by_program.get(program_id, {}).values())

    def _build_tiers(self) -> None:
        """``engine.tiers``: tier definitions and the manual tier state of participants (engine/_tiers.py)."""
        self.tiers = Tiers(
            catalog=self._catalog,
            store=self._store,
            writer=self._writer,
            clock=self._clock,
            limits=self._limits,
            world=self._world,
            participant=self._participant,
            publish=self._publisher.publish,
        )

    def _build_budgets(self) -> None:
        """The rules' budgets: shared state the steps consume, kept in step with the catalog's rules."""
        self._rule_budgets = RuleBudgets(store=self._store, writer=self._writer, world=self._world, clock=self._clock)
        self._budgets = self._rule_budgets.registry
        self._catalog.on_rule_stored = self._rule_budgets.rule_stored

    def _program(self, program_id: str) -> Program:
        return self._catalog.program(program_id)

    def _asset(self, asset_id: str) -> Asset:
        return self._catalog.asset(asset_id)

    def _recompile(self, program_id: str) -> None:
        self._catalog.recompile(program_id)

    def _rule_history(self) -> HistoricalRuleSets:
        """Every stored rule version, to find the rules in force at a re-delivered event's position."""
        return self._catalog.rule_history_sets()

    def _compiled_rules(self, program_id: str, assets: dict[str, Asset]) -> list[CompiledRule]:
        """A program's ACTIVE rules, compiled leniently, by order (see :meth:`Catalog.compiled_rules`)."""
        return self._catalog.compiled_rules(program_id, assets)

    # --- participant cache and the publish sink ---------------------------------------------------------------

    @property
    def on_entries(self) -> Callable[[list[JournalEntry]], None] | None:
        """Observation hook (metrics): journal entries just committed to memory. Cheap, and must not raise."""
        return self._publisher.on_entries

    @on_entries.setter
    def on_entries(self, hook: Callable[[list[JournalEntry]], None] | None) -> None:
        self._publisher.on_entries = hook

    def _after_commit(self, records: int, elapsed_s: float) -> None:
        """After each group commit: states just made durable may now be passivated."""
        self._cache.passivate()
        self.webhooks.after_commit()
        if self.on_commit is not None:
            self.on_commit(records, elapsed_s)

    def _deliver(self, external_id: str, message: Any) -> None:
        """Put ``message`` in the mailbox of the actor ``external_id`` (the registry exists once started)."""
        assert self._registry is not None, "events are admitted only once the engine has started"
        self._registry.deliver(external_id, message)

    def _participant(self, participant_id: str) -> ParticipantState | None:
        return self._cache.get(participant_id)

    def _participant_by_external(self, external_id: str) -> ParticipantState | None:
        return self._cache.by_external(external_id)

    # ==========================================================================================================
    # events
    # ==========================================================================================================

    def event_data_for_cel(self, event_data: Any, field: str = "event_data") -> Any:
        """Check event data against the limits (a JSON object, size, depth) and return it as CEL sees it.

        Raises:
            ValidationFailed: not an object, not JSON, too large, or nested too deeply.
        """
        return self._admission.event_data_for_cel(event_data, field)

    def _accept(self, request: EventSubmit) -> tuple[Event, bool]:
        """Admit one event synchronously: (event, is_new); see :meth:`Admission.accept`."""
        return self._admission.accept(request)

    @property
    def on_event_accepted(self) -> Callable[[Event], None] | None:
        """Observation hook (metrics): a new event was admitted. Cheap, and must not raise."""
        return self._admission.on_event_accepted

    @on_event_accepted.setter
    def on_event_accepted(self, hook: Callable[[Event], None] | None) -> None:
        self._admission.on_event_accepted = hook

    async def submit(self, request: EventSubmit) -> Event:
        """Accept an event; return once it is durable. Processing continues in the background.

        The same ``(program_id, idempotency_key)`` with the same payload (JSON key order, whitespace and
        ``105`` vs ``105.0`` ignored) returns the original event; a different payload raises IdempotencyConflict.

        Returns:
            A snapshot of the event (status ``PENDING`` for a new one; the current status for a replay).

        Raises:
            ValidationFailed, NotFound (unknown program), IdempotencyConflict, Overloaded (queues full).
        """
        event, _ = self._accept(request)
        snapshot = msgspec.structs.replace(event, rule_evaluations=list(event.rule_evaluations))
        await self._caught_up()
        return snapshot

    async def submit_batch(self, requests: list[EventSubmit]) -> list[Event | ScripError]:
        """Accept many events with one durability wait; each item is judged on its own, results in input order."""
        results: list[Event | ScripError] = []
        for request in requests:
            try:
                event, _ = self._accept(request)
                results.append(msgspec.structs.replace(event))
            except ScripError as error:
                # Without its traceback: the traceback's frame holds ``results``, which holds the error, a cycle
                # only the cyclic GC frees. Measured: an overloaded 200k-event run left ~240k such objects and
                # ~200 MB of RSS behind (bench.scale, tuned GC).
                results.append(error.with_traceback(None))
        await self._caught_up()
        return results

    def _event_by_sequence(self, sequence: int) -> Event | None:
        event = self._stored_event(sequence)
        if event is None:
            return None
        assert event.sequence == sequence
        return self._events_live.get(event.id, event)

    def _stored_event(self, sequence: int, raw: bytes | None = None) -> Event | None:
        """An event as the store has it: its admitted record and its outcome, if any (``raw``: the first, read)."""
        key = be64(sequence)
        raw = raw if raw is not None else self._store.get_raw("events", key)
        if raw is None:
            return None
        outcome = self._store.get_raw("event_outcomes", key)
        return _event_records.decode_event(sequence, raw, outcome, self._ids, self._rule_sets.members)

    async def retry_event(self, event_id: str) -> Event:
        """Process a FAILED event again, from scratch, against the current state; return once queued durably.

        Processing is deterministic, so a retry only helps once the cause is fixed (a wallet funded, a participant
        re-activated, a rule corrected). The event keeps its id, sequence and payload; it goes to the back of its
        participant's mailbox. A FAILED event left no effects, so processing it again cannot apply anything twice.

        Raises:
            NotFound: no such event. Conflict: the event is not FAILED. Overloaded: the queues are full.
        """
        event = await self.get_event(event_id)
        if event.status != "FAILED":
            raise Conflict(f"only FAILED events can be retried; this one is {event.status}", {"status": event.status})
        snapshot, ticket = self._admission.readmit(event)
        await self._writer.wait_durable(ticket)
        return snapshot

    async def get_event(self, event_id: str) -> Event:
        """An event with its outcome (rule evaluations, journal entry ids, error)."""
        return await self._queries.get_event(event_id)

    async def wait_idle(self) -> None:
        """Wait until every accepted event is processed and every change is durable."""
        assert self._registry is not None
        while True:
            await self._registry.wait_idle()
            await self._caught_up()
            if not self._events_live and self._registry.statistics().actors_live == 0:
                return
            await trio.sleep(0.001)

    async def list_events(self, **filters: Any) -> Page:
        """Events, newest first, filtered (:meth:`Queries.list_events` names the filters, the indexes behind
        them and the bound on one call's scan); ``cursor`` from the previous page."""
        return await self._queries.list_events(**filters)

    # --- the step ---------------------------------------------------------------------------------------------

    def _step(self, external_id: str, message: Any) -> object:
        """One synchronous, await-free step of a participant actor: the pure step, then publish (or HOLD) its result."""
        if not isinstance(message, Process):
            (self._step_sweep if isinstance(message, Sweep) else self._operations.step)(message)
            return
        event = message.event
        wall_now = self._clock()
        if event.participant_id is not None:  # bound at admission (or by an earlier attempt): by id, never by name
            state = self._cache.get(event.participant_id)
        else:
            state = self._cache.by_external(event.external_id)
        result = step_event(
            event,
            message.cel_data,
            message.rules,
            self._programs.get(event.program_id),
            state,
            world=self._world,
            limits=self._step_limits,
            lookups=self._cache,
            wall_now=wall_now,
            tiers=self.tiers.by_program,
            budgets=self._budgets,
        )
        if result.held is not None and (verdict := self.on_short_hold(external_id, event, result.held)):
            return verdict  # HOLD or AGAIN (scrip_actor/actors.py)
        if result.internal_error is not None:
            _log.error("internal error while processing event %s", event.id, exc_info=result.internal_error)
        failure = result.failure
        event.status = "PROCESSING"
        event.participant_id = result.state.id if result.state is not None else None
        event.rule_evaluations = result.evaluations
        changes = result.changes
        event.journal_entry_ids = [entry.id for entry in changes.entries if entry.event_id] if changes else []
        event.error_message = failure
        event.processed_at = wall_now
        event.attempts += 1
        final = "FAILED" if failure else "COMPLETED"
        self._admission.release(message.data_bytes)
        self._counts["completed" if not failure else "failed"] += 1
        mark = self._admission.processed_below(event.sequence) if message.position == event.sequence else None
        self._publisher.publish_outcome(
            event, message.position, result, message.rules, lambda: self._finish_event(event, final), mark
        )

    def _finish_event(self, event: Event, final: str) -> None:
        event.status = final  # type: ignore[assignment]
        self._events_live.pop(event.id, None)
        if self.on_event_processed is not None:
            self.on_event_processed(event)

    # ==========================================================================================================
    # lots: maturity and expiry on their own
    # ==========================================================================================================

    def sweep_due(self) -> int:
        """Send every participant with a lot due by now a sweep message. Returns how many were sent.

        The sweeper calls this every ``engine.sweep_interval_s``; tests with a manual clock call it directly and
        then :meth:`wait_idle`.
        """
        assert self._registry is not None
        due = self._schedule.pop_due(int(self._clock().timestamp() * 1000))
        for participant_id, keys in due.items():
            state = self._cache.get(participant_id)
            if state is None:  # pragma: no cover - a schedule entry always has its participant
                continue
            self._registry.deliver(state.external_id, Sweep(participant_id, keys))
        return len(due)

    def _step_sweep(self, message: Sweep) -> None:
        state = self._cache.get(message.participant_id)
        assert state is not None
        fired = frozenset(key[8:].decode() for key in message.keys if key[8:13] == b"tier/")
        changes = step_sweep(state, self._world, self._clock(), self.tiers.by_program, fired)
        deletes: list[Op] = [("schedule", key, None) for key in message.keys]
        if changes is None:
            self._writer.append(deletes)
        else:
            self._publisher.publish(changes, deletes)

    # ==========================================================================================================
    # programs
    # ==========================================================================================================

    async def create_program(self, request: ProgramCreate) -> Program:
        """Create a program (status ACTIVE)."""
        return await self._catalog.create_program(request)

    async def get_program(self, program_id: str) -> Program:
        """One program."""
        return self._catalog.program(program_id)

    async def list_programs(
        self,
        *,
        include_archived: bool = False,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        **options: Any,
    ) -> Page:
        """Programs, newest first; archived ones only when asked for. ``options`` (``search``, ``sort_by``,
        ``sort_dir``): :meth:`Catalog.list_programs`."""
        return self._catalog.list_programs(
            include_archived=include_archived, status=status, limit=limit, cursor=cursor, **options
        )

    async def update_program(self, program_id: str, request: ProgramUpdate) -> Program:
        """Change a program's name, description, policy or status."""
        return await self._catalog.update_program(program_id, request)

    # ==========================================================================================================
    # assets and wallets
    # ==========================================================================================================

    async def create_asset(self, request: AssetCreate) -> Asset:
        """Create an asset and link it to ``program_id``. Symbols are unique (case-insensitive)."""
        return await self._catalog.create_asset(request)

    async def get_asset(self, asset_id: str) -> Asset:
        """One asset."""
        return self._catalog.asset(asset_id)

    async def list_assets(
        self,
        *,
        program_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        **options: Any,
    ) -> Page:
        """Assets, newest first, optionally those linked to a program; ``options``: ``search``."""
        return self._catalog.list_assets(program_id=program_id, status=status, limit=limit, cursor=cursor, **options)

    async def update_asset(self, asset_id: str, request: AssetUpdate) -> Asset:
        """Change name, status (ARCHIVED is one-way) or max_transaction_amount."""
        return await self._catalog.update_asset(asset_id, request)

    async def link_asset(self, program_id: str, asset_id: str) -> Asset:
        """Link an existing asset to another program. Linking twice is a Conflict."""
        return await self._catalog.link_asset(program_id, asset_id)

    async def fund(
        self, program_id: str, asset_id: str, amount: str, description: str | None = None
    ) -> WalletOperationResult:
        """Move ``amount`` from SYSTEM_ISSUANCE into the program's wallet of a PREFUNDED asset."""
        return await self._wallets.fund(program_id, asset_id, amount, description)

    async def burn(
        self, program_id: str, asset_id: str, amount: str, description: str | None = None
    ) -> WalletOperationResult:
        """Move ``amount`` from the program's wallet to SYSTEM_BREAKAGE. Raises InsufficientFunds below zero."""
        return await self._wallets.burn(program_id, asset_id, amount, description)

    async def wallet_balances(self, program_id: str, asset_id: str | None = None) -> list[WalletBalance]:
        """The program's wallet balance of each linked PREFUNDED asset."""
        return self._wallets.wallet_balances(program_id, asset_id)

    # ==========================================================================================================
    # rules
    # ==========================================================================================================

    async def create_rule(self, request: RuleCreate) -> Rule:
        """Create a rule; its condition and actions are validated and compiled now.

        Raises:
            ValidationFailed: invalid CEL (with line and column), unknown or unlinked asset, bad amount.
            Conflict: ``order`` already taken by an ACTIVE rule of the program.
        """
        return self._rule_budgets.live(await self._catalog.create_rule(request))

    async def update_rule(self, rule_id: str, request: RuleUpdate) -> Rule:
        """Change a rule; a new version is written to its history. Archived rules cannot change."""
        return self._rule_budgets.live(await self._catalog.update_rule(rule_id, request))

    def rule(self, rule_id: str) -> Rule:
        """One rule (synchronous lookup)."""
        return self._catalog.rule(rule_id)

    async def get_rule(self, rule_id: str) -> Rule:
        """One rule, current version, with its budgets' live ``consumed`` and ``next_reset_at``."""
        return self._rule_budgets.live(self._catalog.rule(rule_id))

    async def reset_rule_budget(self, rule_id: str, asset_id: str | None) -> RuleBudget:
        """Reset a rule's budget of one asset by hand (consumed 0, a new period from now); durable on return.

        Raises:
            NotFound: no such rule, or it has no budget of that asset.
            ValidationFailed: no ``asset_id``.
            Conflict: the rule is archived.
        """
        return await self._rule_budgets.reset(self._catalog.rule(rule_id), asset_id)

    async def list_rules(self, **filters: Any) -> Page:
        """Rules ordered by ``order`` (then creation), budgets live, filtered: ``program_id``, ``status``,
        ``include_archived``, ``search``, ``sort_by``, ``sort_dir``, ``limit``, ``cursor`` (Catalog.list_rules)."""
        page = self._catalog.list_rules(**filters)
        page.data = [self._rule_budgets.live(rule) for rule in page.data]
        return page

    async def rule_history(self, rule_id: str, *, limit: int = 20, cursor: str | None = None, **filters: Any) -> Page:
        """A rule's versions, newest first; ``filters``: ``change_type``, ``changed_from``, ``changed_to``."""
        return self._catalog.rule_history(rule_id, limit=limit, cursor=cursor, **filters)

    def validate_condition(self, condition: str) -> dict[str, Any]:
        """Check a CEL condition's syntax: ``{valid, message, details}``."""
        return self._catalog.validate_condition(condition)

    # ==========================================================================================================
    # participants
    # ==========================================================================================================

    async def create_participant(self, request: ParticipantCreate) -> tuple[Participant, bool]:
        """Create a participant, or update the one with this external_id. Returns ``(participant, created)``."""
        return await self._participant_admin.create_participant(request)

    async def get_participant(self, participant_id: str) -> Participant:
        """A participant with balances, tags, counters and attributes."""
        return await self._queries.get_participant(participant_id)

    async def get_participant_by_external_id(self, external_id: str) -> Participant:
        """A participant by the client's own id (NFC-normalised, like every external id)."""
        return await self._queries.get_participant_by_external_id(external_id)

    async def list_participants(self, **filters: Any) -> Page:
        """Participants, newest first, filtered: ``external_id``, ``program_id``, ``status``, ``search``,
        ``created_from``, ``created_to``, ``descending``, ``limit``, ``cursor`` (:meth:`Queries.list_participants`)."""
        return await self._queries.list_participants(**filters)

    async def update_participant(self, participant_id: str, request: ParticipantUpdate) -> Participant:
        """Profile fields (``""`` clears), attributes merged, tags replaced, external_id changed if free."""
        return await self._participant_admin.update_participant(participant_id, request)

    async def set_participant_status(self, participant_id: str, status: str) -> Participant:
        """ACTIVE, SUSPENDED or CLOSED. SUSPENDED and CLOSED block CREDIT, DEBIT and COUNTER."""
        return await self._participant_admin.set_participant_status(participant_id, status)

    async def add_tags(self, participant_id: str, tags: list[str]) -> Participant:
        """Add tags (lowercased); existing ones are kept."""
        return await self._participant_admin.add_tags(participant_id, tags)

    async def remove_tag(self, participant_id: str, tag: str) -> Participant:
        """Remove a tag; absent is fine."""
        return await self._participant_admin.remove_tag(participant_id, tag)

    async def replace_tags(self, participant_id: str, tags: list[str]) -> Participant:
        """Replace all tags."""
        return await self._participant_admin.replace_tags(participant_id, tags)

    async def set_counter(
        self, participant_id: str, key: str, value: str, reset_after: str | None = None
    ) -> Participant:
        """Set a counter to an exact value (creating it); ``reset_after`` a window, ``""`` none, None unchanged."""
        return await self._participant_admin.set_counter(participant_id, key, value, reset_after)

    async def delete_counter(self, participant_id: str, key: str) -> Participant:
        """Delete a counter; absent is fine."""
        return await self._participant_admin.delete_counter(participant_id, key)

    async def set_attributes(self, participant_id: str, attributes: dict[str, str]) -> Participant:
        """Merge attributes (string to string)."""
        return await self._participant_admin.set_attributes(participant_id, attributes)

    async def delete_attribute(self, participant_id: str, key: str) -> Participant:
        """Delete an attribute; absent is fine."""
        return await self._participant_admin.delete_attribute(participant_id, key)

    async def adjust_balance(self, participant_id: str, request: BalanceAdjust) -> AdjustResult:
        """CREDIT or DEBIT a bucket (ADJUST), in turn with the participant's events; answers once durable."""
        return await self._operations.adjust(participant_id, request)

    async def balance_operation(
        self, operation: str, participant_id: str, request: BalanceOperation
    ) -> BalanceOperationResult:
        """HOLD, RELEASE, FORFEIT or VOID_HOLD a participant's value (docs/money-out.md); answers once durable."""
        return await self._operations.balance_operation(operation, participant_id, request)

    async def balances(self, participant_id: str, asset_id: str | None = None) -> list[Balance]:
        """Balances per asset: available, held, deferred."""
        return await self._queries.balances(participant_id, asset_id)

    async def lots(self, participant_id: str, asset_id: str, **filters: Any) -> list[Lot]:
        """A participant's lots of a LOT asset, oldest first, open and closed. Filters (all together): ``status``,
        ``program_id``, ``reference_id``, ``expires_before``, ``expires_after`` (:meth:`Queries.lots`)."""
        return await self._queries.lots(participant_id, asset_id, **filters)

    # ==========================================================================================================
    # journal
    # ==========================================================================================================

    async def get_journal_entry(self, entry_id: str) -> JournalEntry:
        """One journal entry with its postings and hash."""
        return await self._queries.get_journal_entry(entry_id)

    async def list_journal_entries(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> Page:
        """Journal entries, newest first. Filters, all applying together (:meth:`Queries.list_journal_entries`):
        ``program_id``, ``event_id``, ``rule_id``, ``participant_id``, ``asset_id``, ``reference_id`` (a hold's
        whole chain), ``created_from``, ``created_to``."""
        return await self._queries.list_journal_entries(limit=limit, cursor=cursor, **filters)

    # ==========================================================================================================
    # introspection
    # ==========================================================================================================

    def asset_ids(self) -> list[str]:
        """Every asset's id, created or recovered; synchronous, for observers such as the metrics collector."""
        return list(self._world.assets)

    def statistics(self) -> EngineStatistics:
        """A snapshot of the engine's counters."""
        assert self._registry is not None
        writer = self._writer.statistics()
        admission = self._admission
        return EngineStatistics(
            events_inflight=admission.inflight,
            events_inflight_peak=admission.inflight_peak,
            events_inflight_bytes=admission.inflight_bytes,
            events_accepted=admission.counts["accepted"],
            events_completed=self._counts["completed"],
            events_failed=self._counts["failed"],
            idempotent_replays=admission.counts["replays"],
            idempotency_conflicts=admission.counts["conflicts"],
            participants_cached=len(self._participants),
            participants_cached_peak=self._cache.peak,
            passivations=self._cache.passivations,
            journal_sequence=self._world.journal_sequence,
            actors=self._registry.statistics(),
            writer_records_durable=writer.records_durable,
            writer_commits=writer.commits,
            writer_batch_records_peak=writer.batch_records_peak,
            writer_records_appended=writer.records_appended,
            writer_commit_seconds_last=writer.commit_seconds_last,
            writer_commit_seconds_peak=writer.commit_seconds_peak,
            writer_commit_seconds_total=writer.commit_seconds_total,
            messages_queued=self._registry.queued,
            events_refused_overload=admission.counts["overloaded"],
            writer_map_trims=writer.map_trims,
            writer_map_trim_seconds_total=writer.map_trim_seconds_total,
        )

    def reset_peaks(self) -> None:
        """Start new ``*_peak`` windows (in-flight events, cached participants, actors, mailboxes, commits)."""
        assert self._registry is not None
        self._admission.inflight_peak = self._admission.inflight
        self._cache.reset_peak()
        self._registry.reset_peaks()
        self._writer.reset_peaks()

    async def backtest(self, program_id: str, request: BacktestCreate) -> Backtest:
        """Replay the program's recorded events in ``[from, to)`` with a proposed rule set, in a sandbox, and
        return the finished job with its report (docs/backtest.md); ``engine.backtests`` runs them as jobs."""
        return await self.backtests.run(program_id, request)

    async def verify(self) -> VerifyReport:
        """Run ``verify`` on this engine's store once everything appended is durable (see scrip_actor.verify)."""
        await self._caught_up()
        return verify_store(self._store)

    @property
    def data_dir(self) -> Path:
        """Where the store lives."""
        return self._store.path


# ==============================================================================================================
# module helpers
# ==============================================================================================================


def _automation_stages(engine: Engine) -> tuple[Automations, AutomationRunner]:
    """``engine.automations`` (definitions, engine/_automations.py) and ``engine.automation_runs`` (the runner that
    fires them through the engine's admission, engine/_automation_runs.py), each given its collaborators."""
    admission, cache = engine._admission, engine._cache
    automations = Automations(
        catalog=engine._catalog,
        store=engine._store,
        writer=engine._writer,
        clock=engine._clock,
        limits=engine._limits,
        check_event_data=admission.event_data_for_cel,
        known_participant=lambda participant_id: cache.get(participant_id) is not None,
    )
    runner = AutomationRunner(
        automations=automations,
        store=engine._store,
        writer=engine._writer,
        clock=engine._clock,
        settings=engine.config.automations,
        cel_compiler=engine._catalog.cel_compiler,
        cel_cost_max=engine._limits.cel_cost_per_event_max,
        limits=engine._limits,
        accept=lambda request: admission.accept(request, "SYSTEM"),
        inflight=lambda: admission.inflight,
        participant=cache.get,
        closing=lambda: admission.closing,
    )
    engine._publisher.follow_up_ops = automations.follow_up_ops
    engine._publisher.counter_ops = runner.subscriptions.counters_changed
    return automations, runner


def _backtest_stage(engine: Engine) -> Backtests:
    """``engine.backtests`` (engine/_backtests.py), reading the store through the replay's sources only."""
    catalog, store = engine._catalog, engine._store
    sources = ReplaySources(
        store=store,
        id_prefix=store.id_prefix,
        stored_event=engine._stored_event,
        world=engine._world,
        step_limits=engine._step_limits,
        tiers=lambda: engine.tiers.by_program,
        rule_history=catalog.rule_history_sets,
    )
    return Backtests(
        catalog=catalog,
        sources=sources,
        settings=engine.config.backtests,
        limits=engine._limits,
        clock=engine._clock,
        caught_up=engine._caught_up,
        worker=partial(run_in_process, engine.config) if engine.config.backtests.isolation == "process" else None,
    )


@asynccontextmanager
async def open_engine(
    data_dir: str | Path | None = None,
    *,
    config: Config | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[Engine]:
    """Open (or create) the store and run the engine for the duration of the ``async with`` block.

    Args:
        data_dir: where LMDB lives; overrides ``config.storage.data_dir``.
        config: settings; defaults to :class:`~scrip_actor.config.Config()`.
        clock: wall-clock source (UTC datetimes) for receipt times and lot sweeps; tests pass a manual clock.

    On exit, new events are refused, actors stop between steps, and everything already appended is committed
    before LMDB closes. Events accepted but not yet processed are processed after the next open, each exactly once.
    """
    config = config or Config()
    if data_dir is not None:
        config = msgspec.structs.replace(
            config, storage=msgspec.structs.replace(config.storage, data_dir=str(data_dir))
        )
    engine = Engine(config, clock)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine._writer.run)
            async with trio.open_nursery() as workers:
                engine._start(workers)
                try:
                    yield engine
                finally:
                    engine._admission.closing = True
                    workers.cancel_scope.cancel()
            engine._writer.close()
    finally:
        engine._store.close()
