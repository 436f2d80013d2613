"""Rule budgets against a naive auditor: random events of random amounts from a few participants, wall-clock time
passing across INTERVAL boundaries, resets by hand and restarts, on one rule with a budget of 50 per hour.

The auditor is a few lines of arithmetic: the period's consumed amount and the next boundary on the hour grid. For
every event it predicts MATCHED (the amount fits: ``consumed + amount <= limit``) or SKIPPED / BUDGET_EXCEEDED
(nothing applied, not even the rule's TAG), and after every step:

* ``consumed`` on ``GET /rules/{id}`` is the auditor's, never above the limit;
* ``next_reset_at`` is the auditor's boundary (the grid, moved on by a reset by hand);
* every participant's balance is the sum of the credits the auditor allowed it;
* ``verify`` passes: it recomputes ``consumed`` from the journal entries since the period's first sequence, so
  consumed == the rule's credits since the period began, by a path independent of the step's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrip_actor import CreditAction, Engine, TagAction, open_engine
from scrip_actor.model import BudgetSpec
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send

LIMIT = 50
PERIOD = timedelta(hours=1)
PARTICIPANTS = ["p0", "p1", "p2"]

operation = st.one_of(
    st.tuples(st.just("event"), st.sampled_from(PARTICIPANTS), st.integers(min_value=1, max_value=30)),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=150)),  # minutes
    st.tuples(st.just("reset")),
    st.tuples(st.just("restart")),
)


@dataclass
class Auditor:
    next_reset_at: datetime
    consumed: int = 0
    balances: dict[str, int] = field(default_factory=dict)

    def at(self, now: datetime) -> None:
        """Apply the scheduled resets due by ``now`` (the next boundary stays on the hour grid)."""
        while now >= self.next_reset_at:
            self.consumed = 0
            self.next_reset_at += PERIOD

    def event(self, now: datetime, external_id: str, amount: int) -> bool:
        self.at(now)
        if self.consumed + amount > LIMIT:
            return False
        self.consumed += amount
        self.balances[external_id] = self.balances.get(external_id, 0) + amount
        return True


async def _check(engine: Engine, rule_id: str, auditor: Auditor, clock: ManualClock, asset_id: str) -> None:
    auditor.at(clock.now)
    (budget,) = (await engine.get_rule(rule_id)).budgets
    assert budget.consumed is not None
    assert int(budget.consumed) == auditor.consumed <= LIMIT
    assert budget.next_reset_at == auditor.next_reset_at
    for external_id, expected in auditor.balances.items():
        participant = await engine.get_participant_by_external_id(external_id)
        (balance,) = [b for b in participant.balances if b.asset_id == asset_id]
        assert int(balance.available) == expected
    report = await engine.verify()
    assert report.ok, report.problems


async def _run_sequence(operations: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as directory:
        config = small_config(Path(directory))
        async with open_engine(config=config, clock=clock) as engine:
            program, asset = await program_with_asset(engine, scale=0)
            budgeted = await rule(
                engine,
                program,
                "true",
                [CreditAction(asset_id=asset.id, amount="event.amount"), TagAction(tag="earned")],
                budgets=[BudgetSpec(asset_id=asset.id, limit=str(LIMIT), schedule_type="INTERVAL", interval="1h")],
            )
        auditor = Auditor(next_reset_at=clock.now + PERIOD)
        keys = iter(range(10**6))
        engine_context = open_engine(config=config, clock=clock)
        engine = await engine_context.__aenter__()
        try:
            for op in operations:
                if op[0] == "event":
                    _, external_id, amount = op
                    fits = auditor.event(clock.now, external_id, amount)
                    event = await send(engine, program, external_id, {"amount": amount}, key=f"k{next(keys)}")
                    assert event.status == "COMPLETED", event.error_message
                    (evaluation,) = event.rule_evaluations
                    expected = ("MATCHED", None) if fits else ("SKIPPED", "BUDGET_EXCEEDED")
                    assert (evaluation.status, evaluation.reason) == expected
                    participant = await engine.get_participant_by_external_id(external_id)
                    if not auditor.balances.get(external_id):
                        assert "earned" not in participant.tags  # a skipped match applied none of its actions
                elif op[0] == "advance":
                    clock.advance(timedelta(minutes=op[1]))
                elif op[0] == "reset":
                    await engine.reset_rule_budget(budgeted.id, asset.id)
                    auditor.consumed, auditor.next_reset_at = 0, clock.now + PERIOD
                else:
                    await engine.wait_idle()
                    await engine_context.__aexit__(None, None, None)
                    engine_context = open_engine(config=config, clock=clock)
                    engine = await engine_context.__aenter__()
                await _check(engine, budgeted.id, auditor, clock, asset.id)
        finally:
            await engine_context.__aexit__(None, None, None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=30))
async def test_a_budget_never_exceeds_its_limit_and_always_equals_the_credits_of_its_period(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=10, max_size=80))
async def test_long_budget_sequences_never_exceed_and_always_equal_the_credits_of_their_period(
    operations: list[tuple[Any, ...]],
) -> None:
    await _run_sequence(operations)
