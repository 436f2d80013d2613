"""Every path that writes a value — the API, a rule's static action, a rule's expression — holds it to the same
bounds, and an out-of-range number is a 400 (or a FAILED event with the reason), never a 500 or an internal error.
Text is NFC-normalised, so the two spellings of "é" are one participant, one tag."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from tests.http.conftest import Api

DIGITS_81 = "1" * 81


async def _program_and_asset(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    return await api.program_and_asset("Bounds")


async def _rule(api: Api, program: dict[str, Any], actions: list[dict[str, Any]], status: int = 201) -> Any:
    body = {"program_id": program["id"], "name": "r", "condition": "true", "actions": actions}
    if status == 201:
        return await api.ok("POST", "/v1/rules", 201, json=body)
    return await api.error("POST", "/v1/rules", status, "bad_request", json=body)


async def _event(api: Api, program: dict[str, Any], external_id: str, data: dict[str, Any], key: str) -> Any:
    body = {"program_id": program["id"], "external_id": external_id, "idempotency_key": key, "event_data": data}
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


@pytest.mark.parametrize("amount", [DIGITS_81, "0." + "1" * 90, "1" * 40 + "." + "1" * 45])
async def test_static_amounts_with_too_many_digits_are_a_400_on_create_and_update(api: Api, amount: str) -> None:
    program, asset = await _program_and_asset(api)
    body = await _rule(api, program, [{"type": "CREDIT", "asset_id": asset["id"], "amount": amount}], status=400)
    assert body["details"]["fields"][0]["field"] == "actions[0].amount"
    rule = await _rule(api, program, [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}])
    await api.error(
        "PATCH",
        f"/v1/rules/{rule['id']}",
        400,
        "bad_request",
        json={"actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": amount}]},
    )


async def test_amount_expressions_with_too_many_digits_fail_the_event_with_the_reason(api: Api) -> None:
    program, asset = await _program_and_asset(api)
    await _rule(api, program, [{"type": "CREDIT", "asset_id": asset["id"], "amount": "event.big"}])
    rule = (await api.ok("GET", "/v1/rules"))["data"][0]
    event = await _event(api, program, "u", {"big": DIGITS_81}, "k1")
    assert event["status"] == "FAILED"
    assert "internal error" not in event["error_message"]
    assert "range" in event["error_message"] or "digits" in event["error_message"]
    simulated = await api.ok("POST", f"/v1/rules/{rule['id']}/simulate", json={"event": {"big": DIGITS_81}})
    assert simulated["evaluation"]["matched"] is True


async def test_counter_put_holds_the_counter_bounds(api: Api) -> None:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "c"})
    path = f"/v1/participants/{participant['id']}/state/counters/visits"
    await api.error("PUT", path, 400, "bad_request", json={"value": "1" + "0" * 40})
    await api.error("PUT", path, 400, "bad_request", json={"value": "0." + "1" * 31})
    stored = await api.ok("PUT", path, json={"value": "-0"})
    assert stored["value"] == "0"
    assert (await api.ok("PUT", path, json={"value": "12.5"}))["value"] == "12.5"


async def test_static_counter_values_out_of_bounds_are_refused_at_rule_creation(api: Api) -> None:
    program, _ = await _program_and_asset(api)
    for value in ["1" + "0" * 40, "0." + "1" * 31]:
        body = await _rule(api, program, [{"type": "COUNTER", "key": "n", "value": value}], status=400)
        assert body["details"]["fields"][0]["field"] == "actions[0].value"


async def test_attribute_from_an_expression_holds_the_attribute_bound(api: Api) -> None:
    program, _ = await _program_and_asset(api)
    await _rule(api, program, [{"type": "SET_ATTRIBUTE", "key": "note", "value_expression": "event.text"}])
    event = await _event(api, program, "a", {"text": "x" * 60_000}, "k1")
    assert event["status"] == "FAILED"
    assert "4096" in event["error_message"]
    ok = await _event(api, program, "a", {"text": "x" * 4096}, "k2")
    assert ok["status"] == "COMPLETED", ok["error_message"]


async def test_a_target_expression_cannot_create_a_participant_beyond_the_external_id_bound(api: Api) -> None:
    program, asset = await _program_and_asset(api)
    credit = {"type": "CREDIT", "asset_id": asset["id"], "amount": "1", "target": {"external_id": "event.friend"}}
    await _rule(api, program, [credit])
    event = await _event(api, program, "referrer", {"friend": "f" * 5_000}, "k1")
    assert event["status"] == "FAILED"
    assert "external_id" in event["error_message"]
    listed = await api.ok("GET", "/v1/participants")
    assert all(len(p["external_id"]) <= 255 for p in listed["data"])


async def test_composed_and_decomposed_external_ids_are_one_participant(api: Api) -> None:
    program, _ = await _program_and_asset(api)
    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    first = await _event(api, program, composed, {}, "k1")
    second = await _event(api, program, decomposed, {}, "k2")
    assert first["participant_id"] == second["participant_id"]
    found = await api.ok("GET", "/v1/participants", params={"external_id": decomposed})
    assert [p["id"] for p in found["data"]] == [first["participant_id"]]
    assert found["data"][0]["external_id"] == composed


async def test_tags_are_checked_after_lowercasing_and_normalising(api: Api) -> None:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "t"})
    tags = f"/v1/participants/{participant['id']}/state/tags"
    # "İ" lowercases to two code points: 255 of them would be stored as 510 characters.
    await api.error("PUT", tags, 400, "bad_request", json={"tags": ["İ" * 255]})
    replaced = await api.ok("PUT", tags, json={"tags": [unicodedata.normalize("NFD", "ÉTÉ")]})
    assert replaced["tags"] == [unicodedata.normalize("NFC", "été")]
