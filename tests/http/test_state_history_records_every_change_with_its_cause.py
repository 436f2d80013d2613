"""The state history over a real server: every change of tags, counters and attributes, made by a rule or by an
operator's call, is listed oldest first with what caused it; a failed event leaves none; filters and pagination
behave as the hosted ``/activity/state-history`` does (docs/history.md)."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api

_HISTORY = "/v1/participants/{}/activity/state-history"


async def _rule(api: Api, program: dict[str, Any], actions: list[dict[str, Any]], condition: str = "true") -> str:
    body = {"program_id": program["id"], "name": "r", "condition": condition, "actions": actions}
    return str((await api.ok("POST", "/v1/rules", 201, json=body))["id"])


async def _event(api: Api, program: dict[str, Any], key: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {
        "program_id": program["id"],
        "external_id": "ann",
        "idempotency_key": key,
        "event_timestamp": "2026-03-01T10:00:00Z",
        "event_data": data,
    }
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


def _shape(change: dict[str, Any]) -> tuple[Any, ...]:
    return (change["state_type"], change["key"], change["operation"], change["old_value"], change["new_value"])


async def test_rule_changes_name_their_event_and_rule(api: Api) -> None:
    program, asset = await api.program_and_asset()
    rule_id = await _rule(
        api,
        program,
        [
            {"type": "TAG", "tag": "buyer"},
            {"type": "COUNTER", "key": "visits", "value": "1"},
            {"type": "SET_ATTRIBUTE", "key": "channel", "value": "web"},
            {"type": "TAG", "tag": "buyer"},  # already there: no second entry
        ],
    )
    first = await _event(api, program, "e1", {"channel": "web"})
    second = await _event(api, program, "e2", {"channel": "web"})  # same attribute value: not a change
    assert (first["status"], second["status"]) == ("COMPLETED", "COMPLETED")
    participant_id = first["participant_id"]
    changes = (await api.ok("GET", _HISTORY.format(participant_id)))["data"]
    assert [_shape(change) for change in changes] == [
        ("tag", "buyer", "add", None, "buyer"),
        ("counter", "visits", "set", None, "1"),
        ("attribute", "channel", "set", None, "web"),
        ("counter", "visits", "set", "1", "2"),
    ]
    assert {change["event_id"] for change in changes[:3]} == {first["id"]}
    assert changes[3]["event_id"] == second["id"]
    assert {(c["rule_id"], c["program_id"], c["source"]) for c in changes} == {(rule_id, program["id"], "rule")}
    assert {c["event_timestamp"] for c in changes} == {"2026-03-01T10:00:00Z"}
    assert [c["sequence"] for c in changes] == sorted(c["sequence"] for c in changes)
    assert len({c["id"] for c in changes}) == 4
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_a_failed_event_leaves_no_history(api: Api) -> None:
    program, asset = await api.program_and_asset()
    await _rule(
        api,
        program,
        [{"type": "TAG", "tag": "tried"}, {"type": "DEBIT", "asset_id": asset["id"], "amount": "5"}],
    )
    event = await _event(api, program, "e1", {})
    assert event["status"] == "FAILED"  # nothing to debit: the tag is rolled back with the rest
    assert (await api.ok("GET", _HISTORY.format(event["participant_id"])))["data"] == []
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_operator_calls_are_recorded_as_api_changes(api: Api) -> None:
    participant = await api.ok(
        "POST", "/v1/participants", 201, json={"external_id": "bob", "tags": ["new"], "attributes": {"tier": "x"}}
    )
    state = f"/v1/participants/{participant['id']}/state"
    await api.ok("PUT", f"{state}/tags/vip", 201)
    await api.ok("PUT", f"{state}/tags/vip", 200)  # already there: nothing recorded
    await api.ok("PUT", f"{state}/counters/stamps", json={"value": "3.5"})
    await api.ok("DELETE", f"{state}/counters/stamps", 204)
    await api.ok("DELETE", f"{state}/attributes/tier", 204)
    await api.ok("PUT", f"{state}/tags", json={"tags": ["vip"]})  # "new" goes
    changes = (await api.ok("GET", _HISTORY.format(participant["id"])))["data"]
    assert [_shape(change) for change in changes] == [
        ("tag", "new", "add", None, "new"),
        ("attribute", "tier", "set", None, "x"),
        ("tag", "vip", "add", None, "vip"),
        ("counter", "stamps", "set", None, "3.5"),
        ("counter", "stamps", "delete", "3.5", None),
        ("attribute", "tier", "delete", "x", None),
        ("tag", "new", "remove", "new", None),
    ]
    assert {(c["source"], c["event_id"], c["rule_id"], c["event_timestamp"]) for c in changes} == {
        ("api", None, None, None)
    }
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_filters_and_pagination(api: Api) -> None:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "cy"})
    path = _HISTORY.format(participant["id"])
    state = f"/v1/participants/{participant['id']}/state"
    for value in ("1", "2", "3"):
        await api.ok("PUT", f"{state}/counters/c", json={"value": value})
    await api.ok("PUT", f"{state}/tags/t", 201)

    counters = (await api.ok("GET", path, params={"state_type": "counter"}))["data"]
    assert [c["new_value"] for c in counters] == ["1", "2", "3"]
    assert [c["key"] for c in (await api.ok("GET", path, params={"operation": "add"}))["data"]] == ["t"]
    assert (await api.ok("GET", path, params={"key": "nope"}))["data"] == []
    assert (await api.ok("GET", path, params={"source": "rule"}))["data"] == []
    assert (await api.ok("GET", path, params={"from": "2100-01-01T00:00:00Z"}))["data"] == []
    assert len((await api.ok("GET", path, params={"to": "2100-01-01T00:00:00Z"}))["data"]) == 4

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = await api.ok("GET", path, params=params)
        seen.extend(c["sequence"] for c in page["data"])
        if not page["pagination"]["has_more"]:
            break
        cursor = page["pagination"]["next_cursor"]
    assert len(seen) == 4 and seen == sorted(seen)
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_refusals(api: Api) -> None:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "dee"})
    path = _HISTORY.format(participant["id"])
    await api.error("GET", _HISTORY.format("nobody"), 404, "not_found")
    await api.error("GET", path, 400, "bad_request", params={"limit": 101})
    await api.error("GET", path, 400, "bad_request", params={"limit": 0})
    await api.error("GET", path, 400, "bad_request", params={"state_type": "balance"})
    await api.error("GET", path, 400, "bad_request", params={"operation": "rename"})
    await api.error("GET", path, 400, "bad_request", params={"from": "yesterday"})
    await api.error("GET", path, 400, "bad_request", params={"cursor": "garbage"})
    await api.error("GET", path, 400, "bad_request", params={"colour": "red"})  # undocumented: refused
