"""Events over HTTP: 202 once durable, idempotent replay, 409 on a changed payload, batches with mixed items,
lists and filters."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import LIMITS, Api


async def _program(api: Api) -> dict[str, Any]:
    program: dict[str, Any] = await api.ok("POST", "/v1/programs", 201, json={"name": "Events"})
    return program


def _event(program_id: str, key: str, **data: Any) -> dict[str, Any]:
    return {"program_id": program_id, "external_id": "user_1", "idempotency_key": key, "event_data": data}


async def test_replay_returns_original_and_changed_payload_conflicts(api: Api) -> None:
    program = await _program(api)
    first = await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "k1", amount=105))
    await api.wait_event(first["id"])
    replay = await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "k1", amount=105.0))
    assert replay["id"] == first["id"] and replay["status"] == "COMPLETED"
    conflict = await api.error(
        "POST", "/v1/events", 409, "idempotency_conflict", json=_event(program["id"], "k1", amount=1)
    )
    assert conflict["details"]["event_id"] == first["id"]


async def test_event_input_errors(api: Api) -> None:
    program = await _program(api)
    await api.error("POST", "/v1/events", 400, "bad_request", json={"program_id": program["id"], "external_id": "u"})
    await api.error("POST", "/v1/events", 400, "bad_request", json={**_event(program["id"], "k"), "event_data": [1]})
    await api.error("POST", "/v1/events", 400, "bad_request", json=_event(program["id"], ""))
    await api.error(
        "POST", "/v1/events", 400, "bad_request", json={**_event(program["id"], "k"), "event_timestamp": "not a time"}
    )
    await api.error("POST", "/v1/events", 404, "not_found", json=_event("nope", "k"))


async def test_batch_mixes_accepted_and_errors_in_order(api: Api) -> None:
    program = await _program(api)
    items: list[Any] = [
        _event(program["id"], "b1", n=1),
        {"program_id": program["id"], "external_id": "user_1"},  # missing fields
        "not an object",
        _event("nope", "b2"),  # unknown program
        _event(program["id"], "b3", n=3),
    ]
    result = await api.ok("POST", "/v1/events/batch", 202, json={"events": items})
    assert (result["total"], result["success_count"], result["error_count"]) == (5, 2, 3)
    assert [(r["index"], r["status"]) for r in result["results"]] == [
        (0, "accepted"),
        (1, "error"),
        (2, "error"),
        (3, "error"),
        (4, "accepted"),
    ]
    assert result["results"][1]["error"]["code"] == "bad_request"
    assert result["results"][1]["error"]["details"]["fields"][0]["reason"] == "required"
    assert result["results"][3]["error"]["code"] == "not_found"
    assert result["results"][0]["event"]["idempotency_key"] == "b1"

    again = await api.ok(
        "POST", "/v1/events/batch", 202, json={"events": [items[0], items[4], _event(program["id"], "b1", n=2)]}
    )
    assert [r["event"]["id"] for r in again["results"][:2]] == [
        result["results"][0]["event"]["id"],
        result["results"][4]["event"]["id"],
    ]
    assert again["results"][2]["error"]["code"] == "idempotency_conflict"
    for item in result["results"][0::4]:
        assert (await api.wait_event(item["event"]["id"]))["status"] == "COMPLETED"


async def test_batch_envelope_errors(api: Api) -> None:
    await api.error("POST", "/v1/events/batch", 400, "bad_request", json={"events": []})
    await api.error("POST", "/v1/events/batch", 400, "bad_request", json=[{}])
    too_many = [_event("p", f"k{i}") for i in range(LIMITS.batch_events_max + 1)]
    await api.error("POST", "/v1/events/batch", 400, "bad_request", json={"events": too_many})


async def test_list_events_with_filters(api: Api) -> None:
    program = await _program(api)
    other = await _program(api)
    one = await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "a"))
    two = await api.ok("POST", "/v1/events", 202, json={**_event(other["id"], "b"), "external_id": "user_2"})
    await api.wait_event(one["id"])
    await api.wait_event(two["id"])
    by_program = await api.ok("GET", "/v1/events", params={"program_id": program["id"]})
    assert [e["id"] for e in by_program["data"]] == [one["id"]]
    by_external = await api.ok("GET", "/v1/events", params={"external_id": "user_2", "status": "COMPLETED"})
    assert [e["id"] for e in by_external["data"]] == [two["id"]]
    participant_id = by_external["data"][0]["participant_id"]
    assert [
        e["id"] for e in (await api.ok("GET", "/v1/events", params={"participant_id": participant_id}))["data"]
    ] == [two["id"]]
    everything = await api.ok("GET", "/v1/events", params={"from": "2000-01-01T00:00:00Z", "limit": 1})
    assert len(everything["data"]) == 1 and everything["pagination"]["has_more"]
    nothing = await api.ok("GET", "/v1/events", params={"to": "2000-01-01T00:00:00Z"})
    assert nothing["data"] == []
    await api.error("GET", "/v1/events", 400, "bad_request", params={"status": "DONE"})


async def test_journal_filters(api: Api) -> None:
    program = await _program(api)
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
            "scale": 0,
        },
    )
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Earn",
            "condition": "true",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}],
        },
    )
    event = await api.wait_event((await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "j")))["id"])
    for params in (
        {"program_id": program["id"]},
        {"rule_id": rule["id"]},
        {"asset_id": asset["id"]},
        {"participant_id": event["participant_id"]},
        {"event_id": event["id"]},
    ):
        listed = await api.ok("GET", "/v1/journal-entries", params=params)
        assert [e["id"] for e in listed["data"]] == event["journal_entry_ids"], params
    assert (await api.ok("GET", "/v1/journal-entries", params={"rule_id": "nope"}))["data"] == []


async def test_retry_a_failed_event_after_funding_the_wallet(api: Api) -> None:
    program = await _program(api)
    asset = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={"program_id": program["id"], "name": "Cash", "symbol": "CASH", "inventory_mode": "SIMPLE",
              "issuance_policy": "PREFUNDED", "scale": 2},
    )  # fmt: skip
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={"program_id": program["id"], "name": "cashback", "condition": "true",
              "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "5"}]},
    )  # fmt: skip
    event = await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "r1"))
    failed = await api.wait_event(event["id"])
    assert failed["status"] == "FAILED"
    await api.ok("POST", f"/v1/programs/{program['id']}/assets/{asset['id']}/fund", json={"amount": "10"})
    retried = await api.ok("POST", f"/v1/events/{event['id']}/retry", 202)
    assert retried["event_id"] == event["id"]
    assert retried["previous_status"] == "FAILED"
    assert "wallet" in retried["previous_error"]
    done = await api.wait_event(event["id"])
    assert done["status"] == "COMPLETED"
    assert done["attempts"] == 2
    await api.error("POST", f"/v1/events/{event['id']}/retry", 409, "conflict")
    await api.error("POST", "/v1/events/not-an-event/retry", 404, "not_found")


async def test_numbers_beyond_a_double_are_refused_not_a_500(api: Api) -> None:
    # CEL sees JSON numbers as doubles; 10**400 has none, at the top level or nested.
    program = await _program(api)
    huge = 10**400
    await api.error("POST", "/v1/events", 400, "bad_request", json=_event(program["id"], "h1", amount=huge))
    await api.error("POST", "/v1/events", 400, "bad_request", json=_event(program["id"], "h2", items=[{"n": huge}]))
    accepted = await api.ok("POST", "/v1/events", 202, json=_event(program["id"], "h3", amount=10**300))
    assert accepted["status"] == "PENDING"
