"""The reward catalog over a real server: CRUD, catalog redemptions by quantity and by amount, each limit
(status, window, max_total, max_per_participant) refused exactly, and reversals giving units back."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _funded(api: Api, external_id: str) -> str:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": external_id})
    return str(participant["id"])


async def _credit(api: Api, program: dict[str, Any], asset: dict[str, Any], participant_id: str, amount: str) -> None:
    body = {
        "program_id": program["id"],
        "asset_id": asset["id"],
        "type": "CREDIT",
        "amount": amount,
        "description": "d",
    }
    await api.ok("POST", f"/v1/participants/{participant_id}/balances/adjust", json=body)


async def test_catalog_crud_and_unit_redemptions_within_their_limits(api: Api) -> None:
    program, asset = await api.program_and_asset()
    rewards = f"/v1/programs/{program['id']}/rewards"
    mug = await api.ok(
        "POST",
        rewards,
        201,
        json={
            "name": "Mug",
            "redemption_type": "UNIT_BASED",
            "asset_id": asset["id"],
            "unit_cost": "10.00",
            "status": "ACTIVE",
            "max_total": 3,
            "max_per_participant": 2,
            "category": "kitchen",
        },
    )
    assert (mug["redeemed_count"], mug["unit_cost"]) == (0, "10.00")
    await api.ok(
        "POST",
        rewards,
        201,
        json={
            "name": "Zebra",
            "redemption_type": "UNIT_BASED",
            "asset_id": asset["id"],
            "unit_cost": "1",
            "status": "INACTIVE",
        },
    )
    names = [r["name"] for r in (await api.ok("GET", rewards, params={"sort_by": "name", "sort_dir": "asc"}))["data"]]
    assert names == ["Mug", "Zebra"]
    assert [r["name"] for r in (await api.ok("GET", rewards, params={"search": "ze"}))["data"]] == ["Zebra"]
    await api.error(
        "POST",
        rewards,
        400,
        "invalid_scale",
        json={
            "name": "X",
            "redemption_type": "UNIT_BASED",
            "asset_id": asset["id"],
            "unit_cost": "0.001",
            "status": "ACTIVE",
        },
    )
    await api.error("PATCH", f"{rewards}/{mug['id']}", 400, "bad_request", json={"asset_id": asset["id"]})

    ann, bob = await _funded(api, "ann"), await _funded(api, "bob")
    for who in (ann, bob):
        await _credit(api, program, asset, who, "100")
    item = {"program_id": program["id"], "reward_id": mug["id"]}
    two = await api.ok("POST", f"/v1/participants/{ann}/redemptions/items", 201, json={**item, "quantity": 2})
    assert (two["amount"], two["quantity"], two["reward_catalog_item_id"]) == ("20.00", 2, mug["id"])
    refused = await api.error("POST", f"/v1/participants/{ann}/redemptions/items", 409, "conflict", json=item)
    assert refused["details"]["reason"] == "max_per_participant_reached"
    await api.ok("POST", f"/v1/participants/{bob}/redemptions/items", 201, json=item)
    sold_out = await api.error("POST", f"/v1/participants/{bob}/redemptions/items", 409, "conflict", json=item)
    assert sold_out["details"]["reason"] == "max_total_reached"
    assert (await api.ok("GET", f"{rewards}/{mug['id']}"))["redeemed_count"] == 3

    # A reversal of one unit gives it back to the catalog (and to ann's own count).
    back = await api.ok("POST", f"/v1/redemptions/{two['id']}/reverse", 201, json={"reason": "broken", "quantity": 1})
    assert back["amount"] == "10.00"
    await api.error(
        "POST", f"/v1/redemptions/{two['id']}/reverse", 400, "bad_request", json={"reason": "x", "amount": "1"}
    )
    assert (await api.ok("GET", f"{rewards}/{mug['id']}"))["redeemed_count"] == 2
    await api.ok("POST", f"/v1/participants/{ann}/redemptions/items", 201, json=item)

    await api.ok("PATCH", f"{rewards}/{mug['id']}", json={"status": "INACTIVE", "max_total": 10})
    inactive = await api.error("POST", f"/v1/participants/{bob}/redemptions/items", 409, "conflict", json=item)
    assert inactive["details"]["reason"] == "reward_unavailable"
    await api.ok("PATCH", f"{rewards}/{mug['id']}", json={"status": "ACTIVE", "available_from": "2999-01-01T00:00:00Z"})
    later = await api.error("POST", f"/v1/participants/{bob}/redemptions/items", 409, "conflict", json=item)
    assert later["details"]["reason"] == "reward_unavailable"
    await api.ok("PATCH", f"{rewards}/{mug['id']}", json={"status": "ARCHIVED"})
    await api.error("PATCH", f"{rewards}/{mug['id']}", 409, "conflict", json={"status": "ACTIVE"})
    assert [r["name"] for r in (await api.ok("GET", rewards))["data"]] == ["Zebra"]
    assert len((await api.ok("GET", rewards, params={"include_archived": "true"}))["data"]) == 2
    await api.error("GET", f"/v1/programs/{program['id']}/rewards/nope", 404, "not_found")
    assert (await api.engine.verify()).ok


async def test_amount_based_rewards_take_an_amount_of_at_least_the_unit_cost(api: Api) -> None:
    program, asset = await api.program_and_asset()
    card = await api.ok(
        "POST",
        f"/v1/programs/{program['id']}/rewards",
        201,
        json={
            "name": "Gift card",
            "redemption_type": "AMOUNT_BASED",
            "asset_id": asset["id"],
            "unit_cost": "5",
            "status": "ACTIVE",
        },
    )
    who = await _funded(api, "cy")
    await _credit(api, program, asset, who, "30")
    path = f"/v1/participants/{who}/redemptions/items"
    item = {"program_id": program["id"], "reward_id": card["id"]}
    await api.error("POST", path, 400, "bad_request", json=item)
    await api.error("POST", path, 400, "bad_request", json={**item, "amount": "4.99"})
    await api.error("POST", path, 400, "bad_request", json={**item, "amount": "5", "quantity": 2})
    await api.error("POST", path, 422, "insufficient_balance", json={**item, "amount": "31"})
    done = await api.ok("POST", path, 201, json={**item, "amount": "25", "idempotency_key": "gc"})
    assert await api.ok("POST", path, 200, json={**item, "amount": "25", "idempotency_key": "gc"}) == done
    assert (await api.ok("GET", f"/v1/programs/{program['id']}/rewards/{card['id']}"))["redeemed_count"] == 1
    await api.ok("POST", f"/v1/redemptions/{done['id']}/reverse", 201, json={"reason": "lost"})
    assert (await api.ok("GET", f"/v1/programs/{program['id']}/rewards/{card['id']}"))["redeemed_count"] == 0
    assert (await api.engine.verify()).ok
