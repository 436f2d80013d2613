"""The engine's face of rule budgets: load them on open, follow rule changes, show them live, reset by hand.

The shared state itself is :class:`scrip_actor.budgets.Budgets`, which the steps check and consume (in memory,
one step at a time, so exactly). This stage keeps it in step with the rules (the catalog calls
:meth:`RuleBudgets.rule_stored` inside the rule's own write, so a rule and its budget records are one record) and
serves ``GET /rules/{id}`` (the effective state at the wall clock) and ``POST /rules/{id}/reset-budget``.

A reset by hand changes memory synchronously, on the engine's thread, between two steps (steps never await), so
it cannot interleave with a step's check-and-consume; it is appended to the writer in order with the steps' records
and answered once durable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from scrip_actor.budgets import Budget, Budgets, BudgetState
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.ledger import World
from scrip_actor.model import Rule, RuleBudget
from scrip_actor.store import Op, Store, Writer, encode

__all__ = ["RuleBudgets", "budget_ops"]

_state_decoder = msgspec.json.Decoder(BudgetState)


class RuleBudgets:
    """Budgets of every rule (see the module docstring)."""

    def __init__(self, *, store: Store, writer: Writer, world: World, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._writer = writer
        self._world = world
        self._clock = clock
        self.registry = Budgets()

    def load(self, rules: dict[str, Rule]) -> None:
        """Join the stored states with the rules' definitions (on open, after the journal head is known)."""
        stored = {}
        for key, raw in self._store.scan("rule_budgets"):
            state = _state_decoder.decode(raw)
            assert _key(state.rule_id, state.asset_id) == bytes(key), "a budget is stored under another key"
            assert state.consumed_minor >= 0
            stored[(state.rule_id, state.asset_id)] = state
        for rule in rules.values():
            if rule.budgets:
                self.registry.by_rule[rule.id] = [
                    self._budget(spec, stored.get((rule.id, spec.asset_id)), rule.id) for spec in rule.budgets
                ]

    def rule_stored(self, rule: Rule) -> list[Op]:
        """Follow a created or changed rule: keep the state of a budget whose asset and schedule are unchanged
        (a new limit applies to what was already consumed), start a fresh period for a new or rescheduled one, drop
        the removed ones. Returns the ops to write with the rule."""
        before = {budget.spec.asset_id: budget for budget in self.registry.by_rule.get(rule.id, [])}
        budgets = []
        ops: list[Op] = []
        for spec in rule.budgets:
            old = before.pop(spec.asset_id, None)
            same_period = old is not None and _schedule(old.spec) == _schedule(spec)
            budget = self._budget(spec, old.state if same_period and old is not None else None, rule.id)
            budgets.append(budget)
            if not same_period:
                ops.append(_op(budget.state))
        ops.extend(("rule_budgets", _key(rule.id, asset_id), None) for asset_id in before)
        if budgets:
            self.registry.by_rule[rule.id] = budgets
        else:
            self.registry.by_rule.pop(rule.id, None)
        return ops

    def live(self, rule: Rule) -> Rule:
        """``rule`` with each budget's effective ``consumed`` and ``next_reset_at`` (as of the wall clock)."""
        budgets = self.registry.by_rule.get(rule.id)
        if not budgets:
            return rule
        now, next_sequence = self._clock(), self._world.journal_sequence + 1
        return msgspec.structs.replace(rule, budgets=[budget.public(now, next_sequence) for budget in budgets])

    async def reset(self, rule: Rule, asset_id: str | None) -> RuleBudget:
        """Reset a rule's budget of ``asset_id`` by hand: consumed 0 and a new period from now; durable on return.

        Raises:
            ValidationFailed: no ``asset_id``.
            NotFound: the rule has no budget of that asset.
            Conflict: the rule is archived.
        """
        if not asset_id:
            raise ValidationFailed.field("asset_id", "required", "give the asset_id of the budget to reset")
        budget = next((b for b in self.registry.by_rule.get(rule.id, []) if b.spec.asset_id == asset_id), None)
        if budget is None:
            raise NotFound("budget", f"{rule.id}/{asset_id}")
        if rule.status == "ARCHIVED":
            raise Conflict("an archived rule cannot be modified")
        # From here to the append nothing awaits: no step can run in between (see the module docstring).
        budget.state = self._fresh(budget, rule.id)
        ticket = self._writer.append([_op(budget.state)])
        await self._writer.wait_durable(ticket)
        return budget.public(self._clock(), self._world.journal_sequence + 1)

    def _budget(self, spec: RuleBudget, state: BudgetState | None, rule_id: str) -> Budget:
        asset = self._world.assets[spec.asset_id]
        placeholder = state or BudgetState(
            rule_id=rule_id,
            asset_id=spec.asset_id,
            consumed_minor=0,
            period_start_sequence=0,
            period_started_at=self._clock(),
            next_reset_at=None,
        )
        budget = Budget(spec, asset, placeholder)
        if state is None:
            budget.state = self._fresh(budget, rule_id)
        return budget

    def _fresh(self, budget: Budget, rule_id: str) -> BudgetState:
        """A new period from now: nothing consumed, counting from the next journal entry."""
        now = self._clock()
        return BudgetState(
            rule_id=rule_id,
            asset_id=budget.spec.asset_id,
            consumed_minor=0,
            period_start_sequence=self._world.journal_sequence + 1,
            period_started_at=now,
            next_reset_at=budget.next_reset_after(now),
        )


def budget_ops(states: list[BudgetState]) -> list[Op]:
    """The ``rule_budgets`` records of states a step consumed or reset (written with its journal entries)."""
    return [_op(state) for state in states]


def _op(state: BudgetState) -> Op:
    assert state.consumed_minor >= 0
    return ("rule_budgets", _key(state.rule_id, state.asset_id), encode(state))


def _key(rule_id: str, asset_id: str) -> bytes:
    return rule_id.encode() + b"\0" + asset_id.encode()


def _schedule(spec: RuleBudget) -> tuple[str | None, str | None, str | None]:
    return (spec.schedule_type, spec.cron_expression, spec.interval)
