"""Reads through the front: a GET naming one participant or record is answered by the partition holding it,
exactly as that partition's reader answers; a list is fanned out and merged, and paging it with a small limit
yields every item exactly once, in the documented order; a partition without a reader makes its reads 503.

Real Tansu, the real front (Hypercorn on loopback), real engine roles with their readers, real LMDB.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._engine_reads import READER_FILE, ReaderAdvert, read_advert
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._front_reads import open_readers
from scrip_actor.partitioned._partition_ids import partition_of
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.front_setup import LOOPBACK, Running, engine_with_reader, front_with_readers, until
from tests.partitioned.partition_setup import TOPIC, config_for, seed_partitions

PARTITIONS = 3
EVENTS = 90
PARTICIPANTS = 13
KEY = "reads-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@asynccontextmanager
async def _running(broker: str, tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    async with front_with_readers(broker, partitions_dir, PARTITIONS, KEY) as running:
        yield running, program_id


async def _submit_and_wait_applied(running: Running, program_id: str) -> None:
    partitions_used = set()
    for number in range(EVENTS):
        body = {
            "program_id": program_id,
            "external_id": f"user{number % PARTICIPANTS}",
            "idempotency_key": f"k{number}",
        }
        answer = await running.front.post("/v1/events", json={**body, "event_data": {"n": number}}, headers=AUTH)
        assert answer.status_code == 202, answer.text
        partitions_used.add(answer.json()["log"]["partition"])
    assert partitions_used == set(range(PARTITIONS))
    with trio.fail_after(15):
        while True:
            listed = await running.front.get("/v1/events", params={"limit": 200}, headers=AUTH)
            assert listed.status_code == 200, listed.text
            events = listed.json()["data"]
            if len(events) == EVENTS and all(event["status"] == "COMPLETED" for event in events):
                return
            await trio.sleep(0.1)


async def _paged(
    running: Running, path: str, limit: int, sizes: list[int] | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list through the front, page by page (each page's size appended to ``sizes``)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = await running.front.get(path, params=query, headers=AUTH)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["data"]) <= limit
        items += page["data"]
        if sizes is not None:
            sizes.append(len(page["data"]))
        if not page["pagination"]["has_more"]:
            return items
        cursor = page["pagination"]["next_cursor"]
    raise AssertionError("the pages never ended")


def _created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["created_at"])


async def _merged_from_the_partitions(running: Running, path: str, descending: bool, **params: Any) -> list[str]:
    """The documented order, from each partition's own whole list: merged by created_at, ties by partition."""
    streams = []
    for partition in range(PARTITIONS):
        answer = await running.direct(partition, path, limit=200, **params)
        assert answer.status_code == 200 and not answer.json()["pagination"]["has_more"]
        streams.append([((_created(item), partition), item["id"]) for item in answer.json()["data"]])
    return [identifier for _, identifier in heapq.merge(*streams, reverse=descending)]


