"""Participants over HTTP: upsert, lists, profile, status, state (tags, attributes, counters), balances, lots."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _participant(api: Api, external_id: str = "user_1", status: int = 201, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = await api.ok(
        "POST", "/v1/participants", status, json={"external_id": external_id, **fields}
    )
    return result


async def test_upsert_list_get_patch_status(api: Api) -> None:
    created = await _participant(api, email="a@example.com", tags=["VIP"], attributes={"tier": "gold"})
    assert (created["tags"], created["attributes"]) == (["vip"], {"tier": "gold"})
    again = await _participant(api, status=200, first_name="Ada")
    assert again["id"] == created["id"] and again["first_name"] == "Ada"
    await _participant(api, "user_2")

    by_external = await api.ok("GET", "/v1/participants", params={"external_id": "user_1"})
    assert [p["id"] for p in by_external["data"]] == [created["id"]]
    everyone = await api.ok("GET", "/v1/participants")
    assert len(everyone["data"]) == 2
    fetched = await api.ok("GET", f"/v1/participants/{created['id']}")
    assert fetched["email"] == "a@example.com" and fetched["balances"] == []

    one = f"/v1/participants/{created['id']}"
    patched = await api.ok("PATCH", one, json={"attributes": {"city": "Oslo"}, "tags": ["new"], "email": ""})
    assert patched["attributes"] == {"tier": "gold", "city": "Oslo"} and patched["tags"] == ["new"]
    assert patched["email"] in (None, "")
    await api.error("PATCH", one, 409, "conflict", json={"external_id": "user_2"})
    await api.error("PATCH", one, 400, "bad_request", json={"status": "CLOSED"})
    suspended = await api.ok("PATCH", one + "/status", json={"status": "SUSPENDED"})
    assert suspended["status"] == "SUSPENDED"
    await api.error("PATCH", one + "/status", 400, "bad_request", json={"status": "ASLEEP"})
    await api.error("PATCH", "/v1/participants/nope/status", 404, "not_found", json={"status": "ACTIVE"})
    await api.error("POST", "/v1/participants", 400, "bad_request", json={"external_id": ""})


async def test_tags(api: Api) -> None:
    tags = f"/v1/participants/{(await _participant(api))['id']}/state/tags"
    assert await api.ok("PUT", tags, json={"tags": ["B", "a"]}) == {"tags": ["a", "b"]}
    assert await api.ok("PUT", tags + "/Gold", 201) == {"tag": "gold"}
    assert await api.ok("PUT", tags + "/gold", 200) == {"tag": "gold"}
    await api.ok("DELETE", tags + "/a", 204)
    await api.ok("DELETE", tags + "/absent", 204)
    assert await api.ok("GET", tags) == {"data": [{"tag": "b"}, {"tag": "gold"}]}
    await api.error("PUT", tags, 400, "bad_request", json={"tags": "gold"})
    await api.error("GET", "/v1/participants/nope/state/tags", 404, "not_found")


async def test_attributes(api: Api) -> None:
    attributes = f"/v1/participants/{(await _participant(api, attributes={'a': '1'}))['id']}/state/attributes"
    assert await api.ok("PATCH", attributes, json={"attributes": {"b": "2"}}) == {"attributes": {"a": "1", "b": "2"}}
    assert await api.ok("PUT", attributes + "/c", json={"value": "3"}) == {"key": "c", "value": "3"}
    await api.ok("DELETE", attributes + "/a", 204)
    listed = await api.ok("GET", attributes)
    assert sorted((item["key"], item["value"]) for item in listed["data"]) == [("b", "2"), ("c", "3")]
    await api.error("PUT", attributes + "/c", 400, "bad_request", json={"value": ""})
    await api.error("PATCH", attributes, 400, "bad_request", json={"attributes": {"x": 1}})


async def test_counters(api: Api) -> None:
    counters = f"/v1/participants/{(await _participant(api))['id']}/state/counters"
    assert await api.ok("PUT", counters + "/visits", json={"value": "3"}) == {"key": "visits", "value": "3"}
    assert await api.ok("GET", counters + "/visits") == {"key": "visits", "value": "3"}
    assert await api.ok("GET", counters) == {"data": [{"key": "visits", "value": "3"}]}
    await api.error("PUT", counters + "/visits", 400, "bad_request", json={"value": 3})
    await api.error("PUT", counters + "/visits", 400, "bad_request", json={"value": "three"})
    await api.ok("DELETE", counters + "/visits", 204)
    await api.error("GET", counters + "/visits", 404, "not_found")


async def test_balances_and_lots(api: Api) -> None:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Lots"})
    miles = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Miles",
            "symbol": "MI",
            "inventory_mode": "LOT",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
    simple = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "symbol": "PT",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Earn",
            "condition": "true",
            "actions": [{"type": "CREDIT", "asset_id": miles["id"], "amount": "5", "expires_at": "720h"}],
        },
    )
    for key in ("e1", "e2", "e3"):
        accepted = await api.ok(
            "POST",
            "/v1/events",
            202,
            json={"program_id": program["id"], "external_id": "flyer", "idempotency_key": key, "event_data": {}},
        )
        assert (await api.wait_event(accepted["id"]))["status"] == "COMPLETED"
    participant_id = (await api.ok("GET", "/v1/participants", params={"external_id": "flyer"}))["data"][0]["id"]
    one = f"/v1/participants/{participant_id}"

    balances = await api.ok("GET", one + "/balances", params={"asset_id": miles["id"]})
    assert [(b["asset_id"], b["available"]) for b in balances["data"]] == [(miles["id"], "15")]
    assert (await api.ok("GET", one + "/balances", params={"asset_id": simple["id"]}))["data"] == []
    first = await api.ok("GET", one + "/balances/lots", params={"asset_id": miles["id"], "limit": 2})
    assert [lot["remaining"] for lot in first["data"]] == ["5", "5"] and first["pagination"]["has_more"]
    rest = await api.ok(
        "GET", one + "/balances/lots", params={"asset_id": miles["id"], "cursor": first["pagination"]["next_cursor"]}
    )
    assert len(rest["data"]) == 1 and rest["data"][0]["expires_at"].endswith("Z")
    await api.error("GET", one + "/balances/lots", 400, "bad_request")
    await api.error("GET", one + "/balances/lots", 400, "bad_request", params={"asset_id": simple["id"]})
    await api.error("GET", one + "/balances/lots", 400, "bad_request", params={"asset_id": miles["id"], "cursor": "zz"})
