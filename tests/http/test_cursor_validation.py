"""Every paginated list takes only a cursor it issued: anything else is one 400, never a 500 nor an empty page.

One server holds two or more items of every list; each list is walked page by page (limit 1) with the cursors it
hands out, then asked with cursors that are garbage, not base64, base64 of non-JSON, JSON of the wrong shape and
JSON with elements of the wrong types. Each bad one must get the same answer: 400 ``bad_request`` naming the
``cursor`` field.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.http.conftest import Api


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


BAD_CURSORS = {
    "garbage": "!!not a cursor!!",
    "not base64 (bad padding)": "zz",
    "not base64 (bad alphabet)": "abc$",
    "not ascii": "curseur-é",
    "too long": "A" * 4_096,
    "base64 of non-JSON": _b64(b"\xff\xfe not json"),
    "JSON object": _b64(b'{"after": 1}'),
    "JSON empty array": _b64(b"[]"),
    "JSON array too long": _b64(b'["a", "b", "c", "d", "e"]'),
    "JSON string": _b64(b'"a"'),
    "wrong element types (ints)": _b64(b"[1, 2]"),
    "wrong element types (nulls)": _b64(b"[null, null, null]"),
    "wrong element types (nested)": _b64(b'[["x"], {"y": 1}]'),
    "wrong element types (bool)": _b64(b"[true]"),
    "wrong element types (float)": _b64(b"[1.5]"),
    "wrong element types (string not base64)": _b64(b'["!!"]'),
    "wrong element types (empty bytes)": _b64(b'[""]'),
}


async def _world(api: Api) -> dict[str, tuple[str, dict[str, Any]]]:
    """Two or more of everything; returns each list route with the query it needs."""
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Cursors"})
    await api.ok("POST", "/v1/programs", 201, json={"name": "Cursors too"})
    asset = {"program_id": program["id"], "issuance_policy": "UNLIMITED", "scale": 0}
    miles = await api.ok(
        "POST", "/v1/assets", 201, json={**asset, "name": "Miles", "symbol": "MI", "inventory_mode": "LOT"}
    )
    await api.ok(
        "POST", "/v1/assets", 201, json={**asset, "name": "Points", "symbol": "PT", "inventory_mode": "SIMPLE"}
    )
    earn = {"type": "CREDIT", "asset_id": miles["id"], "amount": "5", "expires_at": "720h"}
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={"program_id": program["id"], "name": "Earn", "condition": "true", "actions": [earn]},
    )
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={"program_id": program["id"], "name": "Never", "condition": "false", "actions": [earn], "order": 200},
    )
    await api.ok("PATCH", f"/v1/rules/{rule['id']}", json={"name": "Earn more"})
    events = [
        ("flyer", "e1"),
        ("flyer", "e2"),
        ("flyer", "e3"),
        ("walker", "e4"),
    ]
    for external_id, key in events:
        accepted = await api.ok(
            "POST",
            "/v1/events",
            202,
            json={"program_id": program["id"], "external_id": external_id, "idempotency_key": key, "event_data": {}},
        )
        assert (await api.wait_event(accepted["id"]))["status"] == "COMPLETED"
    flyer = (await api.ok("GET", "/v1/participants", params={"external_id": "flyer"}))["data"][0]
    return {
        "programs": ("/v1/programs", {}),
        "assets": ("/v1/assets", {}),
        "program assets": (f"/v1/programs/{program['id']}/assets", {}),
        "rules": ("/v1/rules", {}),
        "rule history": (f"/v1/rules/{rule['id']}/history", {}),
        "participants": ("/v1/participants", {}),
        "participants by external id": ("/v1/participants", {"external_id": "flyer"}),
        "lots": (f"/v1/participants/{flyer['id']}/balances/lots", {"asset_id": miles["id"]}),
        "events": ("/v1/events", {}),
        "events by status": ("/v1/events", {"status": "COMPLETED"}),
        "journal entries": ("/v1/journal-entries", {}),
        "journal entries by participant": ("/v1/journal-entries", {"participant_id": flyer["id"]}),
        "balances": (f"/v1/participants/{flyer['id']}/balances", {}),
        "activity history": (f"/v1/participants/{flyer['id']}/activity/history", {}),
        "participant events": (f"/v1/participants/{flyer['id']}/events", {}),
        "programs by name": ("/v1/programs", {"sort_by": "name"}),
        "rules by name": ("/v1/rules", {"sort_by": "name"}),
        "events oldest first": ("/v1/events", {"sort_dir": "asc"}),
        "participants oldest first": ("/v1/participants", {"sort_dir": "asc"}),
    }


def test_every_list_route_is_covered() -> None:
    """A new paginated route must join the list in ``_world``: the table of routes here is checked against the app."""
    from scrip_actor.http import routes_assets, routes_events, routes_participants, routes_programs, routes_rules

    declared = [
        *routes_assets.ENDPOINTS,
        *routes_events.endpoints(batch_events_max=20),
        *routes_participants.ENDPOINTS,
        *routes_programs.ENDPOINTS,
        *routes_rules.ENDPOINTS,
    ]
    paginated = {
        endpoint.path
        for endpoint in declared
        if endpoint.query is not None and "cursor" in getattr(endpoint.query, "__struct_fields__", ())
    }
    assert paginated == {
        "/v1/programs",
        "/v1/assets",
        "/v1/programs/{program_id}/assets",
        "/v1/rules",
        "/v1/rules/{rule_id}/history",
        "/v1/participants",
        "/v1/participants/{participant_id}/balances/lots",
        "/v1/events",
        "/v1/journal-entries",
        "/v1/programs/{program_id}/balance",
        "/v1/participants/{participant_id}/balances",
        "/v1/participants/{participant_id}/activity/history",
        "/v1/participants/{participant_id}/events",
    }


async def _walk(api: Api, path: str, query: dict[str, Any]) -> list[str]:
    """Every item id of a list, one per page, following the cursors; checks that none repeats."""
    whole = await api.ok("GET", path, params={**query, "limit": 100})
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(whole["data"]) + 1):
        page = await api.ok("GET", path, params={**query, "limit": 1, **({"cursor": cursor} if cursor else {})})
        seen.extend(_identity(item) for item in page["data"])
        cursor = page["pagination"]["next_cursor"]
        assert (cursor is not None) == page["pagination"]["has_more"]
        if cursor is None:
            break
    assert seen == [_identity(item) for item in whole["data"]], path
    return seen


def _identity(item: dict[str, Any]) -> str:
    if "version" in item and "snapshot" in item:
        return str(item["version"])
    if "journal_entry_id" in item:  # a balance operation: one posting of an entry
        return f"{item['journal_entry_id']} {item['asset_id']} {item['bucket']}"
    if "available" in item:  # a balance: one per asset
        return str(item["asset_id"])
    return str(item.get("id", item.get("number")))


async def test_bad_cursors_are_one_400_on_every_list_and_good_ones_page(api: Api) -> None:
    routes = await _world(api)
    for name, (path, query) in routes.items():
        walked = await _walk(api, path, query)
        assert len(walked) >= (1 if "external id" in name or name == "balances" else 2), (name, walked)
        for why, cursor in BAD_CURSORS.items():
            body = await api.error("GET", path, 400, "bad_request", params={**query, "cursor": cursor})
            assert body["details"]["fields"][0]["field"] == "cursor", (name, why, body)


@pytest.mark.parametrize(
    ("issuer", "taker"),
    [("/v1/programs", "/v1/rules"), ("/v1/rules", "/v1/events"), ("/v1/events", "/v1/programs")],
)
async def test_a_cursor_from_a_list_of_another_shape_is_a_400(api: Api, issuer: str, taker: str) -> None:
    await _world(api)
    cursor = (await api.ok("GET", issuer, params={"limit": 1}))["pagination"]["next_cursor"]
    assert cursor is not None
    await api.error("GET", taker, 400, "bad_request", params={"cursor": cursor})
