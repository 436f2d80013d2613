"""Client fixtures: a real engine on LMDB in tmp_path, served by Hypercorn on a free loopback port.

``server`` is the running server; ``client`` an :class:`AsyncScripClient` on it. The sync :class:`ScripClient`
blocks, and the server runs on the test's own trio loop, so sync tests drive it from a worker thread
(:func:`in_thread`). ``flaky_proxy`` puts a small loopback HTTP server in front of the real one that answers chosen
statuses (after forwarding the request, or without) before it lets requests through: a real network peer, not a
mock of our code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

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


@asynccontextmanager
async def running_server(data_dir: Path, key: str = API_KEY, **engine: object) -> AsyncIterator[Server]:
    """A server on a fresh store in ``data_dir``, accepting ``key``, on a free loopback port; ``engine``: engine
    settings (``inflight_events_max=...``)."""
    config = small_config(data_dir, **engine)
    config = msgspec.structs.replace(config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2))
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        limits = HttpLimits(batch_events_max=20)
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(key), limits=limits))
        yield Server(f"http://127.0.0.1:{port}", engine)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(tmp_path / "data") as running:
        yield running


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


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    body: bytes


class FlakyProxy:
    """A loopback HTTP server in front of the real one that misbehaves on cue, then forwards.

    ``script`` holds what to do with the next requests, one step each: ``(status, headers)`` answers that status
    without forwarding (the request never reached the server), ``("lost", status)`` forwards the request and
    then answers ``status`` instead of the server's answer (a gateway that timed out waiting: the work was done,
    the answer lost). Once the script is used up, requests pass through untouched.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: list[tuple[Any, Any]] = []
        self.seen: list[Seen] = []
        self.base_url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})  # lifespan.startup / lifespan.shutdown
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append(Seen(scope["method"], scope["path"], body))
        step = self.script.pop(0) if self.script else None
        if step is not None and step[0] != "lost":
            status, headers = step
            await _answer(send, status, [(k.encode(), v.encode()) for k, v in headers.items()], b'{"code":"x"}')
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() not in (b"host", b"content-length")}
        url = self.upstream + scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        async with httpx.AsyncClient() as upstream:
            response = await upstream.request(scope["method"], url, content=body, headers=headers)
        if step is not None:  # ("lost", status): the server did the work; its answer never comes back
            await _answer(send, step[1], [], b"<html>upstream timed out</html>")
            return
        passed = [(b"content-type", response.headers.get("content-type", "application/json").encode())]
        await _answer(send, response.status_code, passed, response.content)


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def flaky_proxy(server: Server) -> AsyncIterator[FlakyProxy]:
    proxy = FlakyProxy(server.base_url)
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(hypercorn_serve, proxy, config))
        proxy.base_url = binds[0]
        yield proxy
        nursery.cancel_scope.cancel()
