"""Adjust, hold, release, forfeit and void-hold over a real server: each answer, each refusal, idempotency, the
journal chain of a reference, and lots split and stamped by holds (docs/money-out.md)."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _participant(api: Api, external_id: str = "ann") -> str:
    created = await api.ok("POST", "/v1/participants", 201, json={"external_id": external_id})
    participant_id: str = created["id"]
    return participant_id


def _body(program: dict[str, Any], asset: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"program_id": program["id"], "asset_id": asset["id"], "description": "test", **fields}


async def test_adjust_credit_and_debit_with_every_refusal(api: Api) -> None:
    program, asset = await api.program_and_asset()
    participant_id = await _participant(api)
    one = f"/v1/participants/{participant_id}/balances"
    credited = await api.ok("POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="100.00"))
    assert credited["balance"] == {"asset_id": asset["id"], "available": "100.00", "held": "0.00", "deferred": "0.00"}
    assert (credited["amount"], credited["type"], credited["bucket"]) == ("100.00", "CREDIT", "AVAILABLE")
    entry = await api.ok("GET", f"/v1/journal-entries/{credited['journal_entry_id']}")
    assert entry["action_type"] == "ADJUST"
    assert {(p["entity_id"], p["bucket"], p["amount"]) for p in entry["postings"]} == {
        ("SYSTEM_ISSUANCE", "AVAILABLE", "-100.00"),
        (participant_id, "AVAILABLE", "100.00"),
    }
    debited = await api.ok("POST", one + "/adjust", json=_body(program, asset, type="DEBIT", amount="30"))
    assert debited["balance"]["available"] == "70.00"

    short = await api.error(
        "POST", one + "/adjust", 422, "insufficient_balance", json=_body(program, asset, type="DEBIT", amount="71")
    )
    assert "available 70.00" in short["message"]
    negative = await api.ok(
        "POST", one + "/adjust", json=_body(program, asset, type="DEBIT", amount="80", allow_negative=True)
    )
    assert negative["balance"]["available"] == "-10.00"
    await api.ok("POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="10"))
    await api.error(
        "POST", one + "/adjust", 400, "invalid_scale", json=_body(program, asset, type="CREDIT", amount="1.001")
    )
    await api.error("POST", one + "/adjust", 400, "bad_request", json=_body(program, asset, type="CREDIT", amount="-1"))
    await api.error(
        "POST",
        one + "/adjust",
        400,
        "bad_request",
        json=_body(program, asset, type="CREDIT", amount="1", allow_negative=True),
    )
    await api.error(
        "POST",
        one + "/adjust",
        400,
        "bad_request",
        json=_body(program, asset, type="DEBIT", amount="1", bucket="HELD", allow_negative=True),
    )
    await api.error(
        "POST",
        one + "/adjust",
        400,
        "bad_request",
        json=_body(program, asset, type="CREDIT", amount="1", description=""),
    )
    await api.error("POST", one + "/adjust", 400, "bad_request", json=_body(program, asset, type="GIFT", amount="1"))
    await api.error(
        "POST",
        "/v1/participants/nobody/balances/adjust",
        404,
        "not_found",
        json=_body(program, asset, type="CREDIT", amount="1"),
    )
    other = await api.ok("POST", "/v1/programs", 201, json={"name": "Other"})  # the asset is not linked to it
    await api.error("POST", one + "/adjust", 400, "bad_request", json=_body(other, asset, type="CREDIT", amount="1"))
    assert (await api.engine.verify()).ok


async def test_hold_release_forfeit_of_a_simple_asset(api: Api) -> None:
    program, asset = await api.program_and_asset()
    participant_id = await _participant(api)
    one = f"/v1/participants/{participant_id}/balances"
    await api.ok("POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="70"))

    held = await api.ok("POST", one + "/hold", json=_body(program, asset, amount="20", reference_id="auth-1"))
    assert (held["operation"], held["amount_processed"], held["reference_id"]) == ("HOLD", "20.00", "auth-1")
    assert (held["balance"]["available"], held["balance"]["held"]) == ("50.00", "20.00")
    assert held["lots_processed"] is None and held["message"] == "Processed 20.00 PTS"
    await api.error("POST", one + "/hold", 422, "insufficient_balance", json=_body(program, asset, amount="50.01"))
    released = await api.ok("POST", one + "/release", json=_body(program, asset, reference_id="auth-1"))
    assert (released["amount_processed"], released["balance"]["held"]) == ("20.00", "0.00")
    await api.error("POST", one + "/release", 422, "insufficient_balance", json=_body(program, asset))

    chain = await api.ok("GET", "/v1/journal-entries", params={"reference_id": "auth-1"})
    assert [entry["action_type"] for entry in chain["data"]] == ["RELEASE", "HOLD"]  # newest first

    forfeited = await api.ok("POST", one + "/forfeit", json=_body(program, asset, amount="10", bucket="AVAILABLE"))
    assert forfeited["balance"]["available"] == "60.00"
    entry = await api.ok("GET", f"/v1/journal-entries/{forfeited['journal_entry_id']}")
    assert entry["action_type"] == "FORFEIT"
    assert {(p["entity_id"], p["amount"]) for p in entry["postings"]} == {
        (participant_id, "-10.00"),
        ("SYSTEM_BREAKAGE", "10.00"),
    }
    await api.error("POST", one + "/forfeit", 400, "bad_request", json=_body(program, asset, amount="1"))
    await api.error("POST", one + "/hold", 400, "bad_request", json=_body(program, asset, amount="1", bucket="HELD"))
    await api.error("POST", one + "/void-hold", 400, "bad_request", json=_body(program, asset, reference_id="auth-1"))
    await api.error("POST", one + "/hold", 400, "bad_request", json=_body(program, asset, lot_ids=["x"]))

    # A CLOSED participant: no adjust, hold or release, but forfeit still works.
    await api.ok("PATCH", f"/v1/participants/{participant_id}/status", json={"status": "CLOSED"})
    await api.error("POST", one + "/hold", 409, "conflict", json=_body(program, asset, amount="1"))
    await api.error("POST", one + "/adjust", 409, "conflict", json=_body(program, asset, type="CREDIT", amount="1"))
    everything = await api.ok("POST", one + "/forfeit", json=_body(program, asset, bucket="AVAILABLE"))
    assert (everything["amount_processed"], everything["balance"]["available"]) == ("60.00", "0.00")
    assert (await api.engine.verify()).ok


async def test_an_idempotency_key_answers_the_same_and_refuses_another_request(api: Api) -> None:
    program, asset = await api.program_and_asset()
    one = f"/v1/participants/{await _participant(api)}/balances"
    await api.ok("POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="50", idempotency_key="c1"))
    again = await api.ok(
        "POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="50", idempotency_key="c1")
    )
    assert again["balance"]["available"] == "50.00"  # applied once
    first = await api.ok("POST", one + "/hold", json=_body(program, asset, amount="5", idempotency_key="h1"))
    replay = await api.ok("POST", one + "/hold", json=_body(program, asset, amount="5", idempotency_key="h1"))
    assert replay == first
    await api.error(
        "POST", one + "/hold", 409, "idempotency_conflict", json=_body(program, asset, amount="6", idempotency_key="h1")
    )
    await api.error(
        "POST",
        one + "/release",
        409,
        "idempotency_conflict",
        json=_body(program, asset, amount="5", idempotency_key="h1"),
    )
    balances = await api.ok("GET", one, params={"asset_id": asset["id"]})
    assert (balances["data"][0]["available"], balances["data"][0]["held"]) == ("45.00", "5.00")
    # A refused call stores nothing: the same key runs again once the balance allows it.
    await api.error(
        "POST",
        one + "/hold",
        422,
        "insufficient_balance",
        json=_body(program, asset, amount="100", idempotency_key="h2"),
    )
    await api.ok("POST", one + "/adjust", json=_body(program, asset, type="CREDIT", amount="100"))
    await api.ok("POST", one + "/hold", json=_body(program, asset, amount="100", idempotency_key="h2"))


async def _lot_program(api: Api) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A LOT asset and a participant with three lots of 5 (one per event), expiring in 30 days."""
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
    return program, miles, participant_id


