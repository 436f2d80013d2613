"""HTTP fixtures: a real engine on LMDB in tmp_path, served by Hypercorn on a free loopback port, driven by httpx.

``api`` yields a client already carrying a valid key; ``anonymous`` is the same server without one. Limits are
small (64 KiB bodies, 20-event batches) so the 413 and batch-size tests stay cheap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from scrip_actor import Engine, open_engine
from scrip_actor.config import ServerSettings
from scrip_actor.http.app import HttpLimits
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve
from tests.conftest import small_config

API_KEY = "sk_test_key"
LIMITS = HttpLimits(body_bytes_max=64 * 1024, batch_body_bytes_max=256 * 1024, batch_events_max=20)


@dataclass
class Api:
    """A running server: an authenticated client, the engine behind it, and its base URL."""

    client: httpx.AsyncClient
    engine: Engine
    base_url: str

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """Send a request, assert its status, return the decoded JSON (None for 204)."""
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        return None if status == 204 else response.json()

    async def error(self, method: str, path: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
        """Send a request that must fail with ``status`` and ``code``; return the error body."""
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        assert set(body) == {"code", "message", "details", "request_id"}, body
        assert body["request_id"] == response.headers["X-Request-Id"]
        return body

    async def program_and_asset(self, name: str = "Rewards") -> tuple[dict[str, Any], dict[str, Any]]:
        """A new program with a SIMPLE, UNLIMITED, scale-2 asset ``PTS`` linked to it."""
        program = await self.ok("POST", "/v1/programs", 201, json={"name": name})
        asset = await self.ok(
            "POST",
            "/v1/assets",
            201,
            json={
                "program_id": program["id"],
                "name": "Points",
                "symbol": "PTS",
                "inventory_mode": "SIMPLE",
                "issuance_policy": "UNLIMITED",
                "scale": 2,
            },
        )
        return program, asset

    async def wait_event(self, event_id: str) -> dict[str, Any]:
        """Poll an event until it is COMPLETED or FAILED."""
        with trio.fail_after(10):
            while True:
                event: dict[str, Any] = await self.ok("GET", f"/v1/events/{event_id}")
                if event["status"] in ("COMPLETED", "FAILED"):
                    return event
                await trio.sleep(0.01)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = small_config(tmp_path / "data")
    config = msgspec.structs.replace(config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2))
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(API_KEY), limits=LIMITS))
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
            yield Api(client, engine, base_url)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def anonymous(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
        yield client
