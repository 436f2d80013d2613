"""An event waiting in its mailbox is processed as it was admitted: for the participant it named, under the rules in
force at its inbox position — whatever changes meanwhile, and identically when a restart replays it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from scrip_actor import (
    CreditAction,
    Engine,
    EventSubmit,
    NotFound,
    ParticipantCreate,
    ParticipantUpdate,
    RuleUpdate,
    open_engine,
)
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule

QUEUED = 600  # deep enough that most of them are still in the mailbox when the test changes something


def _events(program_id: str, count: int, **address: str) -> list[EventSubmit]:
    return [
        EventSubmit(program_id=program_id, idempotency_key=f"k{n}", event_data={"n": n}, **address)  # type: ignore[arg-type]
        for n in range(count)
    ]


async def _admit_then(engine: Engine, requests: list[EventSubmit], change: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Admit ``requests`` and make ``change`` while most of them still wait in their mailbox (asserted)."""
    results: list[Any] = []

    async def admit() -> None:
        results.extend(await engine.submit_batch(requests))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit)
        for _ in range(3):  # the batch is admitted in one go; the dispatcher runs 32 steps per checkpoint
            await trio.lowlevel.checkpoint()
        assert engine.statistics().events_inflight > len(requests) // 2, "the events were processed too soon"
        await change()
    assert all(not isinstance(result, Exception) for result in results)
    return results


async def _credited(engine: Engine, participant_id: str) -> int:
    participant = await engine.get_participant(participant_id)
    return sum(int(balance.available.split(".")[0]) for balance in participant.balances)


async def test_events_sent_by_participant_id_reach_it_when_it_is_renamed_while_they_wait(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    named, _ = await engine.create_participant(ParticipantCreate(external_id="old-name"))
    results = await _admit_then(
        engine,
        _events(program.id, QUEUED, participant_id=named.id),
        lambda: engine.update_participant(named.id, ParticipantUpdate(external_id="new-name")),
    )
    await engine.wait_idle()

    assert await _credited(engine, named.id) == QUEUED
    with pytest.raises(NotFound):
        await engine.get_participant_by_external_id("old-name")  # nobody was created under the old name
    for result in results:
        event = await engine.get_event(result.id)  # type: ignore[union-attr]
        assert event.status == "COMPLETED", event.error_message
        assert event.participant_id == named.id


async def test_event_by_participant_id_is_bound_to_it_from_admission(engine: Engine) -> None:
    program, _ = await program_with_asset(engine)
    named, _ = await engine.create_participant(ParticipantCreate(external_id="someone"))
    submitted = await engine.submit(
        EventSubmit(program_id=program.id, participant_id=named.id, idempotency_key="k", event_data={})
    )
    assert submitted.participant_id == named.id


async def test_a_rule_change_applies_only_to_events_admitted_after_it(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    created = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
    before = await _admit_then(
        engine,
        _events(program.id, QUEUED, external_id="u"),
        lambda: engine.update_rule(created.id, RuleUpdate(condition="false")),
    )
    after = await engine.submit(
        EventSubmit(program_id=program.id, external_id="u", idempotency_key="after", event_data={})
    )
    await engine.wait_idle()

    for result in before:
        event = await engine.get_event(result.id)  # type: ignore[union-attr]
        assert [e.status for e in event.rule_evaluations] == ["MATCHED"], event.sequence
    assert [e.status for e in (await engine.get_event(after.id)).rule_evaluations] == ["NOT_MATCHED"]
    participant = await engine.get_participant_by_external_id("u")
    assert await _credited(engine, participant.id) == QUEUED


async def test_a_replay_after_restart_uses_the_rules_in_force_at_each_position(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        first = await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")], order=10)
        before = await _admit_then(
            engine,
            _events(program.id, QUEUED, external_id="u"),
            lambda: engine.update_rule(first.id, RuleUpdate(actions=[CreditAction(asset_id=asset.id, amount="100")])),
        )
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1000")], order=20)
        after = await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="after", event_data={})
        )
        # Leave at once: most events are still in their mailboxes, so the reopened engine replays them.
    async with open_engine(config=config, clock=clock) as engine:
        await engine.wait_idle()
        for result in before:
            event = await engine.get_event(result.id)  # type: ignore[union-attr]
            assert event.status == "COMPLETED"
            assert [e.rule_id for e in event.rule_evaluations] == [first.id], event.sequence
        late = await engine.get_event(after.id)
        assert len(late.rule_evaluations) == 2
        participant = await engine.get_participant_by_external_id("u")
        assert await _credited(engine, participant.id) == QUEUED * 1 + 100 + 1000
        report = await engine.verify()
        assert report.ok, report.problems
