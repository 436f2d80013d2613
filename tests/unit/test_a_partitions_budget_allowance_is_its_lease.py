"""A shared rule budget's allowance on each kind of process (scrip_actor.budgets): the whole limit on one process,
the lease on a partition that holds one, the limit less what it leased out on the owner; and what a step does
when a match does not fit: held (BudgetShort) only where asking the owner could help, else skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scrip_actor.budgets import Budget, Budgets, BudgetShort, BudgetState
from scrip_actor.model import Asset, RuleBudget

START = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
LIMIT = RuleBudget(asset_id="a", limit="1.00")  # 100 minor units


def _registry(*, consumed: int, leased: int, leaseholder: bool | None) -> tuple[Budgets, Budget]:
    asset = Asset(
        id="a", name="Points", symbol="PTS", inventory_mode="SIMPLE", issuance_policy="UNLIMITED", scale=2,
        program_ids=["p"], created_at=START, updated_at=START,
    )  # fmt: skip
    state = BudgetState(
        rule_id="r", asset_id="a", consumed_minor=consumed, period_start_sequence=1, period_started_at=START,
        next_reset_at=None, leased_minor=leased,
    )  # fmt: skip
    budget = Budget(LIMIT, asset, state)
    registry = Budgets()
    registry.by_rule["r"] = [budget]
    if leaseholder is not None:
        registry.leaseholder = lambda rule_id, asset_id: leaseholder
    return registry, budget


def test_each_kind_of_process_is_allowed_its_share_of_the_limit() -> None:
    _, budget = _registry(consumed=0, leased=30, leaseholder=None)
    assert budget.allowance_minor(budget.state, None) == 100  # one process: the lease field means nothing
    assert budget.allowance_minor(budget.state, True) == 30  # a leaseholder: its lease
    assert budget.allowance_minor(budget.state, False) == 70  # the owner: the limit less what it leased out


@pytest.mark.parametrize(("leaseholder", "allowed"), [(True, 30), (False, 70)])
def test_a_partition_consumes_up_to_its_allowance_exactly(leaseholder: bool, allowed: int) -> None:
    registry, budget = _registry(consumed=0, leased=30, leaseholder=leaseholder)
    tx = registry.begin(START, 5, hold=True)
    assert tx.try_consume(registry.by_rule["r"], {"a": allowed})
    [state] = tx.commit()
    assert (state.consumed_minor, state.leased_minor) == (allowed, 30)  # the lease is the owner's to change
    assert budget.state is state


def test_a_holding_step_short_of_its_lease_asks_for_exactly_what_is_missing() -> None:
    registry, budget = _registry(consumed=25, leased=30, leaseholder=True)
    tx = registry.begin(START, 5, hold=True)
    with pytest.raises(BudgetShort) as short:
        tx.try_consume(registry.by_rule["r"], {"a": 12})
    assert (short.value.rule_id, short.value.asset_id, short.value.period_end) == ("r", "a", None)
    assert (short.value.need_minor, short.value.full_need_minor) == (7, 12)  # 25 + 12 - 30
    assert "0.07" in str(short.value) and "0.12" in str(short.value)  # decimal at the edge, never minor units
    assert tx.commit() == [] and budget.state.consumed_minor == 25  # nothing consumed while held


def test_a_partition_with_no_lease_yet_holds_its_first_match() -> None:
    registry, _ = _registry(consumed=0, leased=0, leaseholder=True)
    with pytest.raises(BudgetShort) as short:
        registry.begin(START, 5, hold=True).try_consume(registry.by_rule["r"], {"a": 1})
    assert short.value.need_minor == 1


def test_a_scheduled_budgets_short_names_the_period_it_is_of() -> None:
    registry, budget = _registry(consumed=0, leased=0, leaseholder=True)
    budget.state.next_reset_at = START + timedelta(days=1)
    with pytest.raises(BudgetShort) as short:
        registry.begin(START, 5, hold=True).try_consume(registry.by_rule["r"], {"a": 1})
    assert short.value.period_end == START + timedelta(days=1)


def test_a_new_period_starts_every_lease_at_zero() -> None:
    registry, budget = _registry(consumed=30, leased=30, leaseholder=True)
    budget.state.next_reset_at = START + timedelta(hours=1)
    fresh = budget.effective(START + timedelta(hours=2), 9)
    assert (fresh.consumed_minor, fresh.leased_minor) == (0, 0)  # last period's lease lapsed with it
    with pytest.raises(BudgetShort):  # so the new period's first match asks again
        registry.begin(START + timedelta(hours=2), 9, hold=True).try_consume(registry.by_rule["r"], {"a": 1})


@pytest.mark.parametrize("leaseholder", [True, False])
def test_a_match_over_the_whole_limit_is_skipped_not_held(leaseholder: bool) -> None:
    registry, _ = _registry(consumed=25, leased=30, leaseholder=leaseholder)
    tx = registry.begin(START, 5, hold=True)
    assert not tx.try_consume(registry.by_rule["r"], {"a": 76})  # 25 + 76 > 100: no owner could grant it
    assert tx.commit() == []


@pytest.mark.parametrize("leaseholder", [True, False, None])
def test_a_step_that_may_not_hold_skips_what_its_allowance_cannot_take(leaseholder: bool | None) -> None:
    """A replayed or backtested step (hold False) never waits on another partition: it skips, as on one
    process; one process (no leaseholder) is never held whatever the caller asks."""
    registry, _ = _registry(consumed=25, leased=30, leaseholder=leaseholder)
    over = {True: 6, False: 46, None: 76}[leaseholder]  # one unit past each allowance: 30, 70, 100
    for hold in (False, leaseholder is None):
        tx = registry.begin(START, 5, hold=hold)
        assert not tx.try_consume(registry.by_rule["r"], {"a": over})
        assert tx.commit() == []


def test_issuing_none_of_the_asset_fits_without_a_lease() -> None:
    registry, _ = _registry(consumed=0, leased=0, leaseholder=True)
    tx = registry.begin(START, 5, hold=True)
    assert tx.try_consume(registry.by_rule["r"], {"b": 5})  # another asset: this budget is not asked
    assert tx.commit() == []
