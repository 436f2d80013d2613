"""The engine's real backpressure, seen through the client: a batch beyond the in-flight limit comes back with the
excess items refused as ``too_many_requests`` (the admission queue's own answer, not a simulated one), and the
refused events, resent with their keys once the queue drained, are accepted, each exactly once."""

from __future__ import annotations

from pathlib import Path

from scrip_actor.client import AsyncScripClient
from scrip_actor.model import EventSubmit, ProgramCreate
from tests.client.conftest import API_KEY, FAST_RETRY, running_server


async def test_refused_items_resent_with_their_keys_are_accepted_once(tmp_path: Path) -> None:
    async with (
        running_server(tmp_path / "data", inflight_events_max=5) as server,
        AsyncScripClient(server.base_url, API_KEY, retry=FAST_RETRY) as client,
    ):
        program = await client.create_program(ProgramCreate(name="Busy"))
        events = [
            EventSubmit(program_id=program.id, idempotency_key=f"k{n}", external_id="busy", event_data={"n": n})
            for n in range(12)
        ]
        result = await client.submit_event_batch(events)
        assert (result.total, result.success_count, result.error_count) == (12, 5, 7)
        refused = [item.index for item in result.results if item.error is not None]
        assert {result.results[i].error.code for i in refused} == {"too_many_requests"}  # type: ignore[union-attr]

        rounds = 0
        while refused:  # what an application does: resend the refused ones, with their keys, once drained
            rounds += 1
            await server.engine.wait_idle()
            pending = [events[i] for i in refused]
            again = await client.submit_event_batch(pending)
            assert again.success_count == min(5, len(pending))
            refused = [refused[item.index] for item in again.results if item.error is not None]
        assert rounds == 2
        walked = [event.idempotency_key async for event in client.iter_events(program_id=program.id, limit=5)]
        assert sorted(walked) == sorted(f"k{n}" for n in range(12))  # every event once, none twice
