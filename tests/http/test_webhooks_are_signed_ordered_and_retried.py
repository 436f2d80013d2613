"""Webhooks end to end over HTTP: a real server on loopback, a real receiver that verifies every signature with the
Standard Webhooks library, and the endpoints API with its refusals (docs/webhooks.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from scrip_actor import open_engine
from scrip_actor.config import ServerSettings, WebhookSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve
from tests.conftest import small_config
from tests.http.conftest import API_KEY, LIMITS, Api
from tests.webhook_receiver import Receiver, receiving

FAST = {"retry_base_s": 0.02, "retry_max_s": 0.05, "poll_interval_s": 0.02, "read_timeout_s": 2.0}


@asynccontextmanager
async def serving(tmp_path: Path, **webhooks: Any) -> AsyncIterator[Api]:
    """A server whose webhook settings are ``webhooks`` (the key file in tmp_path, private targets allowed)."""
    settings = {"allow_private_targets": True, "secret_key_file": str(tmp_path / "webhooks.key"), **FAST, **webhooks}
    config = msgspec.structs.replace(
        small_config(tmp_path / "data"),
        server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2),
        webhooks=WebhookSettings(**settings),
    )
    async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(API_KEY), limits=LIMITS))
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
            yield Api(client, engine, base_url)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Api]:
    async with serving(tmp_path) as api:
        yield api


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def _endpoint(api: Api, receiver: Receiver, events: list[str] | None = None) -> dict[str, Any]:
    endpoint: dict[str, Any] = await api.ok(
        "POST", "/v1/webhook-endpoints", 201, json={"url": receiver.url, "enabled_events": events or ["*"]}
    )
    receiver.secrets.append(endpoint["secret"])
    return endpoint


async def _settled(api: Api, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is PENDING or SENDING (newest first)."""
    with trio.fail_after(10):
        while True:
            page = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 100})
            if all(delivery["status"] in ("DELIVERED", "FAILED") for delivery in page["data"]):
                return list(page["data"])
            await trio.sleep(0.02)


async def _credit_rule(api: Api) -> dict[str, Any]:
    program, asset = await api.program_and_asset()
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "condition": "event.type == 'purchase'",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "10.50"}],
        },
    )
    return program


async def _purchase(api: Api, program: dict[str, Any], external_id: str, key: str) -> dict[str, Any]:
    event = await api.ok(
        "POST",
        "/v1/events",
        202,
        json={
            "program_id": program["id"],
            "external_id": external_id,
            "idempotency_key": key,
            "event_data": {"type": "purchase"},
        },
    )
    return await api.wait_event(event["id"])


async def test_an_event_is_reported_signed_once_per_type_with_the_envelope(hooks: Api, receiver: Receiver) -> None:
    endpoint = await _endpoint(hooks, receiver)
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", endpoint["secret"])
    program = await _credit_rule(hooks)
    event = await _purchase(hooks, program, "alice", "order-1")
    got = await receiver.wait_for(3)
    assert receiver.unverified == 0
    assert [d.body["type"] for d in got] == ["participant.created", "balance.credited", "event.completed"]
    for delivery in got:
        assert delivery.verified_with == [endpoint["secret"]]
        assert delivery.headers["webhook-id"] == delivery.body["id"]
        assert set(delivery.body) == {"id", "type", "api_version", "created_at", "organization_id", "data"}
        assert delivery.body["api_version"] == "2026-03-01"
    credited = got[1].body["data"]
    assert credited["amount"] == "10.50" and credited["participant_id"] == event["participant_id"]
    assert credited["event_id"] == event["id"] and credited["bucket"] == "AVAILABLE"
    assert got[2].body["data"]["status"] == "COMPLETED"
    deliveries = await _settled(hooks, endpoint["id"])
    assert [d["status"] for d in deliveries] == ["DELIVERED"] * 3
    assert [d["webhook_event_id"] for d in reversed(deliveries)] == [d.body["id"] for d in got]
    one = await hooks.ok("GET", f"/v1/webhook-deliveries/{deliveries[0]['id']}")
    assert one["last_response_status"] == 200 and one["last_response_body"] == "thanks"
    assert one["attempt_count"] == 1 and one["max_attempts"] == 8 and one["delivered_at"] is not None


