"""The front with the partitions' readers behind it, in one trio run: what the read-routing tests share.

Real Tansu (the caller's broker), the real front app on loopback, one in-process engine role per partition serving
its reader (``--read-host``), real LMDB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import partition_data_dir, run_partition
from scrip_actor.partitioned._engine_reads import read_advert
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._front_reads import open_readers
from tests.partitioned.partition_setup import TOPIC, config_for

__all__ = ["LOOPBACK", "Running", "engine_with_reader", "front_with_readers", "until"]

LOOPBACK = Config(server=ServerSettings(host="127.0.0.1", port=0))


@dataclass
class Running:
    """The front's client, each partition's engine (by its cancel scope) and the partitions directory."""

    front: httpx.AsyncClient
    engines: dict[int, trio.CancelScope]
    partitions_dir: Path

    async def direct(self, partition: int, path: str, **params: Any) -> httpx.Response:
        """What partition ``partition``'s own reader answers, asked without the front."""
        advert = read_advert(partition_data_dir(self.partitions_dir, partition))
        assert advert is not None
        async with httpx.AsyncClient(base_url=advert.url) as client:
            return await client.get(path, params=params, headers={"Authorization": f"Bearer {advert.token}"})


async def until(condition: Callable[[], Any], timeout_s: float) -> None:
    """Wait until ``condition()`` holds (checked every 50 ms), failing after ``timeout_s``."""
    with trio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await trio.sleep(0.05)


async def engine_with_reader(
    broker: str, partitions_dir: Path, partition: int, scope: trio.CancelScope, idempotency_scope: str = "program"
) -> None:
    """Partition ``partition``'s engine role, serving its reader, until ``scope`` is cancelled."""
    with scope:
        config = config_for(partition_data_dir(partitions_dir, partition))
        await run_partition(
            config, broker, TOPIC, partition, read_host="127.0.0.1", idempotency_scope=idempotency_scope
        )


@asynccontextmanager
async def front_with_readers(broker: str, partitions_dir: Path, partitions: int, key: str) -> AsyncIterator[Running]:
    """Every partition's engine with its reader and the front (API key ``key``) routing to them, until the block
    ends; entered once every reader is advertised."""
    async with (
        open_event_log(broker, TOPIC, partitions) as log,
        open_readers(partitions_dir, TOPIC, partitions) as readers,
        trio.open_nursery() as nursery,
    ):
        engines = {partition: trio.CancelScope() for partition in range(partitions)}
        for partition, scope in engines.items():
            nursery.start_soon(engine_with_reader, broker, partitions_dir, partition, scope)
        port = await nursery.start(partial(serve_front, log, LOOPBACK, ApiKeys.of(key), readers=readers))
        await until(lambda: all(read_advert(partition_data_dir(partitions_dir, p)) for p in range(partitions)), 15)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as front:
            yield Running(front, engines, partitions_dir)
        nursery.cancel_scope.cancel()
