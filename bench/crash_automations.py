"""Crash trial for automations: SIGKILL the real server in the middle of a fan-out, restart it, and check that
every participant got exactly one event of that fire (``python -m bench.crash_automations`` runs one trial).

The rule ``event.type == 'promo' -> CREDIT 1`` makes the check a ledger check too: each participant has exactly one
credit entry after the restart, and ``verify`` passes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.crash import ServerProcess, TrialResult, all_pages, expect, run_verify, setup_program

__all__ = ["fan_out_trial"]


async def _automation(client: httpx.AsyncClient, program_id: str, automation_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await expect(client, "GET", f"/v1/programs/{program_id}/automations/{automation_id}", 200)
    return result


async def _members(client: httpx.AsyncClient, program_id: str, count: int) -> None:
    """``count`` participants, made by EXTERNAL events (batches of 100) with no rule matching them."""
    for start in range(0, count, 100):
        events = [
            {
                "program_id": program_id,
                "external_id": f"member-{n:06}",
                "idempotency_key": f"join-{n}",
                "event_data": {"type": "join"},
            }
            for n in range(start, min(count, start + 100))
        ]
        await expect(client, "POST", "/v1/events/batch", 202, json={"events": events})


async def _wait_members(client: httpx.AsyncClient, program_id: str, count: int) -> None:
    with trio.fail_after(120):
        while len(await all_pages(client, "/v1/participants", program_id=program_id)) < count:
            await trio.sleep(0.1)


async def fan_out_trial(workdir: Path, *, participants: int = 2000, kill_after_processed: int = 300) -> TrialResult:
    """Start a fan-out of ``participants``, SIGKILL once ``kill_after_processed`` are handled, restart, check."""
    started_s = time.monotonic()
    data_dir = workdir / "data"
    settings = {"SCRIP_AUTOMATIONS_FANOUT_BATCH_SIZE": "25"}
    server = ServerProcess.start(data_dir, settings)
    async with server.client() as client:
        program_id, asset_id = await setup_program(client)
        await expect(
            client,
            "POST",
            "/v1/rules",
            201,
            json={
                "program_id": program_id,
                "name": "promo",
                "condition": "event.type == 'promo'",
                "actions": [{"type": "CREDIT", "asset_id": asset_id, "amount": "1"}],
            },
        )
        await _members(client, program_id, participants)
        await _wait_members(client, program_id, participants)
        body = {"name": "promo", "trigger": {"type": "immediate"}, "scope": "participants", "event_name": "promo"}
        automation = await expect(client, "POST", f"/v1/programs/{program_id}/automations", 201, json=body)
        with trio.fail_after(60):
            while True:
                seen = await _automation(client, program_id, automation["id"])
                if (seen["participants_processed"] or 0) >= kill_after_processed:
                    break
                await trio.sleep(0.005)
    server.kill()
    assert seen["execution_status"] == "executing", f"the fan-out ended before the kill: {seen}"
    processed_at_kill = seen["participants_processed"]
    server = ServerProcess.start(data_dir, settings, log_name="restarted")
    try:
        async with server.client() as client:
            with trio.fail_after(120):
                while (await _automation(client, program_id, automation["id"]))["execution_status"] != "completed":
                    await trio.sleep(0.05)
            done = await _automation(client, program_id, automation["id"])
            with trio.fail_after(120):
                while await all_pages(client, "/v1/events", program_id=program_id, status="PENDING"):
                    await trio.sleep(0.05)
            events = await all_pages(client, "/v1/events", program_id=program_id, event_type="SYSTEM")
            credits = await all_pages(client, "/v1/journal-entries", asset_id=asset_id)
    finally:
        assert server.stop() == 0
    receivers = [event["participant_id"] for event in events]
    assert len(receivers) == len(set(receivers)) == participants, (len(receivers), len(set(receivers)))
    assert done["participants_processed"] == participants
    credited = [
        posting["entity_id"]
        for entry in credits
        for posting in entry["postings"]
        if posting["entity_type"] == "PARTICIPANT"
    ]
    assert sorted(credited) == sorted(receivers)  # one credit each: the promo rule ran once per participant
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult(
        "automation fan-out",
        participants,
        0,
        len(receivers),
        0.0,
        time.monotonic() - started_s,
        {"processed_at_kill": processed_at_kill},
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        result = trio.run(fan_out_trial, Path(directory))
        print(result, file=sys.stdout)
