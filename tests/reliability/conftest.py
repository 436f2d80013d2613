"""One real server (``python -m scrip_actor serve`` in a subprocess) shared by the hostile-input, security and fuzz
tests: loopback only, a known key, fsync off (these tests are about answers, not durability), and small
per-program limits so the limit tests stay cheap. Its logs are kept so a test can check no secret reached them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.crash import API_KEY, ServerProcess

RULES_PER_PROGRAM_MAX = 5
ERROR_KEYS = {"code", "message", "details", "request_id"}


@dataclass
class Live:
    """The shared server, an authenticated sync client, and a program with a scale-18 asset and a LOT asset."""

    server: ServerProcess
    client: httpx.Client
    program_id: str
    asset_id: str

    def error(self, response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
        """Assert ``response`` is an error of ``status`` (and ``code``) in the documented shape; return its body."""
        assert response.status_code == status, (response.status_code, response.text[:500])
        body: dict[str, Any] = response.json()
        assert set(body) == ERROR_KEYS, body
        assert isinstance(body["message"], str) and isinstance(body["details"], dict), body
        assert body["request_id"] == response.headers["X-Request-Id"]
        if code is not None:
            assert body["code"] == code, body
        return body

    def event(self, key: str, **fields: Any) -> dict[str, Any]:
        """An event body for the program (``external_id`` "hostile" unless given)."""
        return {
            "program_id": self.program_id,
            "external_id": "hostile",
            "idempotency_key": key,
            "event_data": {},
            **fields,
        }


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("live") / "data"
    server = ServerProcess.start(
        data_dir,
        {
            "SCRIP_STORAGE_SYNC": "false",
            "SCRIP_LIMITS_RULES_PER_PROGRAM_MAX": str(RULES_PER_PROGRAM_MAX),
        },
        log_name="live",
    )
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            program = client.post("/v1/programs", json={"name": "hostile"}).json()
            asset = client.post(
                "/v1/assets",
                json={
                    "program_id": program["id"],
                    "name": "Fine",
                    "symbol": "FINE",
                    "inventory_mode": "SIMPLE",
                    "issuance_policy": "PREFUNDED",
                    "scale": 18,
                },
            ).json()
            yield Live(server, client, program["id"], asset["id"])
    finally:
        status = server.stop()
        assert status == 0, server.logs()[-3000:]
