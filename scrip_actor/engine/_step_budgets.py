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

from scrip_actor.budgets import BUDGET_EXCEEDED, BudgetTx, issued_minor
from scrip_actor.ledger import LedgerTx, entries_since, entry_count
from scrip_actor.model import RuleEvaluation
from scrip_actor.rules import CompiledRule, evaluate

__all__ = ["BudgetedOutcome", "apply_with_budgets"]

_CODE_OF_STATUS = {"MATCHED": "M", "NOT_MATCHED": "N", "STOPPED": "T"}  # as scrip_actor._event_records
_OUTSIDE_WINDOW = "OUTSIDE_TIME_WINDOW"


class BudgetedOutcome:
    """The evaluations as they finally stand (skips and re-evaluated rules included) and the rules applied."""

    __slots__ = ("applied", "codes", "evaluations", "reasons", "skipped")

    def __init__(
        self,
        evaluations: list[RuleEvaluation],
        applied: list[CompiledRule],
        codes: str,
        reasons: list[tuple[int, str]],
        skipped: int,
    ) -> None:
        self.evaluations = evaluations
        self.applied = applied
        self.codes = codes
        self.reasons = reasons
        self.skipped = skipped  # matches skipped for their budget


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
) -> BudgetedOutcome:
    """Apply ``matched`` in order with ``apply``, each budgeted rule in a savepoint (see the module docstring).

    ``evaluated`` is fused_evaluate's evaluations, codes and reasons; ``after_rollback`` lets the caller forget
    participants a rolled-back rule created. Raises what ``apply`` raises (ActionFailed fails the event).
    """
    evaluations, codes, reasons = evaluated
    applied: list[CompiledRule] = []
    pending = list(matched)
    skipped = 0
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
        skipped += 1
        index = next(number for number, candidate in enumerate(rules) if candidate is compiled)  # rare: a skip
        evaluations = list(evaluations)
        evaluations[index] = compiled.skipped(BUDGET_EXCEEDED)
        if compiled.rule.stop_after_match and index + 1 < len(rules):
            later, later_matched = evaluate(rules[index + 1 :], variables, event_now)
            evaluations[index + 1 :] = later
            pending.extend(later_matched)
    if skipped:
        codes, reasons = _codes(evaluations)
    return BudgetedOutcome(evaluations, applied, codes, reasons, skipped)


def _codes(evaluations: list[RuleEvaluation]) -> tuple[str, list[tuple[int, str]]]:
    """The stored outcome's letters and skip reasons, recomputed after budgets changed some evaluations."""
    letters = []
    reasons = []
    for index, evaluation in enumerate(evaluations):
        code = _CODE_OF_STATUS.get(evaluation.status)
        if code is None:
            assert evaluation.reason is not None
            if evaluation.reason == _OUTSIDE_WINDOW:
                code = "O"
            else:
                code = "S"
                reasons.append((index, evaluation.reason))
        letters.append(code)
    return "".join(letters), reasons
