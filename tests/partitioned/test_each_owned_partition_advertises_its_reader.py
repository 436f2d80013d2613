"""A group member serves the GET routes of each partition it owns and advertises them in ``reader.json``; the
advertisement follows the partition when it moves to another member and is withdrawn when the member leaves.

Real Tansu, real ``scrip serve --role engine --group --read-host`` processes, real LMDB, the readers asked over
loopback with httpx.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import trio

from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._engine_reads import ReaderAdvert, read_advert
from tests.partitioned.partition_setup import TOPIC, GroupEngine, seed_partitions

PARTITIONS = 3


def _adverts(partitions_dir: Path) -> dict[int, ReaderAdvert | None]:
    return {n: read_advert(partition_data_dir(partitions_dir, n)) for n in range(PARTITIONS)}


def _wait_adverts(partitions_dir: Path, owners: dict[int, int], timeout_s: float) -> dict[int, ReaderAdvert]:
    """Wait until partition n is advertised by pid ``owners[n]`` for every n; returns the advertisements."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        adverts = _adverts(partitions_dir)
        if all(advert is not None and advert.pid == owners[n] for n, advert in adverts.items()):
            return {n: advert for n, advert in adverts.items() if advert is not None}
        time.sleep(0.05)
    raise AssertionError(f"wanted owners {owners}, advertised: {_adverts(partitions_dir)}")


async def _answers(advert: ReaderAdvert, program_id: str) -> None:
    auth = {"Authorization": f"Bearer {advert.token}"}
    async with httpx.AsyncClient(base_url=advert.url) as client:
        programs = await client.get("/v1/programs", headers=auth)
        assert programs.status_code == 200 and [p["id"] for p in programs.json()["data"]] == [program_id]
        assert (await client.get("/v1/programs")).status_code == 401  # only the advertised token
        write = await client.post("/v1/participants", json={"external_id": "x"}, headers=auth)
        assert write.status_code in (404, 405) and "code" in write.json()  # a reader takes no writes


async def test_readers_follow_their_partitions_across_a_rebalance(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    first = GroupEngine(broker, partitions_dir, "readers", read_host="127.0.0.1")
    second: GroupEngine | None = None
    try:
        await trio.to_thread.run_sync(first.wait_owning, PARTITIONS, 15.0)
        alone = _wait_adverts(partitions_dir, dict.fromkeys(range(PARTITIONS), first.process.pid), 5.0)
        for advert in alone.values():
            await _answers(advert, program_id)
        assert len({advert.url for advert in alone.values()}) == PARTITIONS  # one reader per partition

        second = GroupEngine(broker, partitions_dir, "readers", read_host="127.0.0.1")
        moved = await trio.to_thread.run_sync(second.wait_owning, 1, 15.0)
        owners = {n: (second if n in moved else first).process.pid for n in range(PARTITIONS)}
        shared = _wait_adverts(partitions_dir, owners, 5.0)
        for n in moved:
            await _answers(shared[n], program_id)
            assert shared[n].token != alone[n].token

        second.stop(signal.SIGTERM)  # leaves the group: its partitions' readers withdrawn before their stores close
        first.wait_owning(PARTITIONS, 15.0)
        _wait_adverts(partitions_dir, dict.fromkeys(range(PARTITIONS), first.process.pid), 5.0)
        first.stop(signal.SIGTERM)
        assert _adverts(partitions_dir) == dict.fromkeys(range(PARTITIONS))  # nothing left advertised
    finally:
        for member in (first, second):
            if member is not None:
                member.stop(signal.SIGKILL)
