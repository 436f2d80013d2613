"""A Stripe-Issuing-style flow over a real server, driven by events: authorization credits provisional points to
HELD, capture settles them (with a delta), another authorization is voided; the reference's journal chain and
the PREFUNDED wallet agree at every step."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _event(api: Api, program: dict[str, Any], key: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {"program_id": program["id"], "external_id": "cardholder", "idempotency_key": key, "event_data": data}
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


async def test_authorize_capture_and_void_from_events(api: Api) -> None:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Card"})
    cash = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Cashback",
            "symbol": "CB",
            "inventory_mode": "LOT",
            "issuance_policy": "PREFUNDED",
            "scale": 2,
        },
    )
    await api.ok("POST", f"/v1/programs/{program['id']}/assets/{cash['id']}/fund", json={"amount": "100.00"})
    rules = [
        (
            "authorization",
            "event.type == 'issuing_authorization.created'",
            {"bucket": "HELD", "amount": "round(event.amount * 0.02, 2)"},
        ),
        (
            "capture",
            "event.type == 'issuing_transaction.created'",
            {"amount": "round(event.amount * 0.02, 2)", "expires_at": "8760h"},
        ),
    ]
    for name, condition, fields in rules:
        action = {"type": "CREDIT", "asset_id": cash["id"], "reference_id": "event.authorization", **fields}
        await api.ok(
            "POST",
            "/v1/rules",
            201,
            json={"program_id": program["id"], "name": name, "condition": condition, "actions": [action]},
        )
    void = {"type": "VOID_HOLD", "asset_id": cash["id"], "reference_id": "event.authorization"}
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "void",
            "condition": "event.type == 'issuing_authorization.voided'",
            "actions": [void],
        },
    )

    async def state() -> tuple[str, str, str]:
        [item] = (await api.ok("GET", "/v1/participants", params={"external_id": "cardholder"}))["data"]
        participant = await api.ok("GET", f"/v1/participants/{item['id']}")  # the list's items are slim
        [balance] = participant["balances"]
        wallet = (await api.ok("GET", f"/v1/programs/{program['id']}/balance"))["data"][0]
        return balance["available"], balance["held"], wallet["available"]

    auth = await _event(
        api, program, "a1", {"type": "issuing_authorization.created", "authorization": "iauth_1", "amount": 50.0}
    )
    assert auth["status"] == "COMPLETED", auth
    assert await state() == ("0.00", "1.00", "99.00")
    capture = await _event(
        api, program, "c1", {"type": "issuing_transaction.created", "authorization": "iauth_1", "amount": 62.5}
    )
    assert capture["status"] == "COMPLETED", capture
    assert await state() == ("1.25", "0.00", "98.75")  # the 0.25 delta came from the wallet
    chain = (await api.ok("GET", "/v1/journal-entries", params={"reference_id": "iauth_1"}))["data"]
    assert [entry["action_type"] for entry in chain] == ["SETTLE", "CREDIT"]

    await _event(
        api, program, "a2", {"type": "issuing_authorization.created", "authorization": "iauth_2", "amount": 20.0}
    )
    assert await state() == ("1.25", "0.40", "98.35")
    voided = await _event(api, program, "v2", {"type": "issuing_authorization.voided", "authorization": "iauth_2"})
    assert voided["status"] == "COMPLETED", voided
    assert await state() == ("1.25", "0.00", "98.75")
    again = await _event(api, program, "v3", {"type": "issuing_authorization.voided", "authorization": "iauth_2"})
    assert again["status"] == "FAILED" and "VOID_HOLD" in again["error_message"]
    assert (await api.engine.verify()).ok
