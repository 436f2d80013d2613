"""The step is a pure function: driven here with plain objects, no trio, no store, no writer, no clock.

It decides an event's outcome from the event, the rules in force, the program and the participant, and commits
only to the in-memory ledger it is given (scrip_actor.engine._step). These tests pin the contract the engine
relies on: a new participant is created with a derived id, effects balance, the same inputs give the same result,
a failing rule leaves the settlement before it standing, and nothing outside the result changes on failure.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scrip_actor.engine._step import StepLimits, StepResult, new_participant, step_event, step_sweep
from scrip_actor.ids import SequenceIds
from scrip_actor.ledger import ParticipantState, World
from scrip_actor.model import Asset, CreditAction, DebitAction, Event, Program, Rule, TagAction
from scrip_actor.rules import CompiledRule, cel_event_data, compile_rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = StepLimits(
    cel_cost_per_event_max=20_000,
    external_id_length_max=255,
    tags_per_participant_max=3,
    counters_per_participant_max=10,
    attributes_per_participant_max=10,
)


class _Participants:
    """The step's Lookups over a plain dict (what the engine's cache is to it)."""

    def __init__(self, *states: ParticipantState) -> None:
        self.by_id = {state.id: state for state in states}

    def participant(self, participant_id: str) -> ParticipantState | None:
        return self.by_id.get(participant_id)

    def participant_by_external(self, external_id: str) -> ParticipantState | None:
        return next((s for s in self.by_id.values() if s.external_id == external_id), None)


def _world(mode: str = "SIMPLE") -> tuple[World, Program, Asset]:
    world = World(SequenceIds(7))
    program = Program(id="prog", name="P", created_at=T0, updated_at=T0)
    asset = Asset(
        id="pts",
        name="Points",
        symbol="PTS",
        inventory_mode=mode,  # type: ignore[arg-type]
        issuance_policy="UNLIMITED",
        scale=2,
        program_ids=[program.id],
        created_at=T0,
        updated_at=T0,
    )
    world.assets[asset.id] = asset
    return world, program, asset


def _rules(world: World, *specs: tuple[str, list[Any]]) -> list[CompiledRule]:
    rules = [
        Rule(
            id=f"r{n}",
            program_id="prog",
            name=f"r{n}",
            condition=condition,
            actions=actions,
            order=n,
            created_at=T0,
            updated_at=T0,
        )  # fmt: skip
        for n, (condition, actions) in enumerate(specs)
    ]
    return [compile_rule(rule, world.assets) for rule in rules]


def _event(sequence: int, data: dict[str, Any], at: datetime = T0, external_id: str = "ann") -> Event:
    return Event(
        id=f"00000000-0000-8000-8000-{sequence:012d}",
        sequence=sequence,
        program_id="prog",
        external_id=external_id,
        idempotency_key=f"k{sequence}",
        event_timestamp=at,
        event_data=data,
        created_at=at,
    )


def _step(world: World, program: Program, rules: list[CompiledRule], event: Event, state: Any, lookups: Any,
          wall_now: datetime = T0) -> StepResult:  # fmt: skip
    return step_event(
        event,
        cel_event_data(event.event_data),
        rules,
        program,
        state,
        world=world,
        limits=LIMITS,
        lookups=lookups,
        wall_now=wall_now,
    )


def test_the_step_module_needs_no_runtime() -> None:
    """Importing and running the step pulls in no event loop, store or writer (the layering test checks imports)."""
    module = sys.modules["scrip_actor.engine._step"]
    assert not {"trio", "lmdb"} & set(vars(module))


def test_a_new_participant_is_created_credited_and_the_entry_balances() -> None:
    world, program, asset = _world()
    rules = _rules(world, ("event.amount > 10.0", [CreditAction(asset_id=asset.id, amount="event.amount * 2.0")]))
    result = _step(world, program, rules, _event(1, {"amount": 12.5}), None, _Participants())
    assert result.failure is None
    assert result.state is not None and result.state.external_id == "ann"
    assert [e.status for e in result.evaluations] == ["MATCHED"]
    assert result.changes is not None
    [entry] = result.changes.entries
    assert sum(p.amount_minor for p in entry.postings) == 0
    assert [p.amount for p in entry.postings] == ["-25.00", "25.00"]
    [state] = result.changes.participants
    assert state.balances[asset.id] == [2500, 0, 0]
    assert world.journal_sequence == 1 and world.journal_hash == entry.entry_hash


def test_the_same_inputs_give_the_same_result() -> None:
    outcomes = []
    for _ in range(2):
        world, program, asset = _world()
        rules = _rules(world, ("true", [CreditAction(asset_id=asset.id, amount="1"), TagAction(tag="seen")]))
        result = _step(world, program, rules, _event(1, {}), None, _Participants())
        assert result.changes is not None
        outcomes.append(
            ([(e.id, e.entry_hash) for e in result.changes.entries], result.state.id if result.state else "")
        )
    assert outcomes[0] == outcomes[1]


def test_a_failing_rule_keeps_the_settlement_before_it_and_nothing_else() -> None:
    world, program, asset = _world("LOT")
    earn = _rules(world, ("true", [CreditAction(asset_id=asset.id, amount="5", expires_at="24h")]))
    first = _step(world, program, earn, _event(1, {}), None, _Participants())
    assert first.changes is not None
    [ann] = first.changes.participants
    head = (world.journal_sequence, world.journal_hash)
    spend = _rules(world, ("true", [TagAction(tag="spender"), DebitAction(asset_id=asset.id, amount="1")]))
    later = T0 + timedelta(days=2)  # the lot expired a day ago: settling it comes before the rules
    result = _step(world, program, spend, _event(2, {}, at=later), ann, _Participants(ann), wall_now=later)
    assert result.failure is not None and "insufficient" in result.failure
    assert result.changes is not None
    assert [entry.action_type for entry in result.changes.entries] == ["EXPIRATION"]
    [settled] = result.changes.participants
    assert "spender" not in settled.tags  # the rule's tag was rolled back with its failing debit
    assert settled.balances[asset.id] == [0, 0, 0]
    assert world.journal_sequence == head[0] + 1
    assert ann.balances[asset.id] == [500, 0, 0]  # the state the step was given is never changed in place


def test_a_state_limit_fails_the_event_and_changes_nothing() -> None:
    world, program, _ = _world()
    ann = new_participant("ann", T0, "p-ann")
    ann.program_ids.append(program.id)
    rules = _rules(world, ("true", [TagAction(tag=f"t{n}") for n in range(4)]))
    result = _step(world, program, rules, _event(1, {}), ann, _Participants(ann))
    assert result.failure == "participant would have more than 3 tags"
    assert result.changes is None
    assert world.journal_sequence == 0
    assert ann.tags == set()


@pytest.mark.parametrize("status", ["ARCHIVED", "missing"])
def test_an_inactive_or_missing_program_fails_before_anything(status: str) -> None:
    world, program, _ = _world()
    program = None if status == "missing" else Program(id="prog", name="P", status="ARCHIVED", created_at=T0, updated_at=T0)  # type: ignore[arg-type]  # fmt: skip
    result = _step(world, program, [], _event(1, {}), None, _Participants())  # type: ignore[arg-type]
    assert result.failure is not None and "events are not processed" in result.failure
    assert result.state is None and result.changes is None


def test_a_sweep_settles_what_is_due_and_nothing_when_nothing_is() -> None:
    world, program, asset = _world("LOT")
    earn = _rules(world, ("true", [CreditAction(asset_id=asset.id, amount="5", expires_at="1h")]))
    first = _step(world, program, earn, _event(1, {}), None, _Participants())
    assert first.changes is not None
    [ann] = first.changes.participants
    assert step_sweep(ann, world, T0 + timedelta(minutes=30)) is None
    swept = step_sweep(ann, world, T0 + timedelta(hours=2))
    assert swept is not None
    assert [entry.action_type for entry in swept.entries] == ["EXPIRATION"]
