"""The runtime: passivation under a small cache, overload refusal, and order per participant."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrip_actor import CounterAction, EventSubmit, Overloaded, SetAttributeAction, open_engine
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule


async def test_passivation_keeps_state_exact(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data", actors_resident_max=5)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "true", [CounterAction(key="n", value="1")])
        requests = [
            EventSubmit(program_id=program.id, external_id=f"user{n % 40}", idempotency_key=f"k{n}", event_data={})
            for n in range(400)
        ]
        await engine.submit_batch(requests)
        await engine.wait_idle()
        statistics = engine.statistics()
        assert statistics.passivations > 0
        assert statistics.participants_cached <= 5 + 64
        for n in range(40):
            participant = await engine.get_participant_by_external_id(f"user{n}")
            assert participant.counters == {"n": "10"}
        assert (await engine.verify()).ok


async def test_overload_is_refused_not_queued(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data", inflight_events_max=10)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        results = await engine.submit_batch(
            [
                EventSubmit(program_id=program.id, external_id="u", idempotency_key=f"k{n}", event_data={})
                for n in range(25)
            ]
        )
        accepted = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, Overloaded)]
        assert len(accepted) == 10
        assert len(refused) == 15
        assert refused[0].code == "too_many_requests"
        assert refused[0].retry_after_s >= 1
        # Refusals come back without a traceback: one would tie the error, its frame and the whole result list
        # into a cycle that lingers until a full GC (hundreds of MB under sustained overload).
        assert all(error.__traceback__ is None for error in refused)
        await engine.wait_idle()
        # Once drained, new events are accepted again, and refused ones can be resent with their keys.
        again = await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="k24", event_data={})
        )
        assert again.status == "PENDING"


async def test_events_of_one_participant_apply_in_submission_order(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        await rule(engine, program, "true", [SetAttributeAction(key="last", value_expression="string(int(event.n))")])
        await engine.submit_batch(
            [
                EventSubmit(
                    program_id=program.id, external_id=f"user{n % 3}", idempotency_key=f"k{n}", event_data={"n": n}
                )
                for n in range(300)
            ]
        )
        await engine.wait_idle()
        for user in range(3):
            participant = await engine.get_participant_by_external_id(f"user{user}")
            assert participant.attributes == {"last": str(297 + user)}
        page = await engine.list_events(external_id="user0", limit=200)
        ordered = sorted(page.data, key=lambda e: e.sequence)
        processed = [e.processed_at for e in ordered]
        assert processed == sorted(processed)  # type: ignore[type-var]


async def test_submit_refuses_bad_events(tmp_path: Path, clock: ManualClock) -> None:
    from datetime import datetime

    from scrip_actor import NotFound, ValidationFailed

    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        ok = {"program_id": program.id, "external_id": "u", "idempotency_key": "k", "event_data": {}}
        with pytest.raises(NotFound):
            await engine.submit(EventSubmit(**{**ok, "program_id": "nope"}))  # type: ignore[arg-type]
        for bad in (
            {"idempotency_key": ""},
            {"idempotency_key": "k" * 256},
            {"external_id": ""},
            {"event_data": {"x": "y" * 70000}},
            {"event_data": _deep(20)},
            {"event_timestamp": datetime(2026, 1, 1)},
        ):
            with pytest.raises(ValidationFailed):
                await engine.submit(EventSubmit(**{**ok, **bad}))  # type: ignore[arg-type]


def _deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels):
        value = {"x": value}
    return value


async def test_events_by_participant_id(tmp_path: Path, clock: ManualClock) -> None:
    from scrip_actor import CreditAction, NotFound, ParticipantCreate, ValidationFailed

    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
        participant, _ = await engine.create_participant(ParticipantCreate(external_id="known"))
        event = await engine.submit(
            EventSubmit(program_id=program.id, participant_id=participant.id, idempotency_key="k1", event_data={})
        )
        assert event.external_id == "known"
        await engine.wait_idle()
        assert (await engine.get_participant(participant.id)).balances[0].available == "1.00"
        with pytest.raises(NotFound):
            await engine.submit(
                EventSubmit(program_id=program.id, participant_id="missing", idempotency_key="k2", event_data={})
            )
        with pytest.raises(ValidationFailed):
            await engine.submit(
                EventSubmit(
                    program_id=program.id,
                    participant_id=participant.id,
                    external_id="known",
                    idempotency_key="k3",
                    event_data={},
                )
            )
        with pytest.raises(ValidationFailed):
            await engine.submit(EventSubmit(program_id=program.id, idempotency_key="k4", event_data={}))


async def test_overload_counts_the_bytes_in_flight_not_only_the_events(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data", inflight_event_bytes_max=100_000)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        big = {"blob": "x" * 30_000}  # ~30 KB each: the fourth one would pass 100 KB in flight
        results = await engine.submit_batch(
            [
                EventSubmit(program_id=program.id, external_id="u", idempotency_key=f"k{n}", event_data=big)
                for n in range(10)
            ]
        )
        accepted = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, Overloaded)]
        assert len(accepted) == 3
        assert len(refused) == 7
        assert "bytes" in str(refused[0])
        assert engine.statistics().events_inflight_bytes <= 100_000
        await engine.wait_idle()
        assert engine.statistics().events_inflight_bytes == 0  # released as the events are processed
        again = await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="k9", event_data=big)
        )
        assert again.status == "PENDING"  # a refused event is accepted once the queue drained


async def test_one_event_larger_than_the_byte_bound_still_enters_an_empty_queue(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = small_config(tmp_path / "data", inflight_event_bytes_max=1_000)
    async with open_engine(config=config, clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        lone = await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="k", event_data={"b": "y" * 5_000})
        )
        assert lone.status == "PENDING"
