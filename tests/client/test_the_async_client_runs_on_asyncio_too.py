"""The async client is not tied to trio: the same calls, retries included, under asyncio (httpx and anyio run on
both). The asyncio loop runs in a worker thread while the server keeps serving on the test's trio loop."""

from __future__ import annotations

import asyncio

import trio

from scrip_actor.client import AsyncScripClient, NotFoundError
from scrip_actor.model import ProgramCreate
from tests.client.conftest import API_KEY, FAST_RETRY, FlakyProxy


async def test_calls_retries_and_iterators_under_asyncio(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(429, {"Retry-After": "0"})]  # refused before any work: retried even for a POST

    async def on_asyncio() -> tuple[list[str], str]:
        async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
            for name in ("A", "B", "C"):
                await client.create_program(ProgramCreate(name=name))
            names = [program.name async for program in client.iter_programs(limit=2)]
            try:
                await client.get_program("prg_missing")
            except NotFoundError as error:
                return names, error.code
            raise AssertionError("no error")

    names, code = await trio.to_thread.run_sync(asyncio.run, on_asyncio())
    assert names == ["C", "B", "A"]
    assert code == "not_found"
    assert len(flaky_proxy.seen) == 7  # 3 creations, 1 retry of the refused one, 2 pages, 1 read