async def test_one_webhook_event_id_is_shared_by_every_endpoint(hooks: Api, receiver: Receiver) -> None:
    async with receiving() as second:
        await _endpoint(hooks, receiver, ["balance.credited"])
        await _endpoint(hooks, second, ["balance.credited", "event.failed"])
        program = await _credit_rule(hooks)
        await _purchase(hooks, program, "alice", "order-1")
        first_got, second_got = await receiver.wait_for(1), await second.wait_for(1)
        assert first_got[0].body == second_got[0].body
        assert first_got[0].headers["webhook-id"] == second_got[0].headers["webhook-id"]
        assert second.unverified == receiver.unverified == 0


async def test_deliveries_to_an_endpoint_keep_the_order_of_the_changes(hooks: Api, receiver: Receiver) -> None:
    await _endpoint(hooks, receiver)
    program = await _credit_rule(hooks)
    for number in range(12):
        await _purchase(hooks, program, f"user-{number % 3}", f"order-{number}")
    got = await receiver.wait_for(12 * 2 + 3)  # a credit and a completion each, and three new participants
    assert receiver.unverified == 0
    by_participant: dict[str, list[str]] = {}
    completed = [d.body["data"]["event_id"] for d in got if d.body["type"] == "event.completed"]
    events = await hooks.ok("GET", "/v1/events", params={"limit": 50})
    assert completed == [event["id"] for event in reversed(events["data"])]  # one participant's mailbox at a time
    for delivery in got:
        data = delivery.body["data"]
        by_participant.setdefault(data["participant_id"], []).append(delivery.body["type"])
    for types in by_participant.values():
        assert types[0] == "participant.created"
        assert types[1:] == ["balance.credited", "event.completed"] * 4


async def test_a_failing_receiver_is_retried_with_backoff_then_failed_then_retried_by_hand(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with serving(tmp_path, attempts_max=3) as api:
        receiver.mode = "fail"
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        program = await _credit_rule(api)
        await _purchase(api, program, "alice", "order-1")
        with trio.fail_after(10):
            while True:
                page = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
                if page["data"] and page["data"][0]["status"] == "FAILED":
                    break
                await trio.sleep(0.02)
        delivery = page["data"][0]
        assert delivery["attempt_count"] == 3 and delivery["next_attempt_at"] is None
        assert len(receiver.requests) == 3 and receiver.unverified == 0
        assert "last_response_body" not in delivery or delivery["last_response_body"] is None
        detail = await api.ok("GET", f"/v1/webhook-deliveries/{delivery['id']}")
        assert detail["last_response_status"] == 500 and detail["last_error"] == "receiver answered 500"
        assert detail["last_response_body"] == "receiver is broken"
        failed = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"status": "FAILED"})
        assert [d["id"] for d in failed["data"]] == [delivery["id"]]

        receiver.mode = "ok"
        retried = await api.ok("POST", f"/v1/webhook-deliveries/{delivery['id']}/retry")
        assert retried["status"] == "PENDING" and retried["attempt_count"] == 0
        await receiver.wait_for(1)
        assert [d["status"] for d in await _settled(api, endpoint["id"])] == ["DELIVERED"]
        assert receiver.delivered[0].headers["webhook-id"] == delivery["webhook_event_id"]
        await api.error("POST", f"/v1/webhook-deliveries/{delivery['id']}/retry", 404, "not_found")


async def test_a_stalled_receiver_never_slows_event_processing(tmp_path: Path, receiver: Receiver) -> None:
    async with serving(tmp_path, read_timeout_s=0.3, attempts_max=1) as api:
        receiver.mode = "stall"
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        program = await _credit_rule(api)
        with trio.fail_after(5):
            for number in range(5):
                assert (await _purchase(api, program, "alice", f"order-{number}"))["status"] == "COMPLETED"
        with trio.fail_after(10):
            while True:
                page = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
                if page["data"] and page["data"][-1]["status"] == "FAILED":
                    break
                await trio.sleep(0.05)
        detail = await api.ok("GET", f"/v1/webhook-deliveries/{page['data'][-1]['id']}")
        assert detail["last_error"].startswith("ReadTimeout")


