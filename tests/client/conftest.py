"""Client fixtures: a real engine on LMDB in tmp_path, served by Hypercorn on a free loopback port.

``server`` is the running server; ``client`` an :class:`AsyncScripClient` on it. The sync :class:`ScripClient`
blocks, and the server runs on the test's own trio loop, so sync tests drive it from a worker thread
(:func:`in_thread`). ``flaky_proxy`` puts a small loopback HTTP server in front of the real one that answers chosen
statuses (after forwarding the request, or without) before it lets requests through: a real network peer, not a
mock of our code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import trio

from scrip_actor import Engine, open_engine
from scrip_actor.client import AsyncScripClient, RetryPolicy
from scrip_actor.config import ServerSettings
from scrip_actor.http.app import HttpLimits
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve
from scrip_actor.model import AssetCreate, Program, ProgramCreate
from tests.conftest import small_config

API_KEY = "sk_client_test_key"
T = TypeVar("T")
# Quick retries so the tests that exercise them stay fast; the policy's shape is what is tested.
FAST_RETRY = RetryPolicy(attempts_max=4, total_s=10.0, backoff_initial_s=0.01, backoff_max_s=0.05)


@dataclass
class Server:
    """A running server and the engine behind it."""

    base_url: str
    engine: Engine


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = small_config(tmp_path / "data")
    config = msgspec.structs.replace(config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2))
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        limits = HttpLimits(batch_events_max=20)
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(API_KEY), limits=limits))
        yield Server(f"http://127.0.0.1:{port}", engine)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[AsyncScripClient]:
    async with AsyncScripClient(server.base_url, API_KEY, retry=FAST_RETRY) as opened:
        yield opened


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking (sync client) function in a worker thread while the server keeps serving on this loop."""
    return await trio.to_thread.run_sync(partial(function, *args))


async def program_with_points(client: AsyncScripClient, name: str = "Rewards") -> tuple[Program, str]:
    """A new program and the id of its SIMPLE, UNLIMITED, scale-2 asset ``PTS``."""
    program = await client.create_program(ProgramCreate(name=name))
    asset = await client.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol="PTS",
            inventory_mode="SIMPLE",
            issuance_policy="UNLIMITED",
            scale=2,
        )
    )
    return program, asset.id
