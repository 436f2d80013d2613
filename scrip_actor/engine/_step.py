"""The step: what one event (or one sweep) does to a participant, as a pure function.

:func:`step_event` takes the event, its data as CEL sees it, the compiled rules in force for it, the program, and
the participant as cached, and returns a :class:`StepResult`: the evaluations, the committed ledger changes (or
None) and the failure, if any. It never awaits, reads no clock (``wall_now`` is given), writes nothing and
touches no cache: the engine publishes the result (scrip_actor.engine._publish). So it can be driven and tested
without trio, a store or a writer (tests/unit/test_step_is_a_pure_function.py).

Its only reach outside its arguments is :class:`Lookups`, to find the participants a rule's action targets by
external id, and the shared :class:`~scrip_actor.ledger.World` that :meth:`LedgerTx.commit` advances (the journal
head, account balances) once the step has decided — the one mutation of shared state, and the last thing done.

One step is one ledger transaction: settlement of the participant's due lots and enrolment in the program, a
savepoint, then the rules. A failing rule rolls back to the savepoint, so the settlement stands (it happened,
whatever the rules say) and the rules' effects do not (the event failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import msgspec

from scrip_actor import values
from scrip_actor.budgets import Budgets, BudgetShort, BudgetState, BudgetTx
from scrip_actor.engine._step_budgets import apply_with_budgets
from scrip_actor.ledger import (
    ActionFailed,
    Changes,
    FollowUp,
    LedgerTx,
    ParticipantRecord,
    ParticipantState,
    RemoteCredit,
    RemoteTarget,
    WalletShort,
    World,
    derived_id,
)
from scrip_actor.model import Event, Program, RuleEvaluation
from scrip_actor.rules import CompiledRule, apply_actions, event_variables, fused_evaluate
from scrip_actor.tier_effects import ProgramTiers, apply_event_tiers, cel_tiers, sweep_tiers, tiers_due

__all__ = ["Lookups", "StepLimits", "StepResult", "new_participant", "step_event", "step_sweep"]


class Lookups(Protocol):
    """How the step finds participants it did not get as an argument (a rule's action target)."""

    def participant(self, participant_id: str) -> ParticipantState | None:
        """The participant with this id, or None."""

    def participant_by_external(self, external_id: str) -> ParticipantState | None:
        """The participant with this (canonical) external id, or None."""


class StepLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The bounds the step holds a participant's state and an event's work to (from ``config.limits``)."""

    cel_cost_per_event_max: int
    external_id_length_max: int
    tags_per_participant_max: int
    counters_per_participant_max: int
    attributes_per_participant_max: int
    # Partitioned mode with shared wallets and budgets: a credit the partition's lease of a wallet cannot cover, or
    # a match its lease of a rule budget cannot take, holds the step (StepResult.held, nothing committed) instead of
    # failing the event (or skipping the match), so the engine can ask for more first.
    hold_when_short: bool = False
    hold_refused: set[str] = set()  # events that fail on a short wallet (or skip a short budget) all the same
    # (their ask was denied, or they asked too often): the partition's lease keeper fills it before it runs them
    # Partitioned mode: the partition a rule's target lives on when that is not this one (None: here). A target
    # elsewhere is a RemoteTarget: a CREDIT to it goes through the outbox, any other action fails the event.
    remote_partition: Callable[[str], int | None] | None = None


class StepResult(msgspec.Struct, kw_only=True):
    """What processing an event decided.

    ``state`` is the participant as it was found or created (None when the event could not reach one);
    ``changes`` what the step committed to memory, for the store (None: nothing but the outcome);
    ``failure`` why the event FAILED (None: it COMPLETED); ``internal_error`` the exception behind a failure that
    is a bug rather than a refusal, for the caller to log (the step does no I/O).
    """

    state: ParticipantState | None
    changes: Changes | None
    evaluations: list[RuleEvaluation]
    failure: str | None
    internal_error: Exception | None = None
    codes: str = ""  # the evaluations as the stored outcome's letters, and the skipped rules' reasons
    reasons: list[tuple[int, str]] = []
    matched_rule_ids: list[str] = []
    budget_states: list[BudgetState] = []  # the rule budgets this step consumed or reset, to store with its entries
    follow_ups: list[FollowUp] = []  # SCHEDULE_EVENT / BROADCAST: automations the publisher stores with the outcome
    remote_credits: list[RemoteCredit] = []  # CREDITs to other partitions' participants: outbox records, likewise
    held: WalletShort | BudgetShort | None = None  # the step waits for a lease (``StepLimits.hold_when_short``):
    # not committed, nothing changed; the engine runs it again later, or lets it fail


def step_event(
    event: Event,
    cel_data: Any,
    rules: list[CompiledRule],
    program: Program | None,
    state: ParticipantState | None,
    *,
    world: World,
    limits: StepLimits,
    lookups: Lookups,
    wall_now: datetime,
    tiers: Mapping[str, ProgramTiers] | None = None,
    budgets: Budgets | None = None,
) -> StepResult:
    """Process one event against ``state`` (the participant it is bound to or named by, None if unknown).

    ``tiers`` are the tier definitions by program id, then key (scrip_actor.tiers); a program without any costs
    the step one dict lookup. ``budgets`` are the rules' shared budgets (scrip_actor.budgets): checked and consumed
    here, published only if the step commits.
    """
    tiers = tiers or _NO_TIERS
    tx, state, failure = _prepare(event, program, state, world, lookups, wall_now, tiers)
    if tx is None:
        return StepResult(state=state, changes=None, evaluations=[], failure=failure[0], internal_error=failure[1])
    assert program is not None
    assert state is not None
    program_tiers = tiers.get(program.id)
    budget_tx = None
    if budgets is not None and budgets.by_rule:
        hold = limits.hold_when_short and event.id not in limits.hold_refused
        budget_tx = budgets.begin(wall_now, world.journal_sequence + 1, hold=hold)
    extras = (program_tiers, budget_tx)
    return _run_rules(event, cel_data, rules, program, tx, state, limits, lookups, wall_now, extras)


_NO_TIERS: Mapping[str, ProgramTiers] = {}


def _prepare(
    event: Event,
    program: Program | None,
    state: ParticipantState | None,
    world: World,
    lookups: Lookups,
    wall_now: datetime,
    tiers: Mapping[str, ProgramTiers],
) -> tuple[LedgerTx | None, ParticipantState | None, tuple[str | None, Exception | None]]:
    """Before the rules: enrol (or create) the participant and settle its due lots, in the step's transaction.

    Returns ``(tx, state, (failure, internal error))``; no transaction when the event cannot be processed.
    """
    if program is None or program.status != "ACTIVE":
        status = program.status if program else "missing"
        return None, None, (f"program {event.program_id} is {status}; events are not processed", None)
    if state is None and event.participant_id is not None:  # pragma: no cover - participants are never deleted
        return None, None, (f"participant {event.participant_id} does not exist", None)
    if state is None and program.on_unknown_participant == "REJECT":
        reason = f"participant {event.external_id!r} does not exist and the program rejects unknown participants"
        return None, None, (reason, None)
    found = state
    tx = LedgerTx(world, now=event.event_timestamp, id_seed=event.id, program_id=program.id)
    try:
        if state is None:
            state = tx.adopt_new(_created_by(event, event.external_id, lookups))
        if program.id not in state.program_ids:
            enrolled = tx.edit(state)
            enrolled.program_ids.append(program.id)
            enrolled.invalidate()
        tx.settle_lots(tx.touched(state.id) or state, wall_now)
        if state.tiers and tiers_due(tx.touched(state.id) or state, wall_now):
            sweep_tiers(tx, state, tiers, wall_now)  # a period end before the event: it counts in the new one
        if not tx.is_empty():
            tx.check()  # settlement that cannot commit fails the event before any rule runs
    except ActionFailed as error:
        return None, found, (str(error), None)
    except Exception as error:  # a bug; nothing was published, so the ledger stays whole
        return None, found, (_internal(error), error)
    tx.event_id = event.id  # settlement entries are the lots' own; what the rules post is the event's
    return tx, state, (None, None)


def _target_resolver(
    event: Event,
    program: Program,
    tx: LedgerTx,
    limits: StepLimits,
    lookups: Lookups,
    by_external: dict[str, ParticipantState],
) -> Callable[[str], ParticipantState | RemoteTarget]:
    """The participant a rule's ``target`` names (found, or created unless the program rejects unknown ones),
    enrolled in the program, as ``tx``'s working copy; ``by_external`` remembers those found in this step."""

    def resolve_target(computed_id: str) -> ParticipantState | RemoteTarget:
        # An id computed by a rule is held to the API's bounds (ValidationFailed fails the action).
        external_id = values.external_id(computed_id, limits.external_id_length_max, "target.external_id")
        if limits.remote_partition is not None and (elsewhere := limits.remote_partition(external_id)) is not None:
            return RemoteTarget(elsewhere, external_id)
        found = by_external.get(external_id) or lookups.participant_by_external(external_id)
        if found is None:
            if program.on_unknown_participant == "REJECT":
                raise ActionFailed(f"target participant {external_id!r} does not exist")
            found = tx.adopt_new(_created_by(event, external_id, lookups))
            found.program_ids.append(program.id)
            found.invalidate()
        elif program.id not in found.program_ids:
            enrolled = tx.edit(found)
            enrolled.program_ids.append(program.id)
            enrolled.invalidate()
        by_external[external_id] = found
        return tx.touched(found.id) or found

    return resolve_target


def _run_rules(
    event: Event,
    cel_data: Any,
    rules: list[CompiledRule],
    program: Program,
    tx: LedgerTx,
    state: ParticipantState,
    limits: StepLimits,
    lookups: Lookups,
    wall_now: datetime,
    extras: tuple[ProgramTiers | None, BudgetTx | None],
) -> StepResult:
    """Evaluate the rules, apply the matched ones in ``tx`` (with their budgets, if any), then the program's tiers,
    and commit (on failure only the settlement before the rules commits). ``extras``: the program's tier
    definitions and the step's budget transaction, each None when there is none."""
    program_tiers, budget_tx = extras
    now = event.event_timestamp
    view = _participant_view(tx.touched(state.id) or state, now, program.id, program_tiers)
    variables = event_variables(cel_data, view, now, limits.cel_cost_per_event_max)
    evaluations, matched, codes, reasons = fused_evaluate(rules, variables, event.event_timestamp)
    savepoint = tx.savepoint()
    by_external: dict[str, ParticipantState] = {state.external_id: state}
    resolve_target = _target_resolver(event, program, tx, limits, lookups, by_external)
    internal_error: Exception | None = None
    try:
        if budget_tx is None or all(budget_tx.of_rule(compiled.rule.id) is None for compiled in matched):
            for compiled in matched:
                apply_actions(tx, compiled, state, variables, resolve_target, tx.world.assets)
        else:  # a matched rule has a budget (engine/_step_budgets)
            evaluations, matched, codes, reasons = _apply_budgeted(
                tx, budget_tx, rules, matched, (evaluations, codes, reasons), variables, event, state, resolve_target,
                by_external, lookups,
            )  # fmt: skip
        if program_tiers:  # SET_TIER and auto-qualification, after every rule's actions
            apply_event_tiers(tx, program_tiers, program.id, state, now)
        _check_state_limits(tx, limits)
        changes = None if tx.is_empty() else tx.commit(wall_now)
        return StepResult(
            state=state, changes=changes, evaluations=evaluations, failure=None, codes=codes, reasons=reasons,
            matched_rule_ids=[compiled.rule.id for compiled in matched],
            budget_states=budget_tx.commit() if budget_tx is not None else [],  # only once the entries committed
            follow_ups=tx.follow_ups, remote_credits=tx.remote_credits,
        )  # fmt: skip
    except ActionFailed as error:
        # (A BudgetShort is raised only when the step may hold: BudgetTx knows.)
        if isinstance(error, BudgetShort) or (
            isinstance(error, WalletShort) and limits.hold_when_short and event.id not in limits.hold_refused
        ):
            return StepResult(state=state, changes=None, evaluations=evaluations, failure=str(error), held=error)
        failure = str(error)  # (held: uncommitted, the step never happened; the engine may run it again)
    except Exception as error:  # a bug; the working copies are dropped, so the ledger stays whole
        failure, internal_error = _internal(error), error
    tx.rollback(savepoint)  # the settlement before the rules stands (it was checked in _prepare)
    changes = None if tx.is_empty() else tx.commit(wall_now)
    return StepResult(
        state=state, changes=changes, evaluations=evaluations, failure=failure, internal_error=internal_error,
        codes=codes, reasons=reasons, matched_rule_ids=[compiled.rule.id for compiled in matched],
    )  # fmt: skip


def _apply_budgeted(
    tx: LedgerTx,
    budget_tx: BudgetTx,
    rules: list[CompiledRule],
    matched: list[CompiledRule],
    evaluated: tuple[list[RuleEvaluation], str, list[tuple[int, str]]],
    variables: dict[str, Any],
    event: Event,
    state: ParticipantState,
    resolve_target: Callable[[str], ParticipantState | RemoteTarget],
    by_external: dict[str, ParticipantState],
    lookups: Lookups,
) -> tuple[list[RuleEvaluation], list[CompiledRule], str, list[tuple[int, str]]]:
    """The matched rules applied with their budgets: the evaluations, applied rules, codes and reasons after it."""

    def forget_rolled_back() -> None:  # a budget-skipped rule's new target participants no longer exist
        for key, found in list(by_external.items()):
            if tx.touched(found.id) is None and lookups.participant(found.id) is None:
                del by_external[key]

    return apply_with_budgets(
        tx,
        budget_tx,
        rules,
        matched,
        evaluated,
        lambda compiled: apply_actions(tx, compiled, state, variables, resolve_target, tx.world.assets),
        variables,
        event.event_timestamp,
        forget_rolled_back,
    )


def _participant_view(
    state: ParticipantState, now: datetime, program_id: str, program_tiers: ProgramTiers | None
) -> Any:
    """``participant`` as the rules see it: the cached view (counters at ``now`` if any has a reset window: they
    are rare, so the call is skipped otherwise), with the program's tiers laid over it if it has any."""
    view = state.cel_view_at(now) if state.counter_windows else state.cel_view()
    if program_tiers:
        view = {**view, "tiers": cel_tiers(state, program_tiers, program_id)}
    return view


def step_sweep(
    state: ParticipantState,
    world: World,
    wall_now: datetime,
    tiers: Mapping[str, ProgramTiers] | None = None,
    fired: frozenset[str] = frozenset(),
) -> Changes | None:
    """Mature and expire ``state``'s lots due by ``wall_now`` and act on its tier deadlines due by then (``fired``:
    the schedule items this sweep consumed); the committed changes, or None if nothing was due."""
    # The state history names a program: the one whose tiers these are, when there is just one (lots' entries
    # name their own program whatever this says).
    program_id = next(iter(state.tiers)) if len(state.tiers) == 1 else None
    tx = LedgerTx(world, now=wall_now, id_seed=f"sweep/{state.id}/{world.journal_sequence}", program_id=program_id)
    tx.settle_lots(state, wall_now)
    if state.tiers:
        sweep_tiers(tx, state, tiers or _NO_TIERS, wall_now, fired)
    return None if tx.is_empty() else tx.commit(wall_now)


def new_participant(external_id: str, now: datetime, participant_id: str) -> ParticipantState:
    """A participant with nothing yet (created by an event, or by the API)."""
    record = ParticipantRecord(id=participant_id, external_id=external_id, created_at=now, updated_at=now)
    return ParticipantState(record, {})


def created_participant_id(event_id: str, attempts: int, external_id: str) -> str:
    """The id of the participant ``external_id`` that attempt ``attempts`` of event ``event_id`` creates.

    Derived (a replay recreates it), with the event id's first 8 hex digits in front: the top of the store's id
    prefix, which in partitioned mode is the partition number (scrip_actor/partitioned/_partition_ids.py), so a
    participant id names the partition holding it as its events' ids do. Ids created before this rule are the
    plain derived ids (:func:`legacy_participant_id`); nothing relies on their digits.
    """
    return event_id[:8] + legacy_participant_id(event_id, attempts, external_id)[8:]


def legacy_participant_id(event_id: str, attempts: int, external_id: str) -> str:
    """The participant id an event created before ids carried their store's prefix (the whole SHA-256 derivation)."""
    return derived_id(f"participant/{event_id}/{attempts}/{external_id}", 0)


def _created_by(event: Event, external_id: str, lookups: Lookups) -> ParticipantState:
    """A participant an event creates; its id derives from the event, its attempt and the external id.

    So a replay recreates the same id, two participants created by one event differ, and a retried event
    (another attempt) never collides with a participant its earlier attempt created and a rename moved away.
    """
    participant_id = created_participant_id(event.id, event.attempts, external_id)
    if lookups.participant(participant_id) is not None:
        raise ActionFailed(f"participant id {participant_id} derived for {external_id!r} is already in use")
    return new_participant(external_id, event.created_at, participant_id)


def _check_state_limits(tx: LedgerTx, limits: StepLimits) -> None:
    for working in tx.participants():
        if len(working.tags) > limits.tags_per_participant_max:
            raise ActionFailed(f"participant would have more than {limits.tags_per_participant_max} tags")
        if len(working.counters) > limits.counters_per_participant_max:
            raise ActionFailed(f"participant would have more than {limits.counters_per_participant_max} counters")
        if len(working.attributes) > limits.attributes_per_participant_max:
            raise ActionFailed(f"participant would have more than {limits.attributes_per_participant_max} attributes")


def _internal(error: Exception) -> str:
    return f"internal error while processing the event ({type(error).__name__}); it was logged"
