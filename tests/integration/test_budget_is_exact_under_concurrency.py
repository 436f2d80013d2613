"""A rule budget is shared by every participant: many concurrent events from many participants, over a real
server, racing for its last units never take it one unit over; what it consumed is exactly what the rule credited;
every skipped match would still not fit; and all of it survives a restart (docs/budgets.md)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve
from tests.conftest import small_config
from tests.http.conftest import API_KEY, LIMITS, Api

LIMIT = 1_000  # whole points (scale 0)
EVENTS = 120
PARTICIPANTS = 24


@asynccontextmanager
async def _server(config: Config) -> AsyncIterator[Api]:
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(API_KEY), limits=LIMITS))
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            yield Api(client, engine, base_url)
        await engine.wait_idle()
        report = await engine.verify()
        assert report.ok, report.problems
        nursery.cancel_scope.cancel()


async def _setup(api: Api) -> tuple[str, str, str]:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Race"})
    asset = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "symbol": "PTS",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "event.amount"}]
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Capped",
            "condition": "true",
            "actions": credit,
            "budgets": [{"asset_id": asset["id"], "limit": str(LIMIT)}],
        },
    )
    return program["id"], asset["id"], rule["id"]


async def _race(api: Api, program_id: str, amounts: list[int], tag: str) -> list[dict[str, Any]]:
    """Send every event at once (one task each, many participants); return them processed."""
    accepted: list[dict[str, Any]] = []

    async def send(number: int, amount: int) -> None:
        body = {
            "program_id": program_id,
            "external_id": f"p{number % PARTICIPANTS}",
            "idempotency_key": f"{tag}-{number}",
            "event_data": {"amount": amount},
        }
        accepted.append(await api.ok("POST", "/v1/events", 202, json=body))

    async with trio.open_nursery() as nursery:
        for number, amount in enumerate(amounts):
            nursery.start_soon(send, number, amount)
    await api.engine.wait_idle()
    return [await api.ok("GET", f"/v1/events/{event['id']}") for event in accepted]


def _account(events: list[dict[str, Any]], amounts_by_key: dict[str, int]) -> tuple[int, list[int]]:
    credited, skipped = 0, []
    for event in events:
        assert event["status"] == "COMPLETED", event
        (evaluation,) = event["rule_evaluations"]
        amount = amounts_by_key[event["idempotency_key"]]
        if evaluation["outcome"] == "MATCHED":
            credited += amount
            assert len(event["journal_entry_ids"]) == 1
        else:
            assert (evaluation["outcome"], evaluation["status"], evaluation["reason"]) == (
                "SKIPPED",
                "SKIPPED",
                "BUDGET_EXCEEDED",
            ), evaluation
            assert event["journal_entry_ids"] == []
            skipped.append(amount)
    return credited, skipped


async def test_many_events_race_for_the_last_units_and_never_exceed(tmp_path: Path) -> None:
    config = small_config(tmp_path / "data")
    config = msgspec.structs.replace(config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2))
    generator = random.Random(13)
    amounts = [generator.randint(1, 40) for _ in range(EVENTS)]  # ~2,460 asked for 1,000
    async with _server(config) as api:
        program_id, _asset_id, rule_id = await _setup(api)
        events = await _race(api, program_id, amounts, "a")
        credited, skipped = _account(events, {f"a-{n}": amount for n, amount in enumerate(amounts)})
        budget = (await api.ok("GET", f"/v1/rules/{rule_id}"))["budgets"][0]
        assert int(budget["consumed"]) == credited <= LIMIT
        assert skipped, "the race must reach the limit"
        assert all(credited + amount > LIMIT for amount in skipped)  # each skip would still not fit: none in error
        issued = sum(
            int(p["amount"])
            for page in [await api.ok("GET", "/v1/journal-entries", params={"rule_id": rule_id, "limit": 200})]
            for entry in page["data"]
            for p in entry["postings"]
            if p["entity_type"] == "PARTICIPANT"
        )
        assert issued == credited
    left = LIMIT - credited
    async with _server(config) as api:  # a restart keeps what was consumed
        assert int((await api.ok("GET", f"/v1/rules/{rule_id}"))["budgets"][0]["consumed"]) == credited
        finals = await _race(api, program_id, [left + 1, *([1] * (left + 5))], "b")
        amounts_b = {"b-0": left + 1, **{f"b-{n}": 1 for n in range(1, left + 6)}}
        more, skipped_b = _account(finals, amounts_b)
        assert more == left  # the last units went, one each, and not one more
        assert len(skipped_b) == 6
        assert (await api.ok("GET", f"/v1/rules/{rule_id}"))["budgets"][0]["consumed"] == str(LIMIT)
