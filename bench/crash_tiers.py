"""Crash trial across tier boundaries: SIGKILL the server while the sweeper works through period ends.

A PERIOD_BASED tier with rolling 2-second periods (``qualification_period: NONE``, ``duration: 2s``), one level
``silver`` earned by ``spend >= 1``, DROP_TO_QUALIFYING, rollover NONE. Each participant gets one purchase
(``spend`` 1: silver at once). Its first period end keeps silver (the counter qualified) and resets ``spend`` to
0; the second drops it to rank 0. The server is killed at a random moment while those ends are being swept, then
restarted on the same data directory.

What the trial checks once the sweeper has caught up:

* nothing lost: every participant ended at rank 0 with ``spend`` 0;
* nothing twice: each participant's state history holds exactly one lifecycle reset of ``spend`` and exactly the
  tier changes ``None -> silver`` (the purchase) and ``silver -> None`` (the second period end), in that order;
* verify passes.

Run it with ``python -m bench.crash --kinds tier_boundary --trials 5``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.crash import ServerProcess, TrialResult, all_pages, expect, run_verify, setup_program

__all__ = ["tier_boundary_trial"]

_TIER = {
    "key": "status",
    "levels": [{"key": "silver", "rank": 1, "qualification": {"criteria": [{"counter": "spend", "threshold": 1}]}}],
    "lifecycle": {
        "retention": {"mode": "PERIOD_BASED", "duration": "2s"},
        "qualification_period": {"type": "NONE"},
        "downgrade_policy": {"mode": "DROP_TO_QUALIFYING"},
        "counters": {"rollover": "NONE", "qualifying": ["spend"]},
    },
}


async def _setup(client: httpx.AsyncClient) -> str:
    program_id, _ = await setup_program(client)
    await expect(client, "POST", f"/v1/programs/{program_id}/tiers", 201, json=_TIER)
    rule = {
        "program_id": program_id,
        "name": "spend",
        "condition": "true",
        "actions": [{"type": "COUNTER", "key": "spend", "value": "1"}],
    }
    await expect(client, "POST", "/v1/rules", 201, json=rule)
    return program_id


async def _purchases(client: httpx.AsyncClient, program_id: str, participants: int) -> None:
    """One purchase per participant, all COMPLETED before the clock of the kill starts."""
    ids = []
    for number in range(participants):
        body = {
            "program_id": program_id,
            "external_id": f"tier{number}",
            "idempotency_key": f"tier-{number}",
            "event_data": {"type": "purchase"},
        }
        ids.append((await expect(client, "POST", "/v1/events", 202, json=body))["id"])
    with trio.fail_after(30):
        for event_id in ids:
            while (await expect(client, "GET", f"/v1/events/{event_id}", 200))["status"] != "COMPLETED":
                await trio.sleep(0.02)


async def _settled(client: httpx.AsyncClient, program_id: str, participants: int) -> list[dict[str, Any]]:
    """Wait until every participant is back at rank 0 (the second period end swept); return them."""
    with trio.fail_after(60):
        while True:
            listed = await all_pages(client, "/v1/participants", program_id=program_id)  # slim items: no tiers
            found = [await expect(client, "GET", f"/v1/participants/{item['id']}", 200) for item in listed]
            if len(found) == participants and all(not participant["tiers"] for participant in found):
                return found
            await trio.sleep(0.1)


async def _check_history(client: httpx.AsyncClient, participant: dict[str, Any]) -> None:
    """Exactly one reset of the counter by the lifecycle, exactly one rise and one drop of the tier."""
    path = f"/v1/participants/{participant['id']}/activity/state-history"
    history = (await expect(client, "GET", path, 200, params={"limit": 100}))["data"]  # a few entries each
    tiers = [
        (entry["old_value"], entry["new_value"], entry["source"]) for entry in history if entry["state_type"] == "tier"
    ]
    assert tiers == [(None, "silver", "rule"), ("silver", None, "lifecycle")], (participant["external_id"], tiers)
    resets = [entry for entry in history if entry["state_type"] == "counter" and entry["source"] == "lifecycle"]
    assert [(entry["old_value"], entry["new_value"]) for entry in resets] == [("1", "0")], resets
    assert participant["counters"].get("spend") == "0", participant


async def tier_boundary_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 1.0, kill_max_s: float = 4.5, participants: int = 40
) -> TrialResult:
    """One tier-boundary trial (see the module docstring)."""
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as client:
        program_id = await _setup(client)
        await _purchases(client, program_id, participants)
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    await trio.sleep(kill_after_s)
    server.kill()
    server = ServerProcess.start(data_dir, log_name="restarted")
    try:
        async with server.client() as client:
            for participant in await _settled(client, program_id, participants):
                await _check_history(client, participant)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult("tier_boundary", participants, 0, participants, kill_after_s, time.monotonic() - started_s)
