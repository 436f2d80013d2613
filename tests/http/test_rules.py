"""Rules over HTTP: create, list by order, patch (409 on an order clash, null clears a bound), validate,
simulate (writes nothing), history."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _setup(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Rules"})
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
    return program, asset


async def test_create_list_get_patch_history(api: Api) -> None:
    program, asset = await _setup(api)
    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}]
    late = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Late",
            "condition": "true",
            "actions": credit,
            "order": 20,
            "active_from": "2026-01-01T00:00:00Z",
        },
    )
    early = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={"program_id": program["id"], "name": "Early", "condition": "true", "actions": credit, "order": 10},
    )
    listed = await api.ok("GET", "/v1/rules", params={"program_id": program["id"]})
    assert [r["id"] for r in listed["data"]] == [early["id"], late["id"]]
    assert await api.ok("GET", f"/v1/rules/{late['id']}") == late
    assert late["active_from"] == "2026-01-01T00:00:00Z"

    await api.error("PATCH", f"/v1/rules/{late['id']}", 409, "conflict", json={"order": 10})
    await api.error(
        "POST",
        "/v1/rules",
        409,
        "conflict",
        json={"program_id": program["id"], "name": "Clash", "condition": "true", "actions": credit, "order": 10},
    )
    renamed = await api.ok("PATCH", f"/v1/rules/{late['id']}", json={"name": "Later"})
    assert renamed["active_from"] == "2026-01-01T00:00:00Z" and renamed["version"] == 2
    cleared = await api.ok("PATCH", f"/v1/rules/{late['id']}", json={"active_from": None})
    assert cleared["active_from"] is None and cleared["name"] == "Later"
    await api.error("PATCH", f"/v1/rules/{late['id']}", 400, "bad_request", json={"actions": []})
    await api.error("PATCH", f"/v1/rules/{late['id']}", 400, "bad_request", json={"order": 0})

    history = await api.ok("GET", f"/v1/rules/{late['id']}/history", params={"limit": 2})
    assert [v["version"] for v in history["data"]] == [3, 2] and history["pagination"]["has_more"]
    assert history["data"][0]["snapshot"]["id"] == late["id"]
    await api.error("GET", f"/v1/rules/{late['id']}/history", 400, "bad_request", params={"limit": 101})


async def test_create_errors(api: Api) -> None:
    program, asset = await _setup(api)
    base = {
        "program_id": program["id"],
        "name": "R",
        "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}],
    }
    bad_cel = await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "condition": "event.type =="})
    assert bad_cel["details"]["fields"][0]["reason"] == "invalid_cel"
    await api.error(
        "POST",
        "/v1/rules",
        400,
        "invalid_scale",
        json={**base, "condition": "true", "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "0.001"}]},
    )
    await api.error(
        "POST", "/v1/rules", 400, "bad_request", json={**base, "condition": "true", "actions": [{"type": "EXPLODE"}]}
    )
    await api.error("POST", "/v1/rules", 404, "not_found", json={**base, "program_id": "nope", "condition": "true"})


async def test_validate(api: Api) -> None:
    assert (await api.ok("POST", "/v1/rules/validate", json={"condition": "event.amount > 1.0"}))["valid"] is True
    invalid = await api.ok("POST", "/v1/rules/validate", json={"condition": "event.amount >"})
    assert invalid["valid"] is False and invalid["details"]["fields"][0]["line"] == 1
    await api.error("POST", "/v1/rules/validate", 400, "bad_request", json={"condition": ""})


async def test_simulate_writes_nothing(api: Api) -> None:
    program, asset = await _setup(api)
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Sim",
            "condition": "event.amount >= 100.0 && !('vip' in participant.tags)",
            "actions": [
                {"type": "CREDIT", "asset_id": asset["id"], "amount": "event.amount * 0.1"},
                {"type": "COUNTER", "key": "spend", "value": "event.amount"},
                {"type": "TAG", "tag": "buyer"},
                {"type": "UNTAG", "tag": "new"},
                {"type": "SET_ATTRIBUTE", "key": "last", "value": "purchase"},
            ],
        },
    )
    simulate = f"/v1/rules/{rule['id']}/simulate"
    result = await api.ok(
        "POST",
        simulate,
        json={"event": {"amount": 120}, "participant_state": {"tags": ["new"], "counters": {"spend": "5"}}},
    )
    assert result["rule"]["id"] == rule["id"]
    evaluation = result["evaluation"]
    assert (evaluation["matched"], evaluation["status"]) == (True, "evaluated")
    credit, counter, tag, untag, attribute = (item["result"] for item in evaluation["results"])
    assert (credit["amount"], credit["asset_symbol"]) == ("12.00", "PTS")
    assert (counter["current_value"], counter["projected_value"]) == ("5", "125.0")
    assert (tag["would_add"], untag["would_remove"], attribute["would_change"]) == (True, True, True)

    vip = await api.ok("POST", simulate, json={"event": {"amount": 120}, "participant_state": {"tags": ["vip"]}})
    assert vip["evaluation"]["matched"] is False and vip["evaluation"]["results"] == []
    broken = await api.ok("POST", simulate, json={"event": {}})
    assert broken["evaluation"]["status"] == "condition_failed" and broken["evaluation"]["reason"]
    await api.error("POST", simulate, 400, "bad_request", json={})
    await api.error("POST", "/v1/rules/nope/simulate", 404, "not_found", json={"event": {}})
    assert (await api.ok("GET", "/v1/participants"))["data"] == []
    assert (await api.ok("GET", "/v1/journal-entries"))["data"] == []
