"""Every list takes the query parameters the hosted reference documents for it, over a real server: a
participant's activity history (oldest first) and events, participants newest first in the slim shape, balances
paged, ``search``/``sort_by``/``sort_dir`` on programs, assets and rules; and an undocumented parameter is a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from tests.http.conftest import Api


async def _credit_rule(api: Api, program: dict[str, Any], asset: dict[str, Any], amount: str = "10") -> None:
    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": amount}]
    body = {"program_id": program["id"], "name": "earn", "condition": "true", "actions": credit}
    await api.ok("POST", "/v1/rules", 201, json=body)


async def _send(api: Api, program: dict[str, Any], external_id: str, key: str, at: datetime | None = None) -> Any:
    body: dict[str, Any] = {
        "program_id": program["id"],
        "external_id": external_id,
        "idempotency_key": key,
        "event_data": {},
    }
    if at is not None:
        body["event_timestamp"] = at.isoformat()
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


async def _walk(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item, one per page, following the cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.ok("GET", path, params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
        items.extend(page["data"])
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            return items


async def test_activity_history_lists_balance_operations_oldest_first_with_filters(api: Api) -> None:
    program, asset = await api.program_and_asset()
    await _credit_rule(api, program, asset)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    event = await _send(api, program, "u1", "k1", at=long_ago)
    participant_id = event["participant_id"]
    base = f"/v1/participants/{participant_id}"
    operation = {"program_id": program["id"], "asset_id": asset["id"], "description": "fraud check", "amount": "4"}
    hold = await api.ok("POST", f"{base}/balances/hold", json=operation)
    adjust = {**operation, "type": "DEBIT", "amount": "1", "description": "fee"}
    await api.ok("POST", f"{base}/balances/adjust", json=adjust)

    history = await api.ok("GET", f"{base}/activity/history")
    assert [(i["action_type"], i["bucket"], i["amount"]) for i in history["data"]] == [
        ("CREDIT", "AVAILABLE", "10.00"),
        ("HOLD", "AVAILABLE", "-4.00"),
        ("HOLD", "HELD", "4.00"),
        ("ADJUST", "AVAILABLE", "-1.00"),
    ]
    credit, held_out, held_in, fee = history["data"]
    assert credit["event_id"] == event["id"] and credit["event_timestamp"] == "2020-01-01T00:00:00Z"
    assert held_out["journal_entry_id"] == held_in["journal_entry_id"] == hold["journal_entry_id"]
    assert fee["event_id"] is None and fee["event_timestamp"] is None and fee["description"] == "fee"
    assert {i["asset_symbol"] for i in history["data"]} == {"PTS"}
    assert set(credit) >= {
        "action_type",
        "amount",
        "asset_id",
        "bucket",
        "description",
        "event_id",
        "event_timestamp",
        "journal_entry_id",
        "created_by_api_key_id",
        "created_at",
    }
    # One page per operation: the cursor resumes inside the HOLD entry, between its two postings.
    assert await _walk(api, f"{base}/activity/history") == history["data"]

    async def kinds(**params: Any) -> list[tuple[str, str]]:
        page = await api.ok("GET", f"{base}/activity/history", params=params)
        return [(i["action_type"], i["bucket"]) for i in page["data"]]

    assert await kinds(bucket="HELD") == [("HOLD", "HELD")]
    assert await kinds(asset_id="other") == []
    assert await kinds(asset_id=asset["id"]) == await kinds()
    # event_from/event_to: the event's time for the credit, the entry's time for the operator's operations.
    assert await kinds(event_to="2021-01-01T00:00:00Z") == [("CREDIT", "AVAILABLE")]
    assert len(await kinds(event_from="2021-01-01T00:00:00Z")) == 3
    assert len(await kinds(**{"from": credit["created_at"]})) == 4  # from: created_at, inclusive
    assert await kinds(**{"to": credit["created_at"]}) == []  # to: exclusive
    await api.error(
        "GET",
        f"{base}/activity/history",
        400,
        "bad_request",
        params={"from": "2022-01-01T00:00:00Z", "to": "2021-01-01T00:00:00Z"},
    )
    await api.error("GET", f"{base}/activity/history", 400, "bad_request", params={"bucket": "SPENT"})
    await api.error("GET", f"{base}/activity/history", 400, "bad_request", params={"state_type": "tag"})
    await api.error("GET", "/v1/participants/nobody/activity/history", 404, "not_found")


async def test_participant_events_are_theirs_newest_first_with_filters(api: Api) -> None:
    program, asset = await api.program_and_asset()
    other_program = await api.ok("POST", "/v1/programs", 201, json={"name": "Other"})
    await _credit_rule(api, program, asset)
    first = await _send(api, program, "u1", "k1", at=datetime(2020, 1, 1, tzinfo=UTC))
    await _send(api, program, "u2", "k2")  # someone else's
    participant_id = first["participant_id"]
    by_id = {"program_id": program["id"], "participant_id": participant_id, "idempotency_key": "k3", "event_data": {}}
    second = await api.wait_event((await api.ok("POST", "/v1/events", 202, json=by_id))["id"])
    third = await _send(api, other_program, "u1", "k4")
    base = f"/v1/participants/{participant_id}/events"

    async def ids(**params: Any) -> list[str]:
        return [event["id"] for event in (await api.ok("GET", base, params=params))["data"]]

    assert await ids() == [third["id"], second["id"], first["id"]]
    assert [e["id"] for e in await _walk(api, base)] == await ids()
    assert await ids(program_id=program["id"]) == [second["id"], first["id"]]
    assert await ids(status="COMPLETED") == await ids()
    assert await ids(status="FAILED") == []
    assert await ids(event_to="2021-01-01T00:00:00Z") == [first["id"]]
    assert await ids(event_from="2021-01-01T00:00:00Z") == [third["id"], second["id"]]
    assert await ids(**{"from": second["created_at"]}) == [third["id"], second["id"]]
    listed = (await api.ok("GET", base))["data"][-1]  # the first event: the other program has no rules
    assert listed["event_type"] == "EXTERNAL" and listed["rule_evaluations"][0]["status"] == "SUCCESS"
    await api.error("GET", base, 400, "bad_request", params={"rule_id": "r"})  # not documented for this list
    await api.error("GET", "/v1/participants/nobody/events", 404, "not_found")


async def test_participants_list_newest_first_slim_with_search_and_time_window(api: Api) -> None:
    program, _ = await api.program_and_asset()
    made = []
    for external_id, email in (("alice", "alice@example.com"), ("bob", "bob@shop.test"), ("carol", None)):
        body: dict[str, Any] = {"external_id": external_id, "program_id": program["id"]}
        if email:
            body["email"] = email
        made.append(await api.ok("POST", "/v1/participants", 201, json=body))
        await trio.sleep(0.002)  # distinct creation times
    listed = await api.ok("GET", "/v1/participants")
    assert [p["external_id"] for p in listed["data"]] == ["carol", "bob", "alice"]
    assert set(listed["data"][0]) == {
        "id",
        "external_id",
        "status",
        "email",
        "phone",
        "first_name",
        "last_name",
        "display_name",
        "created_at",
        "updated_at",
    }
    assert [p["external_id"] for p in await _walk(api, "/v1/participants")] == ["carol", "bob", "alice"]
    oldest = await _walk(api, "/v1/participants", sort_dir="asc", sort_by="created_at")
    assert [p["external_id"] for p in oldest] == ["alice", "bob", "carol"]

    async def names(**params: Any) -> list[str]:
        return [p["external_id"] for p in (await api.ok("GET", "/v1/participants", params=params))["data"]]

    assert await names(search="SHOP") == ["bob"]  # email, case-insensitive
    assert await names(search="aro") == ["carol"]  # external id
    assert await names(search="nobody") == []
    assert await names(**{"from": made[1]["created_at"]}) == ["carol", "bob"]
    assert await names(**{"to": made[1]["created_at"]}) == ["alice"]
    assert await names(external_id="bob", search="alice") == []  # filters apply together
    assert await names(program_id=program["id"], status="ACTIVE") == ["carol", "bob", "alice"]
    for refused in ({"sort_by": "external_id"}, {"sort_by": "status"}, {"sort_dir": "sideways"}, {"name": "x"}):
        await api.error("GET", "/v1/participants", 400, "bad_request", params=refused)


async def test_balances_are_paginated(api: Api) -> None:
    program, points = await api.program_and_asset()
    miles = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Miles",
            "symbol": "MI",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "u1"})
    base = f"/v1/participants/{participant['id']}"
    for asset, amount in ((points, "1"), (miles, "2")):
        adjust = {"program_id": program["id"], "asset_id": asset["id"], "type": "CREDIT", "amount": amount}
        await api.ok("POST", f"{base}/balances/adjust", json={**adjust, "description": "gift"})
    whole = await api.ok("GET", f"{base}/balances")
    assert len(whole["data"]) == 2 and whole["pagination"] == {"has_more": False, "next_cursor": None}
    first = await api.ok("GET", f"{base}/balances", params={"limit": 1})
    assert first["pagination"]["has_more"] is True
    walked = await _walk(api, f"{base}/balances")
    assert walked == whole["data"]
    only = await api.ok("GET", f"{base}/balances", params={"asset_id": miles["id"]})
    assert [b["available"] for b in only["data"]] == ["2"]
    await api.error("GET", f"{base}/balances", 400, "bad_request", params={"limit": 0})
    await api.error("GET", f"/v1/programs/{program['id']}/balance", 400, "bad_request", params={"limit": 201})
    assert (await api.ok("GET", f"/v1/programs/{program['id']}/balance", params={"limit": 1}))["data"] == []


async def test_programs_assets_and_rules_take_search_and_sort(api: Api) -> None:
    program, asset = await api.program_and_asset("Zeta rewards")
    await api.ok("POST", "/v1/programs", 201, json={"name": "alpha club"})

    async def program_names(**params: Any) -> list[str]:
        return [p["name"] for p in (await api.ok("GET", "/v1/programs", params=params))["data"]]

    assert await program_names() == ["alpha club", "Zeta rewards"]  # newest first
    assert await program_names(sort_by="name") == ["alpha club", "Zeta rewards"]  # case-insensitive, asc
    assert await program_names(sort_by="name", sort_dir="desc") == ["Zeta rewards", "alpha club"]
    assert await program_names(sort_by="created_at", sort_dir="asc") == ["Zeta rewards", "alpha club"]
    assert await program_names(search="ZETA") == ["Zeta rewards"]
    by_name = await _walk(api, "/v1/programs", sort_by="name", sort_dir="desc")
    assert [p["name"] for p in by_name] == ["Zeta rewards", "alpha club"]
    # A cursor issued under one order is refused under another.
    cursor = (await api.ok("GET", "/v1/programs", params={"sort_by": "name", "limit": 1}))["pagination"]["next_cursor"]
    await api.error("GET", "/v1/programs", 400, "bad_request", params={"cursor": cursor})

    assets = await api.ok("GET", "/v1/assets", params={"search": "pts"})
    assert [a["id"] for a in assets["data"]] == [asset["id"]]
    assert (await api.ok("GET", "/v1/assets", params={"search": "point"}))["data"][0]["id"] == asset["id"]
    assert (await api.ok("GET", "/v1/assets", params={"search": "gold"}))["data"] == []
    await api.error("GET", "/v1/assets", 400, "bad_request", params={"sort_by": "name"})  # not documented for assets

    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}]
    for name, order in (("b welcome", 30), ("A birthday", 10), ("c streak", 20)):
        rule = {"program_id": program["id"], "name": name, "condition": "true", "actions": credit, "order": order}
        await api.ok("POST", "/v1/rules", 201, json={**rule, "description": f"{name} bonus"})
        await trio.sleep(0.002)

    async def rule_names(**params: Any) -> list[str]:
        return [r["name"] for r in (await api.ok("GET", "/v1/rules", params=params))["data"]]

    assert await rule_names() == ["A birthday", "c streak", "b welcome"]  # by order
    assert await rule_names(sort_dir="desc") == ["b welcome", "c streak", "A birthday"]
    assert await rule_names(sort_by="name") == ["A birthday", "b welcome", "c streak"]
    assert await rule_names(sort_by="created_at") == ["c streak", "A birthday", "b welcome"]
    assert await rule_names(search="STREAK bonus") == ["c streak"]  # in the description
    assert [r["name"] for r in await _walk(api, "/v1/rules", sort_by="name")] == await rule_names(sort_by="name")
    await api.error("GET", "/v1/rules", 400, "bad_request", params={"sort_by": "priority"})
    await api.error("GET", "/v1/rules", 400, "bad_request", params={"search": ""})


async def test_redemptions_take_reward_and_time_filters(api: Api) -> None:
    program, asset = await api.program_and_asset()
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "u1"})
    base = f"/v1/participants/{participant['id']}"
    adjust = {"program_id": program["id"], "asset_id": asset["id"], "type": "CREDIT", "amount": "100"}
    await api.ok("POST", f"{base}/balances/adjust", json={**adjust, "description": "gift"})
    redeem = {"program_id": program["id"], "asset_id": asset["id"], "amount": "5", "description": "coffee"}
    first = await api.ok("POST", f"{base}/redemptions", 201, json=redeem)
    await trio.sleep(0.002)
    second = await api.ok("POST", f"{base}/redemptions", 201, json={**redeem, "description": "tea"})

    async def ids(**params: Any) -> list[str]:
        return [r["id"] for r in (await api.ok("GET", f"{base}/redemptions", params=params))["data"]]

    assert await ids() == [second["id"], first["id"]]
    assert await ids(**{"from": second["created_at"]}) == [second["id"]]
    assert await ids(**{"to": second["created_at"]}) == [first["id"]]
    assert await ids(reward_catalog_item_id="some-reward") == []  # both redeemed an amount, not a reward
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await ids(**{"from": later}) == []
    await api.error("GET", f"{base}/redemptions", 400, "bad_request", params={"reward_id": "x"})
