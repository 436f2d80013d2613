"""Programs, wallets and assets over HTTP: success paths and their main errors."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _program(api: Api, name: str = "Rewards") -> dict[str, Any]:
    result: dict[str, Any] = await api.ok("POST", "/v1/programs", 201, json={"name": name})
    return result


async def _asset(api: Api, program_id: str, symbol: str, **fields: Any) -> dict[str, Any]:
    body = {
        "program_id": program_id,
        "name": symbol.title(),
        "symbol": symbol,
        "inventory_mode": "SIMPLE",
        "issuance_policy": "UNLIMITED",
        "scale": 2,
        **fields,
    }
    result: dict[str, Any] = await api.ok("POST", "/v1/assets", 201, json=body)
    return result


async def test_programs_create_list_page_get_patch(api: Api) -> None:
    first = await _program(api, "One")
    second = await _program(api, "Two")
    page = await api.ok("GET", "/v1/programs", params={"limit": 1})
    assert [p["id"] for p in page["data"]] == [second["id"]]
    assert page["pagination"]["has_more"] is True
    rest = await api.ok("GET", "/v1/programs", params={"limit": 1, "cursor": page["pagination"]["next_cursor"]})
    assert [p["id"] for p in rest["data"]] == [first["id"]]
    assert rest["pagination"] == {"has_more": False, "next_cursor": None}

    assert await api.ok("GET", f"/v1/programs/{first['id']}") == first
    patched = await api.ok("PATCH", f"/v1/programs/{first['id']}", json={"name": "Uno", "status": "ARCHIVED"})
    assert (patched["name"], patched["status"]) == ("Uno", "ARCHIVED")
    listed = await api.ok("GET", "/v1/programs")
    assert [p["id"] for p in listed["data"]] == [second["id"]]
    archived = await api.ok("GET", "/v1/programs", params={"include_archived": "true"})
    assert len(archived["data"]) == 2
    await api.error("PATCH", f"/v1/programs/{first['id']}", 400, "bad_request", json={"status": "GONE"})
    await api.error("PATCH", "/v1/programs/nope", 404, "not_found", json={"name": "x"})


async def test_wallet_fund_burn_balance(api: Api) -> None:
    program = await _program(api)
    asset = await _asset(api, program["id"], "CASH", issuance_policy="PREFUNDED")
    wallet = f"/v1/programs/{program['id']}/assets/{asset['id']}"
    funded = await api.ok("POST", wallet + "/fund", json={"amount": "100.50", "description": "top up"})
    assert funded["available"] == "100.50" and funded["journal_entry_id"]
    burned = await api.ok("POST", wallet + "/burn", json={"amount": "0.5"})
    assert burned["available"] == "100.00"
    balance = await api.ok("GET", f"/v1/programs/{program['id']}/balance")
    assert balance["data"] == [
        {
            "asset_id": asset["id"],
            "available": "100.00",
            "held": "0.00",
            "deferred": "0.00",
            "issuance_policy": "PREFUNDED",
        }
    ]

    await api.error("POST", wallet + "/burn", 422, "insufficient_balance", json={"amount": "100.01"})
    await api.error("POST", wallet + "/fund", 400, "invalid_scale", json={"amount": "1.001"})
    await api.error("POST", wallet + "/fund", 400, "bad_request", json={"amount": "-1"})
    await api.error("POST", wallet + "/fund", 400, "bad_request", json={"amount": 5})
    await api.error("POST", wallet + "/fund", 400, "bad_request", json={})
    await api.error("POST", f"/v1/programs/{program['id']}/assets/nope/fund", 404, "not_found", json={"amount": "1"})


async def test_link_and_list_program_assets(api: Api) -> None:
    home = await _program(api, "Home")
    other = await _program(api, "Other")
    asset = await _asset(api, home["id"], "PTS")
    linked = await api.ok("POST", f"/v1/programs/{other['id']}/assets", 201, json={"asset_id": asset["id"]})
    assert sorted(linked["program_ids"]) == sorted([home["id"], other["id"]])
    await api.error("POST", f"/v1/programs/{other['id']}/assets", 409, "conflict", json={"asset_id": asset["id"]})
    await api.error("POST", f"/v1/programs/{other['id']}/assets", 404, "not_found", json={"asset_id": "nope"})
    listed = await api.ok("GET", f"/v1/programs/{other['id']}/assets")
    assert [a["id"] for a in listed["data"]] == [asset["id"]]
    await api.error("GET", "/v1/programs/nope/assets", 404, "not_found")


async def test_assets_create_list_get_patch(api: Api) -> None:
    program = await _program(api)
    points = await _asset(api, program["id"], "PTS", max_transaction_amount="500")
    assert points["max_transaction_amount"] == "500.00"
    miles = await _asset(api, program["id"], "MILES", inventory_mode="LOT", scale=0)
    listed = await api.ok("GET", "/v1/assets", params={"program_id": program["id"]})
    assert {a["id"] for a in listed["data"]} == {points["id"], miles["id"]}
    assert await api.ok("GET", f"/v1/assets/{points['id']}") == points

    renamed = await api.ok("PATCH", f"/v1/assets/{points['id']}", json={"name": "Stars"})
    assert (renamed["name"], renamed["max_transaction_amount"]) == ("Stars", "500.00")
    cleared = await api.ok("PATCH", f"/v1/assets/{points['id']}", json={"max_transaction_amount": None})
    assert cleared["max_transaction_amount"] is None
    archived = await api.ok("PATCH", f"/v1/assets/{miles['id']}", json={"status": "ARCHIVED"})
    assert archived["status"] == "ARCHIVED"
    only_active = await api.ok("GET", "/v1/assets", params={"status": "ACTIVE"})
    assert [a["id"] for a in only_active["data"]] == [points["id"]]

    await api.error("PATCH", f"/v1/assets/{points['id']}", 400, "bad_request", json={"scale": 3})
    await api.error("PATCH", f"/v1/assets/{miles['id']}", 409, "conflict", json={"status": "ACTIVE"})
    await api.error(
        "POST",
        "/v1/assets",
        409,
        "conflict",
        json={
            "program_id": program["id"],
            "name": "Again",
            "symbol": "pts",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 2,
        },
    )
    await api.error(
        "POST",
        "/v1/assets",
        400,
        "bad_request",
        json={
            "program_id": program["id"],
            "name": "Big",
            "symbol": "BIG",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 19,
        },
    )
    await api.error(
        "POST",
        "/v1/assets",
        400,
        "invalid_scale",
        json={
            "program_id": program["id"],
            "name": "Cap",
            "symbol": "CAP",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
            "max_transaction_amount": "1.5",
        },
    )
    await api.error(
        "POST",
        "/v1/assets",
        404,
        "not_found",
        json={
            "program_id": "nope",
            "name": "X",
            "symbol": "X",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
