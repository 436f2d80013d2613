"""Failed operations must leave no trace, and every limit must hold for every participant an event touches."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrip_actor import AssetUpdate, CounterAction, CreditAction, ScripError, TagAction
from scrip_actor.amounts import AMOUNT_MINOR_MAX
from scrip_actor.config import Limits
from scrip_actor.model import Target
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


async def test_refused_fund_leaves_no_hole_in_the_journal(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, policy="PREFUNDED", scale=0)
        await engine.fund(program.id, asset.id, str(AMOUNT_MINOR_MAX))
        with pytest.raises(ScripError):
            await engine.fund(program.id, asset.id, "1")  # the wallet would exceed the bound: a clean refusal
        await engine.burn(program.id, asset.id, "5")
        with pytest.raises(ScripError):
            # A burn goes to SYSTEM_BREAKAGE, not back to SYSTEM_ISSUANCE, which stays at its bound.
            await engine.fund(program.id, asset.id, "1")
        report = await engine.verify()
        assert report.ok, report.problems
        assert report.journal_entries == 2  # the two refusals left no trace and no gap


async def test_limits_hold_for_targets_too(tmp_path: Path, clock: ManualClock) -> None:
    limits = Limits(tags_per_participant_max=2)
    async with running(tmp_path / "d", clock, limits=limits) as engine:
        program, _ = await program_with_asset(engine)
        friend = Target(external_id="'friend'")
        await rule(
            engine,
            program,
            "true",
            [TagAction(tag="a", target=friend), TagAction(tag="b", target=friend), TagAction(tag="c", target=friend)],
        )
        outcome = await send(engine, program, "u", {})
        assert outcome.status == "FAILED", "a target with 3 tags exceeds tags_per_participant_max=2"


async def test_lowering_max_below_a_rule_amount_is_all_or_nothing(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="100")])
        try:
            updated = await engine.update_asset(asset.id, AssetUpdate(max_transaction_amount="50"))
        except ScripError:
            # Refused: then nothing may have changed.
            assert (await engine.get_asset(asset.id)).max_transaction_amount is None
        else:
            # Accepted: it is durable, and the rule's action now fails the event with the reason.
            assert updated.max_transaction_amount == "50"
            outcome = await send(engine, program, "u", {})
            assert outcome.status == "FAILED"


async def test_counter_addition_is_exact_or_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "event.add", [CounterAction(key="n", value="1")])
        created = await send(engine, program, "u", {"add": False})
        big = "1" + "0" * 80
        try:
            await engine.set_counter(created.participant_id or "", "n", big)
        except ScripError:
            return  # a bound on counter values would be fine
        outcome = await send(engine, program, "u", {"add": True})
        counters = (await engine.get_participant(created.participant_id or "")).counters
        if outcome.status == "COMPLETED":
            assert int(counters["n"]) == int(big) + 1, counters["n"]
        else:
            assert counters["n"] == big
