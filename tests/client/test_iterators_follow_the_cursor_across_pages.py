"""``iter_*`` methods walk every page by following ``pagination.next_cursor``: every item once, in the server's
order, one request per page, filters kept on every page."""

from __future__ import annotations

import pytest

from scrip_actor.client import AsyncScripClient, ScripClient
from scrip_actor.model import EventSubmit, ParticipantCreate, ProgramCreate
from tests.client.conftest import API_KEY, FAST_RETRY, FlakyProxy, Server, in_thread, program_with_points


@pytest.mark.parametrize(("count", "limit", "pages"), [(0, 3, 1), (1, 1, 1), (6, 3, 2), (7, 3, 3), (7, 200, 1)])
async def test_every_program_once_in_order(
    flaky_proxy: FlakyProxy, client: AsyncScripClient, count: int, limit: int, pages: int
) -> None:
    for number in range(count):
        await client.create_program(ProgramCreate(name=f"Program {number}"))
    whole = (await client.list_programs(limit=200)).data
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
        walked = [program async for program in proxied.iter_programs(limit=limit)]
    assert [p.id for p in walked] == [p.id for p in whole]
    assert len(walked) == count
    assert len(flaky_proxy.seen) == pages
    assert all("cursor" not in seen.path for seen in flaky_proxy.seen)  # the cursor travels in the query string


async def test_filters_hold_on_every_page(client: AsyncScripClient) -> None:
    ours = await client.create_program(ProgramCreate(name="Ours"))
    theirs = await client.create_program(ProgramCreate(name="Theirs"))
    for number in range(5):
        await client.upsert_participant(ParticipantCreate(external_id=f"ours-{number}", program_id=ours.id))
        await client.upsert_participant(ParticipantCreate(external_id=f"theirs-{number}", program_id=theirs.id))
    walked = [p.external_id async for p in client.iter_participants(program_id=ours.id, limit=2)]
    assert sorted(walked) == [f"ours-{number}" for number in range(5)]
    oldest_first = [p.external_id async for p in client.iter_participants(program_id=ours.id, limit=2, sort_dir="asc")]
    assert oldest_first == [f"ours-{number}" for number in range(5)]


async def test_the_sync_iterator_walks_events_page_by_page(server: Server, client: AsyncScripClient) -> None:
    program, _asset_id = await program_with_points(client)
    for number in range(5):
        await client.submit_event(
            EventSubmit(program_id=program.id, idempotency_key=f"e{number}", external_id="ivy", event_data={})
        )

    def walk() -> list[str]:
        with ScripClient(server.base_url, API_KEY) as sync:
            return [event.idempotency_key for event in sync.iter_events(program_id=program.id, limit=2)]

    assert await in_thread(walk) == ["e4", "e3", "e2", "e1", "e0"]  # newest first, as the server lists them