async def test_during_the_rotation_overlap_both_secrets_verify(hooks: Api, receiver: Receiver) -> None:
    endpoint = await _endpoint(hooks, receiver, ["event.completed"])
    old = endpoint["secret"]
    rotated = await hooks.ok("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated["secret"] != old and re.fullmatch(r"whsec_[0-9a-f]{64}", rotated["secret"])
    receiver.secrets.append(rotated["secret"])
    program = await _credit_rule(hooks)
    await _purchase(hooks, program, "alice", "order-1")
    (got,) = await receiver.wait_for(1)
    assert got.verified_with == [old, rotated["secret"]]
    assert len(got.headers["webhook-signature"].split(" ")) == 2


async def test_without_an_overlap_the_old_secret_stops_at_once(tmp_path: Path, receiver: Receiver) -> None:
    async with serving(tmp_path, rotation_overlap_s=0) as api:
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        rotated = await api.ok("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        receiver.secrets.append(rotated["secret"])
        program = await _credit_rule(api)
        await _purchase(api, program, "alice", "order-1")
        (got,) = await receiver.wait_for(1)
        assert got.verified_with == [rotated["secret"]]


async def test_the_secret_is_shown_once_and_not_stored_in_the_clear(
    tmp_path: Path, hooks: Api, receiver: Receiver
) -> None:
    endpoint = await _endpoint(hooks, receiver)
    shown = await hooks.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}")
    assert "secret" not in shown
    listed = await hooks.ok("GET", "/v1/webhook-endpoints")
    assert all("secret" not in item for item in listed["data"])
    await hooks.engine.wait_idle()
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").rglob("*") if path.is_file())
    assert endpoint["secret"].encode() not in stored
    assert endpoint["secret"][6:].encode() not in stored
    assert (tmp_path / "webhooks.key").stat().st_mode & 0o777 == 0o600


async def test_endpoints_are_listed_newest_first_changed_and_archived(hooks: Api, receiver: Receiver) -> None:
    made = [await _endpoint(hooks, receiver, ["event.completed"]) for _ in range(3)]
    page = await hooks.ok("GET", "/v1/webhook-endpoints", params={"limit": 2})
    assert [e["id"] for e in page["data"]] == [made[2]["id"], made[1]["id"]]
    assert page["pagination"]["has_more"] is True
    rest = await hooks.ok("GET", "/v1/webhook-endpoints", params={"cursor": page["pagination"]["next_cursor"]})
    assert [e["id"] for e in rest["data"]] == [made[0]["id"]] and rest["pagination"]["has_more"] is False
    changed = await hooks.ok(
        "PATCH",
        f"/v1/webhook-endpoints/{made[0]['id']}",
        json={"status": "DISABLED", "description": "paused", "enabled_events": ["balance.debited"]},
    )
    assert changed["status"] == "DISABLED" and changed["enabled_events"] == ["balance.debited"]
    disabled = await hooks.ok("GET", "/v1/webhook-endpoints", params={"status": "DISABLED"})
    assert [e["id"] for e in disabled["data"]] == [made[0]["id"]]
    archived = await hooks.ok("DELETE", f"/v1/webhook-endpoints/{made[1]['id']}")
    assert archived["status"] == "ARCHIVED"
    await hooks.error("GET", f"/v1/webhook-endpoints/{made[1]['id']}", 404, "not_found")
    remaining = await hooks.ok("GET", "/v1/webhook-endpoints")
    assert made[1]["id"] not in [e["id"] for e in remaining["data"]]


async def test_a_disabled_endpoint_is_sent_nothing(hooks: Api, receiver: Receiver) -> None:
    endpoint = await _endpoint(hooks, receiver, ["event.completed"])
    await hooks.ok("PATCH", f"/v1/webhook-endpoints/{endpoint['id']}", json={"status": "DISABLED"})
    program = await _credit_rule(hooks)
    await _purchase(hooks, program, "alice", "order-1")
    await hooks.engine.wait_idle()
    await trio.sleep(0.1)
    assert receiver.requests == []
    assert hooks.engine.webhooks.statistics().outbox_records == 0


async def test_with_no_endpoint_nothing_is_written_to_the_outbox(hooks: Api) -> None:
    program = await _credit_rule(hooks)
    await _purchase(hooks, program, "alice", "order-1")
    await hooks.engine.wait_idle()
    statistics = hooks.engine.webhooks.statistics()
    assert statistics.outbox_records == 0 and statistics.outbox_depth == 0


async def test_types_nobody_subscribed_to_write_nothing(hooks: Api, receiver: Receiver) -> None:
    await _endpoint(hooks, receiver, ["event.failed", "program.burned"])
    program = await _credit_rule(hooks)
    for number in range(3):
        await _purchase(hooks, program, f"user-{number}", f"order-{number}")
    await hooks.engine.wait_idle()
    statistics = hooks.engine.webhooks.statistics()
    assert statistics.outbox_records == 0 and receiver.requests == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "enabled_events": ["*"]}, "url"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com/", "enabled_events": ["balance.teleported"]}, "enabled_events"),
        ({"url": "https://example.com/", "enabled_events": []}, "enabled_events"),
        ({"url": "https://example.com/"}, "enabled_events"),
        ({"url": "https://example.com/", "enabled_events": ["*"], "secret": "mine"}, "secret"),
    ],
)
async def test_bad_endpoints_are_400s(hooks: Api, body: dict[str, Any], field: str) -> None:
    error = await hooks.error("POST", "/v1/webhook-endpoints", 400, "bad_request", json=body)
    assert field in str(error["details"]) or field in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://localhost/hook",
        "https://printer.local/hook",
        "https://db.internal/hook",
        "http://93.184.216.34/hook",
    ],
)
async def test_private_and_plain_http_targets_are_refused_by_default(tmp_path: Path, url: str) -> None:
    async with serving(tmp_path, allow_private_targets=False) as api:
        error = await api.error(
            "POST", "/v1/webhook-endpoints", 400, "bad_request", json={"url": url, "enabled_events": ["*"]}
        )
        assert error["details"]["fields"][0]["field"] == "url"
        endpoint = await api.ok(
            "POST", "/v1/webhook-endpoints", 201, json={"url": "https://93.184.216.34/", "enabled_events": ["*"]}
        )
        await api.error("PATCH", f"/v1/webhook-endpoints/{endpoint['id']}", 400, "bad_request", json={"url": url})


