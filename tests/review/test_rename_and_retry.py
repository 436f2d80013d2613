"""Renaming a participant: memory says the old external id is free at once, the store's index says so only once the
rename is durable. Lookups that mix the two route work for the old id to the renamed participant."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from scrip_actor import CreditAction, DebitAction, EventSubmit, ParticipantCreate, ParticipantUpdate, TagAction
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import WriteGate, running


async def test_upsert_of_the_old_external_id_while_a_rename_is_in_flight(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        renamed, _ = await engine.create_participant(ParticipantCreate(external_id="a"))
        gate = WriteGate(engine)
        results: dict[str, object] = {}
        gate.close()
        async with trio.open_nursery() as nursery:

            async def rename() -> None:
                await engine.update_participant(renamed.id, ParticipantUpdate(external_id="b"))

            async def upsert() -> None:
                results["upsert"] = await engine.create_participant(
                    ParticipantCreate(external_id="a", first_name="Newcomer")
                )

            nursery.start_soon(rename)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(upsert)
            await trio.testing.wait_all_tasks_blocked()
            gate.open()
        participant, created = results["upsert"]  # type: ignore[misc]
        assert participant.external_id == "a"
        assert created
        b = await engine.get_participant_by_external_id("b")
        assert b.first_name is None, "the upsert for 'a' landed on the participant renamed to 'b'"


async def test_event_for_the_old_external_id_while_a_rename_is_in_flight(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "true", [TagAction(tag="seen")])
        renamed, _ = await engine.create_participant(ParticipantCreate(external_id="a"))
        gate = WriteGate(engine)
        gate.close()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.update_participant, renamed.id, ParticipantUpdate(external_id="b"))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(
                engine.submit, EventSubmit(program_id=program.id, external_id="a", idempotency_key="k", event_data={})
            )
            await trio.testing.wait_all_tasks_blocked()
            gate.open()
        await engine.wait_idle()
        b = await engine.get_participant_by_external_id("b")
        assert "seen" not in b.tags, "the event sent to 'a' after the rename was applied to 'b'"
        a = await engine.get_participant_by_external_id("a")
        assert a.id != renamed.id
        assert "seen" in a.tags


async def test_retry_after_the_created_participant_was_renamed(tmp_path: Path, clock: ManualClock) -> None:
    async with running(tmp_path / "d", clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        await rule(engine, program, "event.kind == 'spend'", [DebitAction(asset_id=asset.id, amount="10")])
        await rule(
            engine,
            program,
            "event.kind == 'earn'",
            [TagAction(tag="earner"), CreditAction(asset_id=asset.id, amount="5")],
        )
        failed = await send(engine, program, "alice", {"kind": "spend"})  # creates alice, then fails
        assert failed.status == "FAILED"
        await send(engine, program, "alice", {"kind": "earn"})
        alice = failed.participant_id or ""
        await engine.update_participant(alice, ParticipantUpdate(external_id="alice-2"))
        await engine.retry_event(failed.id)
        await engine.wait_idle()
        kept = await engine.get_participant(alice)
        assert kept.external_id == "alice-2", kept
        assert "earner" in kept.tags
        report = await engine.verify()
        assert report.ok, report.problems
