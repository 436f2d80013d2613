"""Issue 6, security: keys on every route but ``/healthz`` and the docs, keys stored hashed and compared in constant
time, no secret in the logs, and a limit on request size, batch size, rules per program and actions per rule."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.crash import API_KEY
from scrip_actor.http import auth
from scrip_actor.http.auth import KEYS_FILE_NAME, ApiKeys
from tests.reliability.conftest import RULES_PER_PROGRAM_MAX, Live

WRONG_KEY = "sk_wrong_but_secret_looking_key_0123456789"


def _operations(live: Live) -> list[tuple[str, str]]:
    document = live.client.get("/openapi.json").json()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path)) for path, item in document["paths"].items() for method in item
    ]


# Open on purpose: liveness, and the API's static description so a browser can read it (issue 10).
OPEN_PATHS = ("/healthz", "/openapi.json", "/docs")


def test_every_route_but_healthz_and_the_docs_needs_a_key(live: Live) -> None:
    operations = _operations(live)
    assert len(operations) >= 45 and ("GET", "/openapi.json") in operations and ("GET", "/docs") in operations
    attempts: list[dict[str, str]] = [{}, {"Authorization": f"Bearer {WRONG_KEY}"}, {"X-API-Key": WRONG_KEY}]
    odd: list[dict[str, str]] = [
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": f"Bearer {API_KEY[:-1]}"},
        {"X-API-Key": API_KEY.upper()},
    ]
    with httpx.Client(base_url=live.server.base_url, timeout=10) as anonymous:
        for method, path in operations:
            for headers in attempts + (odd if path in ("/v1/events", "/metrics") else []):
                body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
                response = anonymous.request(method, path, headers=headers, **body)
                expected = 200 if path in OPEN_PATHS else 401
                assert response.status_code == expected, (method, path, headers, response.text[:200])
        assert anonymous.get("/metrics", headers={"X-API-Key": API_KEY}).status_code == 200


def test_keys_are_stored_only_as_sha256_digests(tmp_path: Path) -> None:
    keys, new_key = ApiKeys.load(tmp_path, environ={})
    assert new_key is not None and keys.accepts(new_key)
    stored = (tmp_path / KEYS_FILE_NAME).read_text()
    assert new_key not in stored
    assert json.loads(stored) == [hashlib.sha256(new_key.encode()).hexdigest()]
    assert (tmp_path / KEYS_FILE_NAME).stat().st_mode & 0o077 == 0, "the digest file is readable by others"
    again, none = ApiKeys.load(tmp_path, environ={})
    assert none is None and again.accepts(new_key) and not again.accepts(new_key + "x")


def test_key_comparison_visits_every_digest_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ApiKeys.of("first", "second", "third")
    for presented, expected in (("first", True), ("third", True), ("nope", False), ("x" * 10_000, False)):
        calls.clear()
        assert keys.accepts(presented) is expected
        assert len(calls) == 3, "the comparison must not stop at the first match"
        assert all(len(a) == len(b) == 32 for a, b in calls), "compare fixed-size digests, not the raw keys"


def test_no_secret_reaches_the_logs(live: Live) -> None:
    with httpx.Client(base_url=live.server.base_url, timeout=10) as anonymous:
        anonymous.get("/v1/programs", headers={"Authorization": f"Bearer {WRONG_KEY}"})
        anonymous.post("/v1/events", headers={"X-API-Key": WRONG_KEY}, json={"idempotency_key": WRONG_KEY})
        response = anonymous.get("/v1/no/such/route", headers={"X-API-Key": API_KEY})
        assert WRONG_KEY not in response.text and API_KEY not in response.text
    live.client.post("/v1/events", json=live.event("secret-probe", event_data={"k": "v"}))
    live.client.post("/v1/events", content=b"{not json", headers={"Content-Type": "application/json"})
    logs = live.server.logs()
    assert "Running on" in logs, "the log capture is not working"
    assert API_KEY not in logs and WRONG_KEY not in logs
    assert API_KEY[:12] not in logs and hashlib.sha256(API_KEY.encode()).hexdigest() not in logs


def test_request_size_limits(live: Live) -> None:
    single = json.dumps(live.event("size", event_data={"x": "a" * (1024 * 1024)})).encode()
    live.error(
        live.client.post("/v1/events", content=single, headers={"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )
    live.error(
        live.client.post("/v1/events", json=live.event("data", event_data={"x": "a" * 70_000})), 400, "bad_request"
    )


def test_batch_size_limit(live: Live) -> None:
    events = [live.event(f"batch-{n}") for n in range(1001)]
    body = live.error(live.client.post("/v1/events/batch", json={"events": events}), 400, "bad_request")
    assert "1-1000" in body["message"]
    live.error(live.client.post("/v1/events/batch", json={"events": []}), 400, "bad_request")


def _rule(live: Live, program_id: str, actions: list[dict[str, Any]]) -> httpx.Response:
    return live.client.post(
        "/v1/rules", json={"program_id": program_id, "name": "limit", "condition": "true", "actions": actions}
    )


def test_rules_per_program_and_actions_per_rule_limits(live: Live) -> None:
    program_id = live.client.post("/v1/programs", json={"name": "limits"}).json()["id"]
    tag = {"type": "TAG", "tag": "t"}
    live.error(_rule(live, program_id, [tag] * 51), 400)
    for _ in range(RULES_PER_PROGRAM_MAX):
        assert _rule(live, program_id, [tag] * 50).status_code == 201
    body = live.error(_rule(live, program_id, [tag]), 400)
    assert str(RULES_PER_PROGRAM_MAX) in body["message"], body
