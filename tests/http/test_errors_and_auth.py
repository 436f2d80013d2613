"""Cross-cutting behaviour: auth, error shapes, body limits, content types, unknown routes, bugs as 500s."""

from __future__ import annotations

import httpx
import pytest

from scrip_actor.errors import Overloaded
from tests.http.conftest import API_KEY, LIMITS, Api


async def test_healthz_needs_no_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-Id"].startswith("req_")


@pytest.mark.parametrize("path", ["/v1/programs", "/metrics"])
async def test_missing_and_wrong_keys_are_401(api: Api, anonymous: httpx.AsyncClient, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}, {"Authorization": "Basic abc"}):
        response = await anonymous.get(path, headers=headers)
        assert response.status_code == 401, headers
        body = response.json()
        assert body["code"] == "unauthorized"
        assert "nope" not in body["message"]


async def test_x_api_key_header_is_accepted(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1/programs", headers={"X-API-Key": API_KEY})
    assert response.status_code == 200
    assert response.json() == {"data": [], "pagination": {"has_more": False, "next_cursor": None}}


async def test_auth_is_checked_before_the_body(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post("/v1/programs", content=b"not json", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401


async def test_malformed_json_is_400(api: Api) -> None:
    body = await api.error(
        "POST", "/v1/programs", 400, "bad_request", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert "malformed JSON" in body["message"]


async def test_wrong_type_names_the_field(api: Api) -> None:
    body = await api.error("POST", "/v1/programs", 400, "bad_request", json={"name": 5})
    assert body["details"]["fields"] == [{"field": "name", "reason": "invalid", "message": "Expected `str`, got `int`"}]


async def test_missing_and_unknown_fields_are_named(api: Api) -> None:
    missing = await api.error("POST", "/v1/assets", 400, "bad_request", json={"name": "Points"})
    assert missing["details"]["fields"][0]["reason"] == "required"
    unknown = await api.error("POST", "/v1/programs", 400, "bad_request", json={"name": "x", "colour": "red"})
    assert unknown["details"]["fields"][0] == {
        "field": "colour",
        "reason": "unknown",
        "message": "Object contains unknown field `colour`",
    }
    nested = await api.error(
        "POST",
        "/v1/rules",
        400,
        "bad_request",
        json={
            "program_id": "p",
            "name": "r",
            "condition": "true",
            "actions": [{"type": "CREDIT", "asset_id": "a", "amount": 5}],
        },
    )
    assert nested["details"]["fields"][0]["field"] == "actions[0].amount"


async def test_constraint_violations_are_400(api: Api) -> None:
    body = await api.error("POST", "/v1/programs", 400, "bad_request", json={"name": ""})
    assert body["details"]["fields"][0]["field"] == "name"


async def test_wrong_content_type_is_415(api: Api) -> None:
    await api.error(
        "POST",
        "/v1/programs",
        415,
        "unsupported_media_type",
        content=b'{"name": "x"}',
        headers={"Content-Type": "text/plain"},
    )
    await api.error("POST", "/v1/programs", 415, "unsupported_media_type", data={"name": "x"})
    ok = await api.client.post(
        "/v1/programs", content=b'{"name": "x"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 201


async def test_oversized_body_is_413_before_decoding(api: Api) -> None:
    padding = "x" * LIMITS.body_bytes_max
    await api.error("POST", "/v1/programs", 413, "payload_too_large", json={"name": "x", "description": padding})

    async def chunks() -> object:  # no Content-Length: counted while reading
        for _ in range(LIMITS.body_bytes_max // 1024 + 2):
            yield b" " * 1024

    await api.error(
        "POST", "/v1/programs", 413, "payload_too_large", content=chunks(), headers={"Content-Type": "application/json"}
    )
    await api.error(
        "POST", "/v1/events/batch", 413, "payload_too_large", json={"events": ["x" * LIMITS.batch_body_bytes_max]}
    )


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    await api.error("GET", "/v1/nothing-here", 404, "not_found")
    body = await api.error("DELETE", "/v1/programs", 405, "method_not_allowed")
    assert body["details"]["allowed"] == ["GET", "HEAD", "POST"]


async def test_unknown_ids_are_404(api: Api) -> None:
    for path in (
        "/v1/programs/nope",
        "/v1/assets/nope",
        "/v1/participants/nope",
        "/v1/rules/nope",
        "/v1/events/nope",
        "/v1/journal-entries/nope",
        "/v1/rules/nope/history",
    ):
        body = await api.error("GET", path, 404, "not_found")
        assert body["details"]["id"] == "nope"


async def test_bad_query_parameters_are_400(api: Api) -> None:
    too_big = await api.error("GET", "/v1/programs", 400, "bad_request", params={"limit": "201"})
    assert too_big["details"]["fields"][0]["field"] == "query.limit"
    await api.error("GET", "/v1/programs", 400, "bad_request", params={"limit": "many"})
    await api.error("GET", "/v1/programs", 400, "bad_request", params={"sort_by": "status"})
    await api.error("GET", "/v1/programs", 400, "bad_request", params={"order_by": "name"})  # undocumented
    await api.error("GET", "/v1/events", 400, "bad_request", params={"from": "yesterday"})


async def test_a_bug_is_a_generic_500_with_the_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.engine, "list_programs", broken)
    body = await api.error("GET", "/v1/programs", 500, "internal_error")
    assert "secret" not in body["message"] and body["request_id"] in body["message"]
    assert any(body["request_id"] in record.getMessage() for record in caplog.records)


async def test_overloaded_is_429_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full(*args: object, **kwargs: object) -> None:
        raise Overloaded("queues are full", retry_after_s=3)

    monkeypatch.setattr(api.engine, "submit", full)
    response = await api.client.post(
        "/v1/events",
        json={
            "program_id": "p",
            "external_id": "u",
            "idempotency_key": "k",
            "event_data": {},
        },
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["code"] == "too_many_requests"


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    await api.ok("GET", "/v1/programs")
    await api.error("GET", "/v1/programs/abc", 404, "not_found")
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert 'scrip_http_requests_total{method="GET",route="/v1/programs",status="200"} 1.0' in text
    assert 'scrip_http_requests_total{method="GET",route="/v1/programs/{program_id}",status="404"} 1.0' in text
    assert "scrip_http_request_duration_seconds_bucket" in text
    assert "scrip_engine_events_accepted_total 0.0" in text