async def test_unknown_ids_and_parameters_are_refused(hooks: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("GET", f"/v1/webhook-endpoints/{missing}"),
        ("PATCH", f"/v1/webhook-endpoints/{missing}"),
        ("DELETE", f"/v1/webhook-endpoints/{missing}"),
        ("POST", f"/v1/webhook-endpoints/{missing}/rotate-secret"),
        ("GET", f"/v1/webhook-endpoints/{missing}/deliveries"),
        ("GET", f"/v1/webhook-deliveries/{missing}"),
        ("POST", f"/v1/webhook-deliveries/{missing}/retry"),
    ]:
        kwargs = {"json": {}} if method == "PATCH" else {}
        await hooks.error(method, path, 404, "not_found", **kwargs)
    await hooks.error("GET", "/v1/webhook-endpoints", 400, "bad_request", params={"sort": "name"})
    await hooks.error("GET", "/v1/webhook-endpoints", 400, "bad_request", params={"limit": "101"})
    await hooks.error("GET", "/v1/webhook-endpoints", 400, "bad_request", params={"status": "ARCHIVED"})
    await hooks.error("GET", "/v1/webhook-endpoints", 400, "bad_request", params={"cursor": "garbage"})


async def test_deliveries_page_newest_first_and_the_metrics_count_them(hooks: Api, receiver: Receiver) -> None:
    endpoint = await _endpoint(hooks, receiver, ["event.completed"])
    program = await _credit_rule(hooks)
    for number in range(3):
        await _purchase(hooks, program, f"user-{number}", f"order-{number}")
    await receiver.wait_for(3)
    every = await _settled(hooks, endpoint["id"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    first = await hooks.ok("GET", path, params={"limit": 2})
    assert [d["id"] for d in first["data"]] == [d["id"] for d in every[:2]]
    assert first["pagination"]["has_more"] is True
    rest = await hooks.ok("GET", path, params={"limit": 2, "cursor": first["pagination"]["next_cursor"]})
    assert [d["id"] for d in rest["data"]] == [every[2]["id"]] and rest["pagination"]["has_more"] is False
    assert all(d["last_response_body"] is None for d in first["data"] + rest["data"])
    await hooks.error("GET", path, 400, "bad_request", params={"cursor": "Zm9v"})
    await hooks.error("GET", path, 400, "bad_request", params={"status": "LOST"})
    metrics = (await hooks.client.get("/metrics")).text
    assert 'scrip_webhook_deliveries_total{outcome="delivered"} 3.0' in metrics
    assert "scrip_webhook_attempts_total 3.0" in metrics
    assert "scrip_webhook_outbox_depth 0.0" in metrics