async def test_holds_of_lots_split_them_and_keep_their_dates(api: Api) -> None:
    program, miles, participant_id = await _lot_program(api)
    one = f"/v1/participants/{participant_id}/balances"
    lots = (await api.ok("GET", one + "/lots", params={"asset_id": miles["id"]}))["data"]
    first, second, third = (lot["id"] for lot in lots)

    held = await api.ok("POST", one + "/hold", json=_body(program, miles, amount="7", reference_id="r1"))
    assert held["lots_processed"] == [{"id": first, "amount": "5"}, {"id": second, "amount": "2"}]
    assert (held["balance"]["available"], held["balance"]["held"]) == ("8", "7")
    by_reference = (await api.ok("GET", one + "/lots", params={"asset_id": miles["id"], "reference_id": "r1"}))["data"]
    assert [(lot["status"], lot["remaining"], lot["parent_lot_id"]) for lot in by_reference] == [
        ("HELD", "5", None),
        ("HELD", "2", second),
    ]
    split = by_reference[1]
    assert split["expires_at"] == lots[1]["expires_at"] and split["created_at"] == lots[1]["created_at"]
    still = {lot["id"]: lot for lot in (await api.ok("GET", one + "/lots", params={"asset_id": miles["id"]}))["data"]}
    assert (still[second]["status"], still[second]["remaining"]) == ("AVAILABLE", "3")
    held_lots = (await api.ok("GET", one + "/lots", params={"asset_id": miles["id"], "status": "HELD"}))["data"]
    assert len(held_lots) == 2

    # Narrowed by lot: only the third lot is held, whatever is older.
    narrowed = await api.ok(
        "POST", one + "/hold", json=_body(program, miles, amount="1", lot_ids=[third], reference_id="r2")
    )
    assert narrowed["lots_processed"] == [{"id": third, "amount": "1"}]
    await api.error("POST", one + "/hold", 400, "bad_request", json=_body(program, miles, amount="1", lot_ids=["nope"]))
    await api.error(
        "POST", one + "/hold", 422, "insufficient_balance", json=_body(program, miles, amount="5", lot_ids=[third])
    )

    released = await api.ok("POST", one + "/release", json=_body(program, miles, reference_id="r1", amount="6"))
    assert released["lots_processed"] == [{"id": first, "amount": "5"}, {"id": split["id"], "amount": "1"}]
    assert (released["balance"]["available"], released["balance"]["held"]) == ("13", "2")
    forfeited = await api.ok("POST", one + "/forfeit", json=_body(program, miles, bucket="HELD"))
    assert (forfeited["amount_processed"], forfeited["balance"]["held"]) == ("2", "0")
    # Void-hold only knows provisional lots (a CREDIT to HELD with a reference): r2's lot was held, not credited.
    await api.error("POST", one + "/void-hold", 404, "not_found", json=_body(program, miles, reference_id="r2"))
    await api.error("POST", one + "/void-hold", 400, "bad_request", json=_body(program, miles))
    chain = (await api.ok("GET", "/v1/journal-entries", params={"reference_id": "r1"}))["data"]
    assert [entry["action_type"] for entry in chain] == ["RELEASE", "HOLD"]
    assert (await api.engine.verify()).ok


