"""Bugs found reviewing the HTTP layer, now regression tests (each failed before its fix).

Each test drives the real server (Hypercorn on loopback, real LMDB) through ``tests/http/conftest.py``'s ``api``
fixture, except where it must configure a second server of its own.
"""

from __future__ import annotations

import tracemalloc
from functools import partial
from typing import Any

import httpx
import msgspec
import pytest
import trio

from scrip_actor.config import ServerSettings
from scrip_actor.http import server as http_server
from scrip_actor.http.auth import ApiKeys
from tests.http_review.conftest import API_KEY, LIMITS, Api

# --- helpers --------------------------------------------------------------------------------------------------


async def _program(api: Api, name: str = "P") -> dict[str, Any]:
    program: dict[str, Any] = await api.ok("POST", "/v1/programs", 201, json={"name": name})
    return program


async def _rule(api: Api, program_id: str, **fields: Any) -> dict[str, Any]:
    body = {"program_id": program_id, "name": "r", "condition": "true", "actions": [{"type": "TAG", "tag": "x"}]}
    rule: dict[str, Any] = await api.ok("POST", "/v1/rules", 201, json={**body, **fields})
    return rule


async def _one_processed_event(api: Api) -> None:
    program = await _program(api)
    asset = await api.ok(
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
    await _rule(api, program["id"], actions=[{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}])
    event = await api.ok(
        "POST",
        "/v1/events",
        202,
        json={"program_id": program["id"], "external_id": "u1", "idempotency_key": "k1", "event_data": {}},
    )
    await api.wait_event(event["id"])


# --- 500s for bad input ---------------------------------------------------------------------------------------


async def test_list_events_with_a_naive_from_is_a_400(api: Api) -> None:
    await _one_processed_event(api)
    await api.error("GET", "/v1/events?from=2024-01-01T00:00:00", 400, "bad_request")


async def test_list_journal_entries_with_a_naive_to_is_a_400(api: Api) -> None:
    await _one_processed_event(api)
    await api.error("GET", "/v1/journal-entries?to=2999-01-01T00:00:00", 400, "bad_request")


async def test_simulate_with_a_naive_event_timestamp_is_a_400(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"], active_from="2024-01-01T00:00:00Z")
    await api.error(
        "POST",
        f"/v1/rules/{rule['id']}/simulate",
        400,
        "bad_request",
        json={"event": {}, "event_timestamp": "2025-01-01T00:00:00"},
    )


async def test_simulate_counter_on_a_huge_mock_counter_is_not_a_500(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"], actions=[{"type": "COUNTER", "key": "k", "value": "1"}])
    response = await api.client.post(
        f"/v1/rules/{rule['id']}/simulate", json={"event": {}, "participant_state": {"counters": {"k": "1e308"}}}
    )
    assert response.status_code in (200, 400), response.text


async def test_simulate_reports_a_counter_overflow_like_processing(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"], actions=[{"type": "COUNTER", "key": "k", "value": "1"}])
    just_below = "9" * 36  # the largest counter processing accepts; +1 leaves the bounds
    answer = await api.ok(
        "POST",
        f"/v1/rules/{rule['id']}/simulate",
        json={"event": {}, "participant_state": {"counters": {"k": just_below}}},
    )
    [outcome] = answer["evaluation"]["results"]
    assert "error" in outcome["result"], outcome


async def test_simulate_with_a_deeply_nested_event_is_a_400(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"])
    depth = 900
    body = '{"event": {"a": ' + "[" * depth + "]" * depth + "}}"
    await api.error(
        "POST",
        f"/v1/rules/{rule['id']}/simulate",
        400,
        "bad_request",
        content=body,
        headers={"Content-Type": "application/json"},
    )


async def test_rule_history_with_a_unicode_digit_cursor_is_a_400(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"])
    await api.error("GET", f"/v1/rules/{rule['id']}/history", 400, "bad_request", params={"cursor": "\u00b2"})


async def test_rule_history_with_a_foreign_cursor_is_a_400(api: Api) -> None:
    program = await _program(api)
    rule = await _rule(api, program["id"])
    await api.error("GET", f"/v1/rules/{rule['id']}/history", 400, "bad_request", params={"cursor": "abc"})


# --- pagination -----------------------------------------------------------------------------------------------


async def test_program_pagination_survives_archiving_the_cursor_item(api: Api) -> None:
    for index in range(4):
        await _program(api, f"P{index}")
    first = await api.ok("GET", "/v1/programs", params={"limit": 2})
    assert first["pagination"]["has_more"]
    await api.ok("PATCH", f"/v1/programs/{first['data'][-1]['id']}", json={"status": "ARCHIVED"})
    second = await api.ok("GET", "/v1/programs", params={"limit": 2, "cursor": first["pagination"]["next_cursor"]})
    assert [p["name"] for p in second["data"]] == ["P1", "P0"]


async def test_rule_pagination_does_not_skip_when_the_cursor_rule_is_reordered(api: Api) -> None:
    program = await _program(api)
    for index in range(4):
        await _rule(api, program["id"], name=f"r{index}", order=10 * (index + 1))
    query = {"program_id": program["id"], "limit": 2}
    first = await api.ok("GET", "/v1/rules", params=query)
    assert [r["name"] for r in first["data"]] == ["r0", "r1"]
    await api.ok("PATCH", f"/v1/rules/{first['data'][-1]['id']}", json={"order": 100})
    second = await api.ok("GET", "/v1/rules", params={**query, "cursor": first["pagination"]["next_cursor"]})
    assert {"r2", "r3"} <= {r["name"] for r in second["data"]}, second


# --- routing, query strings -----------------------------------------------------------------------------------


async def test_doubled_slash_is_not_an_html_redirect(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1//programs", headers={"Host": "evil.example"})
    assert response.status_code in (401, 404), (response.status_code, response.headers.get("location"))
    assert response.headers["content-type"].startswith("application/json")


async def test_unknown_query_parameter_on_a_get_by_id_is_a_400(api: Api) -> None:
    program = await _program(api)
    await api.error("GET", f"/v1/programs/{program['id']}", 400, "bad_request", params={"include_skipped": "true"})


# --- resource exhaustion --------------------------------------------------------------------------------------


async def test_made_up_methods_do_not_create_metric_series(api: Api, anonymous: httpx.AsyncClient) -> None:
    for index in range(20):
        response = await anonymous.request(f"X{index}", "/nothing")
        assert response.status_code == 404
    metrics = (await api.client.get("/metrics")).text
    assert 'method="X7"' not in metrics


async def test_an_over_long_batch_is_refused_without_decoding_every_item(api: Api) -> None:
    items = (LIMITS.batch_body_bytes_max - 64) // 2
    body = b'{"events":[' + b",".join([b"0"] * items) + b"]}"
    tracemalloc.start()
    try:
        response = await api.client.post("/v1/events/batch", content=body, headers={"Content-Type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 400, response.text
    assert peak < 10 * len(body), f"{peak / 1e6:.1f} MB traced for a {len(body) / 1e3:.0f} kB body"


async def test_a_stalled_body_is_given_up_on(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    create_app = http_server.create_app

    def with_body_timeout(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.config["BODY_TIMEOUT"] = 0.5  # Quart's own bound on reading a body (default 60 s)
        return app

    monkeypatch.setattr(http_server, "create_app", with_body_timeout)
    config = msgspec.structs.replace(
        api.engine.config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=1)
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(http_server.serve, api.engine, config, ApiKeys.of(API_KEY)))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        head = (
            f"POST /v1/programs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        await stream.send_all(head.encode() + b'{"name": ')  # ...and the other 91 bytes never come
        answered = False
        with trio.move_on_after(3):
            await stream.receive_some(65536)  # an answer (408/400) or the server closing: either ends the wait
            answered = True
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert answered, "the server still waits for the body 3 s later (BODY_TIMEOUT was 0.5 s)"
