"""A step must never raise anything but ActionFailed for input a client controls.

The dispatcher runs steps with no try/except: any other exception stops the engine, and since the event's inbox
marker is still on disk, the next start re-delivers it and stops again (a poison pill). Each test here feeds one
client-controlled input that does that today, and expects the event to FAIL (or be refused at admission) while the
engine keeps working.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scrip_actor import CounterAction, CreditAction, ScripError, TagAction
from scrip_actor.amounts import AMOUNT_MINOR_MAX
from scrip_actor.model import Target
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


async def test_issuance_beyond_the_amount_bound_fails_the_event_not_the_engine(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount=str(AMOUNT_MINOR_MAX))])
        first = await send(engine, program, "u1", {})
        assert first.status == "COMPLETED"
        # Two participants, each within the bound; the issuance account that funds both is not.
        second = await send(engine, program, "u2", {})
        assert second.status == "FAILED"
        third = await send(engine, program, "u1", {"x": 1})
        assert third.status == "FAILED"
        assert (await engine.verify()).ok


async def test_far_future_event_time_with_relative_expiry(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1", expires_at="720h")])
        try:
            outcome = await send(engine, program, "u", {}, at=datetime(9999, 12, 31, tzinfo=UTC))
        except ScripError:
            pass  # refusing the timestamp at admission would be fine too
        else:
            assert outcome.status == "FAILED"
        after = await send(engine, program, "v", {})
        assert after.status == "COMPLETED"


async def test_two_new_targets_with_anagram_external_ids(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(
            engine,
            program,
            "true",
            [
                TagAction(tag="gift", target=Target(external_id="'ab'")),
                TagAction(tag="gift", target=Target(external_id="'ba'")),
            ],
        )
        outcome = await send(engine, program, "u", {})
        assert outcome.status == "COMPLETED", outcome.error_message
        ab = await engine.get_participant_by_external_id("ab")
        ba = await engine.get_participant_by_external_id("ba")
        assert ab.id != ba.id


async def test_counter_addition_overflowing_the_decimal_context(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "true", [CounterAction(key="n", value="1")])
        first = await send(engine, program, "u", {})
        participant = await engine.get_participant(first.participant_id or "")
        try:
            await engine.set_counter(participant.id, "n", "9" * 1_000_002)
        except ScripError:
            return  # refusing the value would be fine
        outcome = await send(engine, program, "u", {"again": True})
        assert outcome.status in ("FAILED", "COMPLETED")
        after = await send(engine, program, "w", {})
        assert after.status == "COMPLETED"
