"""Serving: graceful shutdown lets an in-flight request finish; CLI overrides reach the settings."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import _with_overrides, serve
from tests.conftest import small_config


async def test_shutdown_trigger_finishes_in_flight_requests(tmp_path: Path) -> None:
    config = msgspec.structs.replace(
        small_config(tmp_path / "data"), server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=5)
    )
    stop = trio.Event()
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        release = trio.Event()
        original = engine.list_programs

        async def slow(**kwargs: object) -> object:
            stop.set()  # shutdown starts while this request is being handled
            await release.wait()
            return await original(**kwargs)  # type: ignore[arg-type]

        engine.list_programs = slow  # type: ignore[method-assign]
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of("k"), shutdown_trigger=stop.wait))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "k"}) as client:
            async with trio.open_nursery() as requests:
                requests.start_soon(partial(trio.sleep, 0.2))
                results: list[int] = []

                async def call() -> None:
                    results.append((await client.get("/v1/programs")).status_code)

                requests.start_soon(call)
                await stop.wait()
                await trio.sleep(0.1)
                release.set()
            assert results == [200]
    # serve returned on its own: the nursery closed without cancellation


def test_cli_overrides_replace_only_what_is_given() -> None:
    config = _with_overrides(Config(), host="0.0.0.0", port=None, data_dir="/srv/scrip")
    assert (config.server.host, config.server.port, config.storage.data_dir) == ("0.0.0.0", 8080, "/srv/scrip")
    assert _with_overrides(Config(), None, None, None) == Config()