async def test_rules_with_hold_actions_are_simulated(api: Api) -> None:
    program, miles, _ = await _lot_program(api)
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "Holds",
            "condition": "true",
            "actions": [
                {"type": "HOLD", "asset_id": miles["id"], "amount": "event.amount", "reference_id": "event.ref"},
                {"type": "RELEASE", "asset_id": miles["id"], "reference_id": "event.ref"},
                {"type": "FORFEIT", "asset_id": miles["id"], "bucket": "HELD", "amount": "2"},
                {"type": "VOID_HOLD", "asset_id": miles["id"], "reference_id": "event.ref"},
            ],
        },
    )
    result = await api.ok("POST", f"/v1/rules/{rule['id']}/simulate", json={"event": {"amount": 3, "ref": "x"}})
    hold, release, forfeit, void = (item["result"] for item in result["evaluation"]["results"])
    assert (hold["amount"], hold["description"]) == ("3", "Hold 3 MI of participant")
    assert "amount" not in release and release["description"] == "Release all MI of participant"
    assert forfeit["amount"] == "2" and void["description"] == "Void hold the provisional lots MI of participant"
    await api.error(
        "POST",
        "/v1/rules",
        400,
        "bad_request",
        json={
            "program_id": program["id"],
            "name": "No bucket",
            "condition": "true",
            "actions": [{"type": "FORFEIT", "asset_id": miles["id"]}],
        },
    )


async def test_earned_from_and_earned_to_narrow_a_hold_to_lots_of_that_time(api: Api) -> None:
    program, miles, participant_id = await _lot_program(api)
    one = f"/v1/participants/{participant_id}/balances"
    lots = (await api.ok("GET", one + "/lots", params={"asset_id": miles["id"]}))["data"]
    assert lots[0]["created_at"] < lots[1]["created_at"] < lots[2]["created_at"]
    window = {"earned_from": lots[1]["created_at"], "earned_to": lots[2]["created_at"]}  # from inclusive, to exclusive
    held = await api.ok("POST", one + "/hold", json=_body(program, miles, **window))
    assert held["lots_processed"] == [{"id": lots[1]["id"], "amount": "5"}]
    later = await api.ok(
        "POST", one + "/forfeit", json=_body(program, miles, bucket="AVAILABLE", earned_from=lots[2]["created_at"])
    )
    assert later["lots_processed"] == [{"id": lots[2]["id"], "amount": "5"}]
    backwards = {"earned_from": lots[2]["created_at"], "earned_to": lots[1]["created_at"]}
    await api.error("POST", one + "/hold", 400, "bad_request", json=_body(program, miles, **backwards))
    await api.error(
        "POST",
        one + "/hold",
        422,
        "insufficient_balance",
        json=_body(program, miles, earned_from="2999-01-01T00:00:00Z"),
    )
    assert (await api.engine.verify()).ok
