"""Automations through the client: create, list, fire a fan-out, read its SYSTEM events, archive twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from scrip_actor.automations import AutomationCreate, AutomationUpdate, Trigger
from scrip_actor.client import AsyncScripClient
from scrip_actor.model import ParticipantCreate
from tests.client.conftest import program_with_points


async def _status(client: AsyncScripClient, program_id: str, automation_id: str) -> str:
    return (await client.get_automation(program_id, automation_id)).execution_status


async def _completed_system_events(client: AsyncScripClient, program_id: str) -> int:
    return len((await client.list_events(program_id=program_id, event_type="SYSTEM", status="COMPLETED")).data)


async def _until(read: Callable[[], Awaitable[Any]], expected: Any) -> None:
    with trio.fail_after(10):
        while True:
            if await read() == expected:
                return
            await trio.sleep(0.02)


async def test_an_immediate_fan_out_through_the_client(client: AsyncScripClient) -> None:
    program, _ = await program_with_points(client)
    for n in range(3):
        await client.upsert_participant(ParticipantCreate(external_id=f"m{n}", program_id=program.id))
    body = AutomationCreate(name="hello", trigger=Trigger(type="immediate"), scope="participants", event_name="hi")
    created = await client.create_automation(program.id, body)
    await _until(lambda: _status(client, program.id, created.id), "completed")
    assert [a.id async for a in client.iter_automations(program.id, trigger_type="immediate")] == [created.id]
    await _until(lambda: _completed_system_events(client, program.id), 3)
    renamed = await client.update_automation(program.id, created.id, AutomationUpdate(name="greeting"))
    assert renamed.name == "greeting"
    assert (await client.list_subscriptions(program.id, created.id)).data == []
    archived = await client.archive_automation(program.id, created.id)
    assert (await client.archive_automation(program.id, created.id)) == archived  # a repeated DELETE: the same
