"""Redemptions and reversals over a real server: lots spent FIFO and restored LIFO with their dates, partial
reversals that never exceed the original, idempotent replays (200), and every refusal (docs/money-out.md)."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api
from tests.http.test_balance_operations import _lot_program


def _redemption(program: dict[str, Any], asset: dict[str, Any], amount: str, **fields: Any) -> dict[str, Any]:
    return {"program_id": program["id"], "asset_id": asset["id"], "amount": amount, "description": "a flight", **fields}


async def test_redeem_then_reverse_in_parts_restoring_lots_newest_first(api: Api) -> None:
    program, miles, participant_id = await _lot_program(api)
    one = f"/v1/participants/{participant_id}"
    lots = (await api.ok("GET", one + "/balances/lots", params={"asset_id": miles["id"]}))["data"]
    first, second, third = (lot["id"] for lot in lots)

    redemption = await api.ok(
        "POST", one + "/redemptions", 201, json=_redemption(program, miles, "12", idempotency_key="r")
    )
    assert (redemption["amount"], redemption["status"], redemption["reversed_amount"]) == ("12", "COMPLETED", "0")
    assert redemption["lots_processed"] == [
        {"id": first, "amount": "5"},
        {"id": second, "amount": "5"},
        {"id": third, "amount": "2"},
    ]
    replay = await api.ok(
        "POST", one + "/redemptions", 200, json=_redemption(program, miles, "12", idempotency_key="r")
    )
    assert replay == redemption
    await api.error(
        "POST",
        one + "/redemptions",
        409,
        "idempotency_conflict",
        json=_redemption(program, miles, "11", idempotency_key="r"),
    )
    await api.error("POST", one + "/redemptions", 422, "insufficient_balance", json=_redemption(program, miles, "4"))
    entry = await api.ok("GET", f"/v1/journal-entries/{redemption['journal_entry_id']}")
    assert entry["action_type"] == "REDEMPTION" and entry["reference_id"] == redemption["id"]

    path = f"/v1/redemptions/{redemption['id']}"
    part = await api.ok(
        "POST", path + "/reverse", 201, json={"reason": "seat downgrade", "amount": "3", "idempotency_key": "v1"}
    )
    # LIFO: the 2 taken from the third lot come back first, then 1 of the second's.
    restored = part["lots_restored"]
    assert [item["amount"] for item in restored] == ["2", "1"]
    by_id = {
        lot["id"]: lot
        for lot in (await api.ok("GET", one + "/balances/lots", params={"asset_id": miles["id"]}))["data"]
    }
    assert [by_id[item["id"]]["parent_lot_id"] for item in restored] == [third, second]
    assert by_id[restored[0]["id"]]["expires_at"] == lots[2]["expires_at"]
    assert (await api.ok("GET", path))["status"] == "PARTIALLY_REVERSED"
    assert (
        await api.ok(
            "POST", path + "/reverse", 200, json={"reason": "seat downgrade", "amount": "3", "idempotency_key": "v1"}
        )
        == part
    )

    over = await api.error("POST", path + "/reverse", 400, "bad_request", json={"reason": "too much", "amount": "10"})
    assert "9 of the redemption is left" in over["message"]
    rest = await api.ok("POST", path + "/reverse", 201, json={"reason": "cancelled"})
    assert rest["amount"] == "9"
    done = await api.ok("GET", path)
    assert (done["status"], done["reversed_amount"]) == ("FULLY_REVERSED", "12")
    await api.error("POST", path + "/reverse", 409, "conflict", json={"reason": "again"})
    reversals = await api.ok("GET", path + "/reversals")
    assert [r["amount"] for r in reversals["data"]] == ["3", "9"]
    first = await api.ok("GET", path + "/reversals", params={"limit": 1})  # the hosted limit/cursor (issue 13)
    assert [r["amount"] for r in first["data"]] == ["3"] and first["pagination"]["has_more"]
    second = await api.ok("GET", path + "/reversals", params={"limit": 1, "cursor": first["pagination"]["next_cursor"]})
    assert [r["amount"] for r in second["data"]] == ["9"] and not second["pagination"]["has_more"]
    await api.error("GET", path + "/reversals", 400, "bad_request", params={"sort_dir": "asc"})
    balances = await api.ok("GET", one + "/balances", params={"asset_id": miles["id"]})
    assert balances["data"][0]["available"] == "15"  # all of it back
    chain = (await api.ok("GET", "/v1/journal-entries", params={"reference_id": redemption["id"]}))["data"]
    assert [e["action_type"] for e in chain] == ["REDEMPTION_REVERSAL", "REDEMPTION_REVERSAL", "REDEMPTION"]

    second_one = await api.ok("POST", one + "/redemptions", 201, json=_redemption(program, miles, "1"))
    listed = await api.ok("GET", one + "/redemptions")
    assert [r["id"] for r in listed["data"]] == [second_one["id"], redemption["id"]]  # newest first
    page = await api.ok("GET", one + "/redemptions", params={"limit": 1})
    assert page["pagination"]["has_more"] is True
    nxt = await api.ok("GET", one + "/redemptions", params={"limit": 1, "cursor": page["pagination"]["next_cursor"]})
    assert [r["id"] for r in nxt["data"]] == [redemption["id"]]
    reversed_only = await api.ok("GET", one + "/redemptions", params={"status": "FULLY_REVERSED"})
    assert [r["id"] for r in reversed_only["data"]] == [redemption["id"]]
    await api.error("GET", "/v1/redemptions/nope", 404, "not_found")
    await api.error("POST", "/v1/redemptions/nope/reverse", 404, "not_found", json={"reason": "x"})
    await api.error("GET", "/v1/participants/nope/redemptions", 404, "not_found")
    await api.error("POST", one + "/redemptions", 400, "bad_request", json=_redemption(program, miles, "0"))
    await api.error("POST", path + "/reverse", 400, "bad_request", json={"reason": ""})
    assert (await api.engine.verify()).ok


async def test_a_simple_asset_redeems_and_reverses_by_amount(api: Api) -> None:
    program, asset = await api.program_and_asset()
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "s"})
    one = f"/v1/participants/{participant['id']}"
    adjust = {
        "program_id": program["id"],
        "asset_id": asset["id"],
        "type": "CREDIT",
        "amount": "50",
        "description": "d",
    }
    await api.ok("POST", one + "/balances/adjust", json=adjust)
    redemption = await api.ok("POST", one + "/redemptions", 201, json=_redemption(program, asset, "20.50"))
    assert redemption["lots_processed"] is None
    reversal = await api.ok(
        "POST", f"/v1/redemptions/{redemption['id']}/reverse", 201, json={"reason": "r", "amount": "0.50"}
    )
    assert reversal["lots_restored"] is None
    balances = await api.ok("GET", one + "/balances", params={"asset_id": asset["id"]})
    assert balances["data"][0]["available"] == "30.00"
    await api.ok("PATCH", one + "/status", json={"status": "SUSPENDED"})
    await api.error("POST", one + "/redemptions", 409, "conflict", json=_redemption(program, asset, "1"))
    assert (await api.engine.verify()).ok


async def test_a_reversal_key_reused_on_another_redemption_is_a_conflict_not_a_replay(api: Api) -> None:
    """Found by the money-out crash trial's author: the request hash must include the redemption reversed."""
    program, asset = await api.program_and_asset()
    member = (await api.ok("POST", "/v1/participants", 201, json={"external_id": "m"}))["id"]
    credit = {
        "program_id": program["id"],
        "asset_id": asset["id"],
        "type": "CREDIT",
        "amount": "10",
        "description": "d",
    }
    await api.ok("POST", f"/v1/participants/{member}/balances/adjust", json=credit)
    first, second = [
        await api.ok("POST", f"/v1/participants/{member}/redemptions", 201, json=_redemption(program, asset, "4"))
        for _ in range(2)
    ]
    body = {"reason": "r", "amount": "1", "idempotency_key": "k"}
    await api.ok("POST", f"/v1/redemptions/{first['id']}/reverse", 201, json=body)
    await api.error("POST", f"/v1/redemptions/{second['id']}/reverse", 409, "idempotency_conflict", json=body)
    assert (await api.ok("GET", f"/v1/redemptions/{second['id']}"))["reversed_amount"] == "0.00"
