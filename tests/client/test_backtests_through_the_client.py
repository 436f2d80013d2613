"""Backtests through the client: start a job, poll it to COMPLETED, run one inline, list and page, and the
refusals as typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from scrip_actor import CreditAction, EventSubmit, RuleCreate
from scrip_actor.backtest_model import BacktestCreate, ProposedRule
from scrip_actor.client import AsyncScripClient, BadRequestError, ConflictError, NotFoundError
from tests.client.conftest import program_with_points


async def test_a_backtest_runs_through_the_client(client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    rule = await client.create_rule(
        RuleCreate(
            program_id=program.id, name="one", condition="true", actions=[CreditAction(asset_id=asset_id, amount="1")]
        )  # fmt: skip
    )
    before = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(3):
        accepted = await client.submit_event(
            EventSubmit(program_id=program.id, external_id="u1", idempotency_key=f"k{index}", event_data={})
        )
        await client.wait_for_event(accepted.id)
    window = {"from_": before, "to": datetime.now(UTC) + timedelta(seconds=1)}
    started = await client.create_backtest(program.id, BacktestCreate(rules=None, **window))
    assert started.status == "RUNNING"
    with trio.fail_after(20):
        while True:
            job = await client.get_backtest(program.id, started.id)
            if job.status != "RUNNING":
                break
            await trio.sleep(0.02)
    assert job.status == "COMPLETED"
    assert [(row.credited, row.asset_id) for row in job.totals] == [("3.00", asset_id)]
    tripled = ProposedRule(rule_id=rule.id, name="three", condition="true", actions=[CreditAction(asset_id=asset_id, amount="3")])  # fmt: skip
    inline = await client.run_backtest(program.id, BacktestCreate(rules=[tripled], **window))
    assert inline.status == "COMPLETED"
    assert inline.difference[0].credited == "6.00"
    assert [item.id async for item in client.iter_backtests(program.id, limit=1)] == [inline.id, started.id]
    with pytest.raises(ConflictError):
        await client.cancel_backtest(program.id, started.id)
    with pytest.raises(NotFoundError):
        await client.get_backtest(program.id, "nope")
    broken = ProposedRule(name="x", condition="event.", actions=[CreditAction(asset_id=asset_id, amount="1")])
    with pytest.raises(BadRequestError):
        await client.create_backtest(program.id, BacktestCreate(rules=[broken], **window))
