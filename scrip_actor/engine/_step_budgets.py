"""The step's part of rule budgets: apply the matched rules, skipping whole any match its budget cannot take.

Called by :func:`scrip_actor.engine._step.step_event` only when some rule has a budget (the common path pays
nothing). A rule with budgets runs inside its own savepoint: its actions are applied, what it issued of each asset
is read from the entries it just posted (:func:`scrip_actor.budgets.issued_minor`, the very count ``scrip verify``
makes), and if any of its budgets cannot take that whole amount the savepoint is rolled back: none of its actions
apply, its evaluation becomes ``SKIPPED`` / ``BUDGET_EXCEEDED``, and the event goes on (it still COMPLETES).

There is no partial fit: a credit of 100 against 30 left is not cut to 30 (a customer promised "10% back" must
not silently get 3%); the match is skipped and the 30 stay for a smaller match. A skipped rule did not apply, so
its ``stop_after_match`` does not fire: the rules after it that evaluation had marked STOPPED are evaluated now,
against the same variables (the participant as processing began), and any that match are applied in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scrip_actor._event_records import evaluation_codes
from scrip_actor.budgets import BUDGET_EXCEEDED, BudgetTx, issued_minor
from scrip_actor.ledger import LedgerTx, entries_since, entry_count
from scrip_actor.model import RuleEvaluation
from scrip_actor.rules import CompiledRule, evaluate

__all__ = ["apply_with_budgets"]


def apply_with_budgets(
    tx: LedgerTx,
    budget_tx: BudgetTx,
    rules: list[CompiledRule],
    matched: list[CompiledRule],
    evaluated: tuple[list[RuleEvaluation], str, list[tuple[int, str]]],
    apply: Callable[[CompiledRule], None],
    variables: dict[str, Any],
    event_now: datetime,
    after_rollback: Callable[[], None],
) -> tuple[list[RuleEvaluation], list[CompiledRule], str, list[tuple[int, str]]]:
    """Apply ``matched`` in order with ``apply``, each budgeted rule in a savepoint (see the module docstring);
    the evaluations as they finally stand (skips and re-evaluated rules included), the rules applied, and the
    stored outcome's letters and reasons.

    ``evaluated`` is fused_evaluate's evaluations, codes and reasons; ``after_rollback`` lets the caller forget
    participants a rolled-back rule created. Raises what ``apply`` raises (ActionFailed fails the event).
    """
    evaluations, codes, reasons = evaluated
    applied: list[CompiledRule] = []
    pending = list(matched)
    skipped = False
    while pending:
        compiled = pending.pop(0)
        budgets = budget_tx.of_rule(compiled.rule.id)
        if budgets is None:
            apply(compiled)
            applied.append(compiled)
            continue
        savepoint, mark = tx.savepoint(), entry_count(tx)
        apply(compiled)
        if budget_tx.try_consume(budgets, issued_minor(entries_since(tx, mark), compiled.rule.id)):
            applied.append(compiled)
            continue
        tx.rollback(savepoint)
        after_rollback()
        skipped = True
        index = next(number for number, candidate in enumerate(rules) if candidate is compiled)  # rare: a skip
        evaluations = list(evaluations)
        evaluations[index] = compiled.skipped(BUDGET_EXCEEDED)
        if compiled.rule.stop_after_match and index + 1 < len(rules):
            later, later_matched = evaluate(rules[index + 1 :], variables, event_now)
            evaluations[index + 1 :] = later
            pending.extend(later_matched)
    if skipped:
        codes, reasons = evaluation_codes(evaluations)  # budgets changed some evaluations
    return evaluations, applied, codes, reasons
