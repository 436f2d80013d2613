"""Acceptance 1: the reference quickstart purely over HTTP, against a real server and a real store."""

from __future__ import annotations

from tests.http.conftest import Api


async def test_quickstart_over_http(api: Api) -> None:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Rewards"})
    assert program["status"] == "ACTIVE"
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
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Big purchase",
            "condition": "event.type == 'purchase' && event.amount >= 100.0",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "10"}],
        },
    )
    accepted = await api.ok(
        "POST",
        "/v1/events",
        202,
        json={
            "program_id": program["id"],
            "external_id": "user_123",
            "idempotency_key": "order-1",
            "event_data": {"type": "purchase", "amount": 105.00},
        },
    )
    assert set(accepted) == {
        "id",
        "program_id",
        "external_id",
        "participant_id",
        "idempotency_key",
        "event_timestamp",
        "status",
    }
    assert accepted["status"] == "PENDING"
    assert accepted["event_timestamp"].endswith("Z")

    event = await api.wait_event(accepted["id"])
    assert event["status"] == "COMPLETED", event
    assert [e["status"] for e in event["rule_evaluations"]] == ["SUCCESS"]
    participant_id = event["participant_id"]

    balances = await api.ok("GET", f"/v1/participants/{participant_id}/balances")
    assert balances["data"] == [{"asset_id": asset["id"], "available": "10.00", "held": "0.00", "deferred": "0.00"}]
    assert balances["pagination"] == {"has_more": False, "next_cursor": None}

    entries = await api.ok("GET", "/v1/journal-entries", params={"event_id": accepted["id"]})
    [entry] = entries["data"]
    assert entry["id"] == event["journal_entry_ids"][0]
    assert entry["rule_id"] == rule["id"] and entry["program_id"] == program["id"]
    legs = sorted((p["entity_type"], p["entity_id"], p["amount"]) for p in entry["postings"])
    assert legs == [("PARTICIPANT", participant_id, "10.00"), ("SYSTEM", "SYSTEM_ISSUANCE", "-10.00")]
    assert await api.ok("GET", f"/v1/journal-entries/{entry['id']}") == entry
