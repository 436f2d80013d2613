"""A backtest replays the program's recorded events with proposed rules and reports exact, hand-checkable totals.

Each test records a history through the real engine (manual clock: the receipt times, and so the window, are
known), then backtests it and compares the report with the arithmetic done by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from scrip_actor import (
    Conflict,
    CounterAction,
    CreditAction,
    DebitAction,
    Engine,
    NotFound,
    ValidationFailed,
    open_engine,
)
from scrip_actor.backtest_model import Backtest, BacktestCreate, ProposedRule
from scrip_actor.config import BacktestSettings
from scrip_actor.model import BalanceAdjust, BudgetSpec, RuleUpdate
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send

START = datetime(2026, 1, 1, tzinfo=UTC)


def window(
    hours_from: float, hours_to: float, rules: list[ProposedRule] | None = None, **bounds: Any
) -> BacktestCreate:
    return BacktestCreate(
        rules=rules, from_=START + timedelta(hours=hours_from), to=START + timedelta(hours=hours_to), **bounds
    )


def by_asset(rows: list[Any], asset_id: str) -> Any:
    [row] = [row for row in rows if row.asset_id == asset_id]
    return row


async def purchases(engine: Engine, clock: ManualClock, program: Any, amounts: list[tuple[str, float]]) -> None:
    """One purchase per (external id, amount), an hour apart of receipt time, from START + 1h."""
    for external_id, amount in amounts:
        clock.advance(timedelta(hours=1))
        await send(engine, program, external_id, {"type": "purchase", "amount": amount})


async def test_unchanged_rules_reproduce_the_live_totals(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "event.amount >= 10.0", [CreditAction(asset_id=asset.id, amount="event.amount * 0.1")])
    await purchases(engine, clock, program, [("u1", 50.0), ("u2", 5.0), ("u1", 120.0), ("u3", 33.3)])
    report = await engine.backtest(program.id, window(0, 10))
    assert report.status == "COMPLETED", report.failure_reason
    assert report.events_replayed == 4
    assert by_asset(report.totals, asset.id).credited == "20.33"  # 5.00 + 12.00 + 3.33
    assert report.totals == report.actual
    assert by_asset(report.difference, asset.id).credited == "0.00"
    [row] = report.rules
    assert (row.change, row.matches, row.actual_matches, row.credited) == ("unchanged", 3, 3, "20.33")


async def test_a_changed_rule_a_new_rule_and_a_removed_rule_are_counted_by_hand(
    engine: Engine, clock: ManualClock
) -> None:
    program, asset = await program_with_asset(engine)
    base = await rule(engine, program, "event.amount >= 10.0", [CreditAction(asset_id=asset.id, amount="1")])
    await rule(engine, program, "event.amount >= 100.0", [CreditAction(asset_id=asset.id, amount="50")], name="big")
    # hours 1..4; the window [2h, 4h) holds the 2nd and 3rd event only: u2 5.0 and u1 120.0.
    await purchases(engine, clock, program, [("u1", 50.0), ("u2", 5.0), ("u1", 120.0), ("u3", 33.3)])
    proposed = [
        ProposedRule(  # changed: every purchase earns 2
            rule_id=base.id, name="base", condition="true", actions=[CreditAction(asset_id=asset.id, amount="2")]
        ),
        ProposedRule(  # new: a counter and a debit on big purchases
            name="fee",
            condition="event.amount >= 100.0",
            actions=[DebitAction(asset_id=asset.id, amount="0.5"), CounterAction(key="big", value="1")],
        ),
    ]  # "big" is removed
    report = await engine.backtest(program.id, window(1.5, 3.5, proposed))
    assert report.status == "COMPLETED", report.failure_reason
    assert report.events_replayed == 2
    assert report.events_warmup == 1
    # Proposed: 2 + 2 credited, 0.5 debited. Actual: u2 nothing, u1 1 + 50.
    totals, actual = by_asset(report.totals, asset.id), by_asset(report.actual, asset.id)
    assert (totals.credited, totals.debited) == ("4.00", "0.50")
    assert (actual.credited, actual.debited) == ("51.00", "0.00")
    assert by_asset(report.difference, asset.id).credited == "-47.00"
    rows = {(row.name, row.change): row for row in report.rules}
    assert rows["base", "changed"].matches == 2
    assert rows["base", "changed"].actual_matches == 1
    assert rows["base", "changed"].credited == "4.00"
    assert rows["base", "changed"].actual_credited == "1.00"
    assert rows["fee", "new"].rule_id is None
    assert rows["fee", "new"].debited == "0.50"
    assert rows["big", "removed"].matches == 0
    assert rows["big", "removed"].actual_credited == "50.00"
    [asset_report] = report.assets
    assert asset_report.participants_affected == 2
    assert asset_report.distribution.count == 2
    assert asset_report.distribution.max == "2.00"
    assert {event.external_id for event in report.sample} == {"u1", "u2"}


async def test_a_rule_restated_as_it_is_counts_as_unchanged(engine: Engine, clock: ManualClock) -> None:
    """A whole rule set sent back (as the console sends it) names each rule by id; only the edited one changed."""
    program, asset = await program_with_asset(engine)
    credit_one = [CreditAction(asset_id=asset.id, amount="1")]
    base = await rule(engine, program, "event.amount >= 10.0", credit_one, name="base")
    big = await rule(engine, program, "event.amount >= 100.0", credit_one, name="big")
    await purchases(engine, clock, program, [("u1", 50.0), ("u2", 150.0)])
    proposed = [
        ProposedRule(rule_id=base.id, name="base", condition=base.condition, actions=credit_one, order=base.order),
        ProposedRule(rule_id=big.id, name="big", condition="event.amount >= 40.0", actions=credit_one),
    ]
    report = await engine.backtest(program.id, window(0, 10, proposed))
    assert report.status == "COMPLETED", report.failure_reason
    changes = {row.name: row.change for row in report.rules}
    assert changes == {"base": "unchanged", "big": "changed"}
    assert by_asset(report.totals, asset.id).credited == "4.00"  # base 2 + big 2 (was 1)
    assert by_asset(report.actual, asset.id).credited == "3.00"


async def test_state_carries_forward_from_before_the_window_and_within_it(engine: Engine, clock: ManualClock) -> None:
    """A counter built before the window (by the old rules) and within it (by the proposed ones) is what later
    events of the window see."""
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CounterAction(key="visits", value="1")], name="count")
    await purchases(engine, clock, program, [("u1", 1.0), ("u1", 1.0), ("u1", 1.0), ("u1", 1.0)])
    proposed = [
        ProposedRule(name="count", condition="true", actions=[CounterAction(key="visits", value="1")]),
        ProposedRule(
            name="third visit",
            condition="participant.counters.visits == 2.0",  # before this event's own count
            actions=[CreditAction(asset_id=asset.id, amount="7")],
        ),
    ]
    # Window: events 2..4 (hours 2, 3, 4). visits before them: 1 (built live), then 2, then 3.
    report = await engine.backtest(program.id, window(1.5, 10, proposed))
    assert report.events_warmup == 1
    assert by_asset(report.totals, asset.id).credited == "7.00"


async def test_a_prefunded_wallet_runs_out_in_the_sandbox_as_it_would_live(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine, policy="PREFUNDED")
    await engine.fund(program.id, asset.id, "25")
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="5")])
    await purchases(engine, clock, program, [("u1", 1.0), ("u2", 1.0), ("u3", 1.0)])  # wallet 25 -> 10
    proposed = [ProposedRule(name="more", condition="true", actions=[CreditAction(asset_id=asset.id, amount="4")])]
    report = await engine.backtest(program.id, window(1.5, 10, proposed))  # wallet at the start: 20; 4 + 4
    assert by_asset(report.totals, asset.id).credited == "8.00"
    [row] = report.assets
    assert (row.wallet_draw, row.actual_wallet_draw, row.wallet_failures) == ("8.00", "10.00", 0)
    greedy = [ProposedRule(name="greedy", condition="true", actions=[CreditAction(asset_id=asset.id, amount="15")])]
    report = await engine.backtest(program.id, window(1.5, 10, greedy))  # 20: the first 15 fits, the second not
    [row] = report.assets
    assert (row.credited, row.wallet_draw, row.wallet_failures) == ("15.00", "15.00", 1)
    assert report.events_failed == 1
    assert report.events_failed_actual == 0
    [failed] = [event for event in report.sample if event.failure]
    assert "wallet" in failed.failure


async def test_a_budget_caps_the_proposed_rule_and_counts_its_hits(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine)
    await purchases(engine, clock, program, [("u1", 1.0), ("u2", 1.0), ("u3", 1.0), ("u4", 1.0)])
    capped = ProposedRule(
        name="capped",
        condition="true",
        actions=[CreditAction(asset_id=asset.id, amount="4")],
        budgets=[BudgetSpec(asset_id=asset.id, limit="10")],
    )
    report = await engine.backtest(program.id, window(0, 10, [capped]))
    [row] = report.rules
    assert (row.matches, row.budget_hits, row.credited) == (2, 2, "8.00")


async def test_bad_requests_are_refused_naming_the_field(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    cases = [
        (window(5, 1), "to"),
        (window(0, 24 * 93), "to"),
        (window(0, 1, events_max=10**9), "events_max"),
        (window(0, 1, time_max_s=10**6), "time_max_s"),
        (
            window(
                0,
                1,
                [ProposedRule(name="x", condition="event.", actions=[CreditAction(asset_id=asset.id, amount="1")])],
            ),
            "rules[0].condition",
        ),  # fmt: skip
        (
            window(
                0,
                1,
                [
                    ProposedRule(
                        rule_id="nope",
                        name="x",
                        condition="true",
                        actions=[CreditAction(asset_id=asset.id, amount="1")],
                    )
                ],
            ),
            "rules[0].rule_id",
        ),  # fmt: skip
        (
            window(
                0, 1, [ProposedRule(name="x", condition="true", actions=[CreditAction(asset_id="nope", amount="1")])]
            ),
            "rules[0].actions[0].asset_id",
        ),  # fmt: skip
    ]
    for request, field in cases:
        with pytest.raises(ValidationFailed) as refused:
            await engine.backtests.start(program.id, request)
        fields = [item["field"] for item in refused.value.details["fields"]]
        assert any(name.startswith(field) for name in fields), (field, refused.value.details)
    with pytest.raises(NotFound):
        await engine.backtests.start("no-such-program", window(0, 1))
    with pytest.raises(NotFound):
        engine.backtests.get(program.id, "no-such-backtest")


async def test_a_run_over_its_event_bound_fails_with_its_partial_counts(engine: Engine, clock: ManualClock) -> None:
    program, _ = await program_with_asset(engine)
    await purchases(engine, clock, program, [("u1", 1.0)] * 3)
    report: Backtest = await engine.backtest(program.id, window(0, 10, events_max=2))
    assert report.status == "FAILED"
    assert report.failure_reason is not None
    assert "events_max" in report.failure_reason
    assert report.events_replayed == 2


async def test_a_cancelled_run_ends_cancelled_and_one_more_than_running_max_is_refused(
    engine: Engine, clock: ManualClock
) -> None:
    program, _ = await program_with_asset(engine)
    await purchases(engine, clock, program, [("u1", 1.0)] * 3)
    started = await engine.backtests.start(program.id, window(0, 10))
    assert started.status == "RUNNING"
    with pytest.raises(Conflict) as refused:  # backtests.running_max = 1, and the first has not run yet
        await engine.backtests.start(program.id, window(0, 10))
    assert refused.value.code == "backtest_running"
    engine.backtests.cancel(program.id, started.id)
    finished = await engine.backtests.wait(program.id, started.id)
    assert finished.status == "CANCELLED"
    assert finished.finished_at is not None
    with pytest.raises(Conflict):
        engine.backtests.cancel(program.id, started.id)  # only a RUNNING one
    listed = engine.backtests.list(program.id)
    assert [job.id for job in listed.data] == [started.id]


async def test_a_run_over_its_time_bound_fails_naming_the_bound(engine: Engine, clock: ManualClock) -> None:
    program, _ = await program_with_asset(engine)
    await purchases(engine, clock, program, [("u1", 1.0)] * 2)
    report = await engine.backtest(program.id, window(0, 10, time_max_s=1e-9))
    assert report.status == "FAILED"
    assert report.failure_reason is not None
    assert "time_max_s" in report.failure_reason
    assert report.finished_at is not None


async def test_on_the_engines_thread_a_run_reports_the_same_and_cancels_the_same(tmp_path: Path) -> None:
    """``backtests.isolation = "task"``: the replay runs as a task of the engine, slice by slice."""
    clock = ManualClock(START)
    config = small_config(tmp_path / "data")
    config = msgspec.structs.replace(config, backtests=BacktestSettings(isolation="task", slice_ms=0.05))
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="2")])
        await purchases(engine, clock, program, [(f"u{n}", 1.0) for n in range(40)])
        doubled = [ProposedRule(name="four", condition="true", actions=[CreditAction(asset_id=asset.id, amount="4")])]
        report = await engine.backtest(program.id, window(0, 100, doubled))
        assert report.status == "COMPLETED"
        assert (by_asset(report.totals, asset.id).credited, by_asset(report.actual, asset.id).credited) == (
            "160.00",
            "80.00",
        )
        started = await engine.backtests.start(program.id, window(0, 100))
        engine.backtests.cancel(program.id, started.id)
        cancelled = await engine.backtests.wait(program.id, started.id)
        assert cancelled.status == "CANCELLED"
        assert cancelled.events_replayed < 40
        await engine.wait_idle()
        assert (await engine.verify()).ok


async def test_operators_changes_are_not_replayed_and_the_report_says_so(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    await purchases(engine, clock, program, [("u1", 1.0)])
    participant = await engine.get_participant_by_external_id("u1")
    await engine.adjust_balance(
        participant.id,
        BalanceAdjust(program_id=program.id, asset_id=asset.id, type="CREDIT", amount="5", description="goodwill"),
    )
    await engine.add_tags(participant.id, ["vip"])
    report = await engine.backtest(program.id, window(0, 10))
    assert report.status == "COMPLETED"
    assert report.totals == report.actual  # the adjustment is no event's: on neither side
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith("1 balance operations")
    assert report.warnings[1].startswith("1 changes of tags")


async def test_the_warm_up_replays_each_event_with_the_rule_version_live_at_it(
    engine: Engine, clock: ManualClock
) -> None:
    """v1 counts visits; v2 credits the count and adds 10. Before the window v1 ran (n = 2), in it v2 (2, then
    12): had the warm-up used v2, the window would start from n = 20 and credit 20 + 30."""
    program, asset = await program_with_asset(engine)
    counted = await rule(engine, program, "true", [CounterAction(key="n", value="1")], name="count")
    await purchases(engine, clock, program, [("u1", 1.0), ("u1", 1.0)])
    await engine.update_rule(
        counted.id,
        RuleUpdate(
            actions=[
                CreditAction(asset_id=asset.id, amount="participant.counters.n"),
                CounterAction(key="n", value="10"),
            ]
        ),
    )
    await purchases(engine, clock, program, [("u1", 1.0), ("u1", 1.0)])  # hours 3 and 4
    report = await engine.backtest(program.id, window(2.5, 10))
    assert report.events_warmup == 2
    assert by_asset(report.actual, asset.id).credited == "14.00"
    assert report.totals == report.actual


async def test_the_distribution_of_per_event_amounts_is_exact(engine: Engine, clock: ManualClock) -> None:
    program, asset = await program_with_asset(engine)
    amounts = [0.5, 2.0, 2.0, 15.0, 150.0, 20000.0]
    await purchases(engine, clock, program, [(f"u{n}", amount) for n, amount in enumerate(amounts)])
    credit = ProposedRule(
        name="all", condition="true", actions=[CreditAction(asset_id=asset.id, amount="event.amount")]
    )
    report = await engine.backtest(program.id, window(0, 10, [credit]))
    distribution = by_asset(report.assets, asset.id).distribution
    assert (distribution.count, distribution.min, distribution.p50, distribution.p90, distribution.max) == (
        6,
        "0.50",
        "2.00",  # nearest rank: the 3rd of 6
        "20000.00",  # the 6th of 6 (ceil(0.9 * 6) = 6)
        "20000.00",
    )
    assert [(bucket.lower, bucket.upper, bucket.count) for bucket in distribution.histogram] == [
        ("0", "1", 1),
        ("1", "10", 2),
        ("10", "100", 1),
        ("100", "1000", 1),
        ("1000", "10000", 0),
        ("10000", None, 1),
    ]
    assert by_asset(report.totals, asset.id).credited == "20169.50"
    assert report.participants_affected == 6
