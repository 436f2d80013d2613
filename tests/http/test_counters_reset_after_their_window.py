"""Counters with ``reset_after`` over a real server: rules see the effective value at the event's time (0 once the
window has passed, noted as an auto_reset), the API shows it at the wall clock's, and the window is set, kept and
removed as the hosted PUT describes (docs/history.md)."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def _event(api: Api, program: dict[str, Any], key: str, at: str) -> dict[str, Any]:
    body = {
        "program_id": program["id"],
        "external_id": "ann",
        "idempotency_key": key,
        "event_timestamp": at,
        "event_data": {},
    }
    return await api.wait_event((await api.ok("POST", "/v1/events", 202, json=body))["id"])


async def test_rules_see_the_counter_reset_once_its_window_passed(api: Api) -> None:
    program, _ = await api.program_and_asset()
    base = {"program_id": program["id"], "name": "r"}
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            **base,
            "condition": "true",
            "actions": [{"type": "COUNTER", "key": "visits", "value": "1", "reset_after": "24h"}],
        },
    )
    await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            **base,
            "name": "back after a day away",  # rules read the state as it was before the event's actions
            "condition": "'visits' in participant.counters && participant.counters.visits == 0.0",
            "actions": [{"type": "TAG", "tag": "returned"}],
        },
    )
    events = [
        await _event(api, program, "e1", "2026-03-01T08:00:00Z"),  # window 03-01 08:00 .. 03-02 08:00: 1
        await _event(api, program, "e2", "2026-03-01T20:00:00Z"),  # 2
        await _event(api, program, "e3", "2026-03-03T09:00:00Z"),  # two boundaries later: CEL sees 0, then 1
    ]
    assert [e["status"] for e in events] == ["COMPLETED"] * 3
    participant_id = events[0]["participant_id"]
    history = (await api.ok("GET", f"/v1/participants/{participant_id}/activity/state-history"))["data"]
    changes = [(c["key"], c["operation"], c["old_value"], c["new_value"], c["event_id"]) for c in history]
    assert changes == [
        ("visits", "set", None, "1", events[0]["id"]),
        ("visits", "set", "1", "2", events[1]["id"]),
        ("visits", "auto_reset", "2", "0", events[2]["id"]),
        ("visits", "set", "0", "1", events[2]["id"]),
        ("returned", "add", None, "returned", events[2]["id"]),  # e3's CEL saw the effective 0, not the stored 2
    ]
    participant = await api.ok("GET", f"/v1/participants/{participant_id}")
    assert participant["tags"] == ["returned"]
    # Read now (the wall clock, months later): the window has passed, the value shown is 0 at the last boundary.
    item = await api.ok("GET", f"/v1/participants/{participant_id}/state/counters/visits")
    assert (item["value"], item["reset_after"]) == ("0", "24h")
    assert item["last_reset_at"].endswith("T08:00:00Z")  # on the grid anchored at 03-01 08:00
    assert participant["counters"]["visits"] == "0"
    assert participant["counter_resets"]["visits"]["reset_after"] == "24h"
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_the_api_sets_keeps_and_removes_a_window(api: Api) -> None:
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "bob"})
    counter = f"/v1/participants/{participant['id']}/state/counters/stamps"
    item = await api.ok("PUT", counter, json={"value": "4", "reset_after": "720h"})
    assert (item["value"], item["reset_after"]) == ("4", "720h") and item["last_reset_at"]
    kept = await api.ok("PUT", counter, json={"value": "5"})  # omitted: the window stays
    assert (kept["value"], kept["reset_after"], kept["last_reset_at"]) == ("5", "720h", item["last_reset_at"])
    listed = (await api.ok("GET", f"/v1/participants/{participant['id']}/state/counters"))["data"]
    assert listed == [kept]
    removed = await api.ok("PUT", counter, json={"value": "5", "reset_after": ""})
    assert removed == {"key": "stamps", "value": "5"}  # no window: the fields are absent, as in the hosted shape
    await api.ok("PUT", counter, json={"value": "1", "reset_after": "1h"})
    await api.ok("DELETE", counter, 204)
    await api.ok("PUT", counter, json={"value": "2"})
    assert await api.ok("GET", counter) == {"key": "stamps", "value": "2"}  # the delete took the window too
    assert (await api.engine.verify()).ok  # the newest entry of each key is what the participant holds


async def test_bad_windows_are_refused(api: Api) -> None:
    program, _ = await api.program_and_asset()
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "cy"})
    counter = f"/v1/participants/{participant['id']}/state/counters/c"
    for bad in ("soon", "0s", "-1h", "1000000h"):
        await api.error("PUT", counter, 400, "bad_request", json={"value": "1", "reset_after": bad})
        await api.error(
            "POST",
            "/v1/rules",
            400,
            "bad_request",
            json={
                "program_id": program["id"],
                "name": "r",
                "condition": "true",
                "actions": [{"type": "COUNTER", "key": "c", "value": "1", "reset_after": bad}],
            },
        )
    await api.error("GET", counter, 404, "not_found")  # nothing was written