async def _routed_reads_equal_the_partitions_own(running: Running) -> None:
    for number in (0, 1, 5):
        external_id = f"user{number}"
        partition = partition_for(external_id, PARTITIONS)
        found = await running.front.get("/v1/participants", params={"external_id": external_id}, headers=AUTH)
        (participant,) = found.json()["data"]
        assert partition_of(participant["id"]) == partition
        for path in ("", "/balances", "/events", "/activity/history"):
            through_front = await running.front.get(f"/v1/participants/{participant['id']}{path}", headers=AUTH)
            direct = await running.direct(partition, f"/v1/participants/{participant['id']}{path}")
            assert through_front.status_code == 200 == direct.status_code, through_front.text
            assert _without_request_id(through_front.json()) == _without_request_id(direct.json())
        event_id = (await running.front.get(f"/v1/participants/{participant['id']}/events", headers=AUTH)).json()[
            "data"
        ][0]["id"]
        event = await running.front.get(f"/v1/events/{event_id}", headers=AUTH)
        assert (
            event.status_code == 200
            and event.json() == (await running.direct(partition, f"/v1/events/{event_id}")).json()
        )
        assert event.json()["external_id"] == external_id
    missing = await running.front.get(f"/v1/events/{'ffffffff'}-0000-8000-8000-000000000001", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found", missing.text
    programs = await running.front.get("/v1/programs", headers=AUTH)
    assert programs.status_code == 200 and programs.json() == (await running.direct(2, "/v1/programs")).json()
    program_id = programs.json()["data"][0]["id"]
    balance = await running.front.get(f"/v1/programs/{program_id}/balance", headers=AUTH)  # no exact merge yet
    assert balance.status_code == 501 and balance.json()["code"] == "not_routed"
    assert (await running.front.get("/v1/participants/x")).status_code == 401  # the front's own keys, first


def _without_request_id(body: Any) -> Any:
    return {k: v for k, v in body.items() if k != "request_id"} if isinstance(body, dict) else body


async def _fanned_out_lists_page_exactly(running: Running) -> None:
    for descending in (True, False):
        sort_dir = "desc" if descending else "asc"
        paged = await _paged(running, "/v1/events", limit=7, sort_dir=sort_dir)
        ids = [event["id"] for event in paged]
        assert len(ids) == EVENTS == len(set(ids))
        assert ids == await _merged_from_the_partitions(running, "/v1/events", descending, sort_dir=sort_dir)
        times = [_created(event) for event in paged]
        assert times == sorted(times, reverse=descending)
    participants = await _paged(running, "/v1/participants", limit=4)
    assert sorted(p["external_id"] for p in participants) == sorted(f"user{n}" for n in range(PARTICIPANTS))
    assert [p["id"] for p in participants] == await _merged_from_the_partitions(running, "/v1/participants", True)
    entries = await _paged(running, "/v1/journal-entries", limit=9)
    assert len({entry["id"] for entry in entries}) == len(entries) == EVENTS  # one credit per event
    filtered = await _paged(running, "/v1/events", limit=3, external_id="user4")  # routed: one partition's cursor
    assert {event["external_id"] for event in filtered} == {"user4"} and len(filtered) == 7
    bad = await running.front.get("/v1/events", params={"cursor": "bm90IG91cnM"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["details"]["fields"][0]["field"] == "cursor", bad.text
    too_big = await running.front.get("/v1/events", params={"limit": 100000}, headers=AUTH)
    assert too_big.status_code == 400 and too_big.json()["code"] == "bad_request"


async def _a_stopped_partition_is_503(running: Running) -> None:
    stopped = partition_for("user0", PARTITIONS)
    data_dir = partition_data_dir(running.partitions_dir, stopped)
    advert = read_advert(data_dir)
    assert advert is not None
    participant_id = (
        await running.front.get("/v1/participants", params={"external_id": "user0"}, headers=AUTH)
    ).json()["data"][0]["id"]
    running.engines[stopped].cancel()
    await until(lambda: read_advert(data_dir) is None, 10)  # withdrawn on the way out
    await _assert_unavailable(running, stopped, participant_id)
    # A SIGKILLed engine leaves its advertisement behind: its port no longer answers, which is a 503 too.
    (data_dir / READER_FILE).write_bytes(_encode(advert))
    await _assert_unavailable(running, stopped, participant_id)
    other = next(n for n in range(PARTITIONS) if partition_for(f"user{n}", PARTITIONS) != stopped)
    alive = await running.front.get("/v1/participants", params={"external_id": f"user{other}"}, headers=AUTH)
    assert alive.status_code == 200 and len(alive.json()["data"]) == 1


def _encode(advert: ReaderAdvert) -> bytes:
    import msgspec

    return msgspec.json.encode(advert)


async def _assert_unavailable(running: Running, partition: int, participant_id: str) -> None:
    for path, params in (
        (f"/v1/participants/{participant_id}", {}),
        ("/v1/events", {"limit": 5}),
        ("/v1/participants", {}),
    ):
        answer = await running.front.get(path, params=params, headers=AUTH)
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["code"] == "partition_unavailable" and body["details"]["partition"] == partition
        assert body["message"] and "request_id" in body


async def test_reads_through_the_front_are_answered_by_the_owning_partitions(broker: str, tmp_path: Path) -> None:
    async with _running(broker, tmp_path) as (running, program_id):
        await _submit_and_wait_applied(running, program_id)
        await _routed_reads_equal_the_partitions_own(running)
        await _fanned_out_lists_page_exactly(running)
        await _a_stopped_partition_is_503(running)


async def _post_batch(front: httpx.AsyncClient, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = await front.post("/v1/events/batch", json={"events": events}, headers=AUTH)
    assert answer.status_code == 202 and answer.json()["error_count"] == 0, answer.text
    return [result["event"]["log"] for result in answer.json()["results"]]


async def test_a_partition_whose_page_comes_back_short_is_asked_again(broker: str, tmp_path: Path) -> None:
    """A filter checked on candidates can leave a partition's page empty with has_more (its scan bound, 1,000
    candidates): the merge asks it again before taking anything, so no item is skipped or repeated."""
    partitions, old = 2, "2019-06-01T00:00:00Z"
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, partitions)
    _kafka.create_topic(broker, TOPIC, partitions)
    crowded = next(f"user{n}" for n in range(50) if partition_for(f"user{n}", partitions) == 0)
    quiet = next(f"user{n}" for n in range(50) if partition_for(f"user{n}", partitions) == 1)
    ends = [0] * partitions
    async with (
        open_event_log(broker, TOPIC, partitions) as log,
        open_readers(partitions_dir, TOPIC, partitions) as readers,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(partial(serve_front, log, LOOPBACK, ApiKeys.of(KEY), readers=readers))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as front:

            def event(who: str, key: str, **extra: Any) -> dict[str, Any]:
                return {"program_id": program_id, "external_id": who, "idempotency_key": key, "event_data": {}, **extra}

            olds = [event(who, f"old-{who}-{n}", event_timestamp=old) for who in (crowded, quiet) for n in range(3)]
            logs = await _post_batch(front, olds)
            for start in range(0, 1100, 550):  # newer than the old ones, all in the crowded partition
                logs += await _post_batch(front, [event(crowded, f"new-{n}") for n in range(start, start + 550)])
            for position in logs:
                ends[position["partition"]] = max(ends[position["partition"]], position["offset"] + 1)
            for partition in range(partitions):  # applied first, then served: the reads see every event
                config = config_for(partition_data_dir(partitions_dir, partition))
                applied = await run_partition(
                    config, broker, TOPIC, partition, until_offset=ends[partition], idempotency_scope="participant"
                )
                assert applied == ends[partition]
            for partition in range(partitions):
                nursery.start_soon(
                    engine_with_reader, broker, partitions_dir, partition, trio.CancelScope(), "participant"
                )
            await until(lambda: all(read_advert(partition_data_dir(partitions_dir, p)) for p in range(partitions)), 15)
            running = Running(front, {}, partitions_dir)
            short = await running.direct(0, "/v1/events", event_to="2020-01-01T00:00:00Z", limit=2)
            assert short.json()["data"] == [] and short.json()["pagination"]["has_more"]  # the path under test
            for sort_dir in ("desc", "asc"):
                sizes: list[int] = []
                filters = {"event_to": "2020-01-01T00:00:00Z", "sort_dir": sort_dir}
                paged = await _paged(running, "/v1/events", 2, sizes, **filters)
                assert sizes == [2, 2, 2], sizes  # full pages: the short partition was asked again, not waited for
                assert sorted(e["idempotency_key"] for e in paged) == sorted(e["idempotency_key"] for e in olds)
                times = [_created(item) for item in paged]
                assert times == sorted(times, reverse=sort_dir == "desc")
        nursery.cancel_scope.cancel()
