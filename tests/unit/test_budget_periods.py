"""The pure part of rule budgets (scrip_actor.budgets): period boundaries on their grid, the effective state at a
wall-clock time, the all-or-nothing check, and what counts as issued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scrip_actor.budgets import Budget, Budgets, BudgetState, checked_budgets, issued_minor
from scrip_actor.errors import ValidationFailed
from scrip_actor.model import Asset, BudgetSpec, JournalEntry, Posting, RuleBudget

START = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def _asset(asset_id: str = "a") -> Asset:
    return Asset(
        id=asset_id, name="Points", symbol="PTS", inventory_mode="SIMPLE", issuance_policy="UNLIMITED", scale=2,
        program_ids=["p"], created_at=START, updated_at=START,
    )  # fmt: skip


def _budget(spec: RuleBudget, consumed: int = 0, next_reset_at: datetime | None = None) -> Budget:
    state = BudgetState(
        rule_id="r", asset_id=spec.asset_id, consumed_minor=consumed, period_start_sequence=1,
        period_started_at=START, next_reset_at=next_reset_at,
    )  # fmt: skip
    return Budget(spec, _asset(spec.asset_id), state)


def test_interval_periods_stay_on_their_grid_however_late_the_touch() -> None:
    daily = _budget(RuleBudget(asset_id="a", limit="10.00", schedule_type="INTERVAL", interval="24h"), 700)
    daily.state.next_reset_at = daily.next_reset_after(START)
    assert daily.state.next_reset_at == START + timedelta(days=1)
    assert daily.effective(START + timedelta(hours=23), 9) is daily.state  # not due: unchanged
    late = daily.effective(START + timedelta(days=3, hours=2), 9)
    assert (late.consumed_minor, late.period_start_sequence) == (0, 9)
    assert late.next_reset_at == START + timedelta(days=4)
    exactly = daily.effective(START + timedelta(days=1), 9)  # at the boundary the new period has begun
    assert exactly.next_reset_at == START + timedelta(days=2)


def test_cron_periods_end_at_each_fire_time_in_utc() -> None:
    monthly = _budget(RuleBudget(asset_id="a", limit="10", schedule_type="CRON", cron_expression="0 0 1 * *"))
    assert monthly.next_reset_after(START) == datetime(2026, 4, 1, tzinfo=UTC)
    assert monthly.next_reset_after(datetime(2026, 4, 1, tzinfo=UTC)) == datetime(2026, 5, 1, tzinfo=UTC)
    lifetime = _budget(RuleBudget(asset_id="a", limit="10"))
    assert lifetime.next_reset_after(START) is None
    assert lifetime.effective(START + timedelta(days=10_000), 5) is lifetime.state


def test_a_match_fits_every_budget_of_its_rule_or_consumes_nothing() -> None:
    registry = Budgets()
    first = _budget(RuleBudget(asset_id="a", limit="1.00"), consumed=90)
    second = _budget(RuleBudget(asset_id="b", limit="1.00"), consumed=0)
    registry.by_rule["r"] = [first, second]
    tx = registry.begin(START, 5)
    assert not tx.try_consume(registry.by_rule["r"], {"a": 11, "b": 1})  # a would reach 101 > 100
    assert tx.commit() == []
    tx = registry.begin(START, 5)
    assert tx.try_consume(registry.by_rule["r"], {"a": 10, "b": 100})  # exactly the limit fits
    assert not tx.try_consume(registry.by_rule["r"], {"b": 1})  # the same step sees what it consumed
    assert [(state.asset_id, state.consumed_minor) for state in tx.commit()] == [("a", 100), ("b", 100)]
    assert (first.state.consumed_minor, second.state.consumed_minor) == (100, 100)
    assert registry.begin(START, 6).try_consume(registry.by_rule["r"], {"c": 5})  # none of its assets: fits


def test_issued_counts_the_rules_credits_out_of_the_issuance_or_the_wallet() -> None:
    def entry(action_type: str, rule_id: str, legs: list[tuple[str, str, int]]) -> JournalEntry:
        postings = [
            Posting(entity_type=kind, entity_id=who, asset_id="a", bucket="AVAILABLE", amount_minor=amount, amount="")  # type: ignore[arg-type]
            for kind, who, amount in legs
        ]
        return JournalEntry(
            id="e", sequence=1, action_type=action_type, program_id="p", event_id=None, rule_id=rule_id,
            reference_id=None, description=None, created_at=START, postings=postings, previous_hash="",
        )  # fmt: skip

    issuance, wallet, person = ("SYSTEM", "SYSTEM_ISSUANCE"), ("PROGRAM", "p"), ("PARTICIPANT", "x")
    transit = ("SYSTEM", "SYSTEM_TRANSIT_P3")
    entries = [
        entry("CREDIT", "r", [(*issuance, -5), (*person, 5)]),
        entry("CREDIT", "r", [(*wallet, -7), (*person, 7)]),
        entry("CREDIT", "r", [(*person, -3), (*person, 3)]),  # a settle: no new value
        entry("DEBIT", "r", [(*person, -2), (*issuance, 2)]),
        entry("CREDIT", "other", [(*issuance, -100), (*person, 100)]),
        entry("CREDIT", "r", [(*issuance, -11), (*transit, 11)]),  # to another partition: counted where it leaves
        entry("CREDIT", "r", [(*transit, -13), (*person, 13)]),  # arriving from one: counted at its origin
        entry("CREDIT_RETURN", "r", [(*transit, -11), (*issuance, 11)]),  # refused there: the budget stays spent
    ]
    assert issued_minor(entries, "r") == {"a": 23}


def test_checked_budgets_normalizes_and_refuses() -> None:
    assets = {"a": _asset()}
    (checked,) = checked_budgets([BudgetSpec(asset_id="a", limit="5")], "p", assets)
    assert (checked.limit, checked.consumed) == ("5.00", None)
    with pytest.raises(ValidationFailed):
        checked_budgets([BudgetSpec(asset_id="a", limit="5")], "other-program", assets)
    with pytest.raises(ValidationFailed):
        checked_budgets(
            [BudgetSpec(asset_id="a", limit="1", schedule_type="CRON", cron_expression="* * *")], "p", assets
        )
