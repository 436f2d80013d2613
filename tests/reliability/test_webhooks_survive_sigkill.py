"""Issue 14's crash trial: SIGKILL a real ``scrip serve`` while webhook deliveries are pending, restart it, and check
that every committed change is reported at least once and nothing is reported that did not commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio
from cryptography.fernet import Fernet

from bench.crash import ServerProcess
from tests.webhook_receiver import Receiver, receiving

SETTINGS = {
    "SCRIP_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
    "SCRIP_WEBHOOKS_SECRET_KEY": Fernet.generate_key().decode(),
    "SCRIP_WEBHOOKS_RETRY_BASE_S": "0.05",
    "SCRIP_WEBHOOKS_RETRY_MAX_S": "0.2",
    "SCRIP_WEBHOOKS_POLL_INTERVAL_S": "0.05",
}
EVENTS = 80
KILL_AFTER = 40


async def _setup(client: httpx.AsyncClient, receiver: Receiver) -> str:
    endpoint = (
        await client.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "enabled_events": ["balance.credited", "event.completed"]},
        )
    ).json()
    receiver.secrets.append(endpoint["secret"])
    program = (await client.post("/v1/programs", json={"name": "Crash"})).json()
    asset = {
        "program_id": program["id"],
        "name": "Points",
        "symbol": "PTS",
        "inventory_mode": "SIMPLE",
        "issuance_policy": "UNLIMITED",
        "scale": 0,
    }
    asset_id = (await client.post("/v1/assets", json=asset)).json()["id"]
    rule = {
        "program_id": program["id"],
        "name": "Points",
        "condition": "true",
        "actions": [{"type": "CREDIT", "asset_id": asset_id, "amount": "1"}],
    }
    assert (await client.post("/v1/rules", json=rule)).status_code == 201
    return str(program["id"])


async def _submit(client: httpx.AsyncClient, program_id: str, number: int) -> str | None:
    body = {
        "program_id": program_id,
        "external_id": f"user-{number % 7}",
        "idempotency_key": f"order-{number}",
        "event_data": {"n": number},
    }
    try:
        response = await client.post("/v1/events", json=body)
    except httpx.HTTPError:
        return None  # cut off by the kill: it may or may not have been accepted
    return str(response.json()["id"]) if response.status_code == 202 else None


async def _settled(client: httpx.AsyncClient, acknowledged: list[str]) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    with trio.fail_after(60):
        for event_id in acknowledged:
            while True:
                event = (await client.get(f"/v1/events/{event_id}")).json()
                if event["status"] in ("COMPLETED", "FAILED"):
                    events[event_id] = event
                    break
                await trio.sleep(0.02)
    return events


async def test_sigkill_with_deliveries_pending_reports_every_committed_change_and_nothing_else(tmp_path: Path) -> None:
    async with receiving() as receiver:
        receiver.mode = "flaky"
        server = ServerProcess.start(tmp_path / "data", SETTINGS)
        acknowledged: list[str] = []
        try:
            async with server.client() as client:
                program_id = await _setup(client, receiver)
                for number in range(EVENTS):
                    if number == KILL_AFTER:
                        server.kill()
                        pending_at_kill = 2 * KILL_AFTER - len(receiver.delivered)
                    event_id = await _submit(client, program_id, number)
                    if event_id is not None:
                        acknowledged.append(event_id)
            assert len(acknowledged) == KILL_AFTER
            server = ServerProcess.start(tmp_path / "data", SETTINGS, log_name="restarted")
            async with server.client() as client:
                events = await _settled(client, acknowledged)
                assert all(event["status"] == "COMPLETED" for event in events.values())
                expected = set(acknowledged)

                def all_completed_reported(got: Receiver) -> bool:
                    reported = {
                        d.body["data"]["event_id"] for d in got.delivered if d.body["type"] == "event.completed"
                    }
                    return reported == expected

                await receiver.wait_until(all_completed_reported)
                entries = {entry for event in events.values() for entry in event["journal_entry_ids"]}
                # Let the worker finish anything still queued, then judge every request the receiver ever got.
                await trio.sleep(0.5)
        finally:
            server.stop()
        assert pending_at_kill > 0, "the kill should find deliveries still to send"
        assert receiver.unverified == 0
        by_id: dict[str, dict[str, Any]] = {}
        for delivery in receiver.requests:
            body = delivery.body
            assert by_id.setdefault(body["id"], body) == body, "a webhook id names one event, resent or not"
            data = body["data"]
            if body["type"] == "event.completed":
                assert data["event_id"] in events, "reported an event that was never acknowledged"
                assert data["journal_entry_ids"] == events[data["event_id"]]["journal_entry_ids"]
            else:
                assert data["journal_entry_id"] in entries, "reported a credit that did not commit"
        credited = {b["data"]["journal_entry_id"] for b in by_id.values() if b["type"] == "balance.credited"}
        delivered_ids = {d.body["id"] for d in receiver.delivered}
        assert credited == entries, "every committed credit is reported"
        assert delivered_ids == set(by_id), "every reported event was in the end delivered"
