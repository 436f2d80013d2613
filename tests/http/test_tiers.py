"""Tier definitions and a participant's tiers over a real server: every endpoint, its refusals, SET_TIER and CEL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.http.conftest import Api

LEVELS = [
    {"key": "silver", "rank": 1, "qualification": {"criteria": [{"counter": "spend", "threshold": 100}]}},
    {
        "key": "gold",
        "rank": 2,
        "display_name": "Gold",
        "benefits": {"lounge": True},
        "color": "#FFD700",
        "qualification": {"mode": "ANY", "criteria": [{"counter": "spend", "operator": ">=", "threshold": 500}]},
    },
]


async def _program_with_tier(api: Api, **tier: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    program, _ = await api.program_and_asset()
    body = {"key": "status", "display_name": "Status", "levels": LEVELS, **tier}
    created = await api.ok("POST", f"/v1/programs/{program['id']}/tiers", 201, json=body)
    return program, created


_keys = iter(range(1, 10**9))


async def _event(api: Api, program: dict[str, Any], external_id: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {
        "program_id": program["id"],
        "external_id": external_id,
        "event_data": data,
        "idempotency_key": f"tiers-{next(_keys)}",
    }
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


async def test_create_get_list_patch_archive(api: Api) -> None:
    program, tier = await _program_with_tier(api)
    base = f"/v1/programs/{program['id']}/tiers"
    assert tier["key"] == "status"
    assert tier["status"] == "ACTIVE"
    assert [level["key"] for level in tier["levels"]] == ["silver", "gold"]
    assert tier["levels"][1]["benefits"] == {"lounge": True}
    assert tier["lifecycle"] is None
    assert await api.ok("GET", f"{base}/status") == tier
    listed = await api.ok("GET", base)
    assert [item["key"] for item in listed["data"]] == ["status"]
    # PATCH: a new level by key (with a rank), a changed display name, a lifecycle; then {} clears it.
    patched = await api.ok(
        "PATCH",
        f"{base}/status",
        json={
            "display_name": "Member status",
            "levels": [{"key": "platinum", "rank": 3}, {"key": "silver", "display_name": "Silver"}],
            "lifecycle": {"retention": {"mode": "ACTIVITY_REFRESH", "duration": "720h"}},
        },
    )
    assert patched["display_name"] == "Member status"
    assert [(level["key"], level["rank"]) for level in patched["levels"]] == [
        ("silver", 1),
        ("gold", 2),
        ("platinum", 3),
    ]
    assert patched["levels"][0]["display_name"] == "Silver"
    assert patched["lifecycle"]["retention"]["mode"] == "ACTIVITY_REFRESH"
    cleared = await api.ok("PATCH", f"{base}/status", json={"lifecycle": {}})
    assert cleared["lifecycle"] is None
    archived = await api.ok("POST", f"{base}/status/archive")
    assert archived["status"] == "ARCHIVED"
    assert archived["archived_at"] is not None
    assert (await api.ok("GET", base, params={"status": "ACTIVE"}))["data"] == []


async def test_definition_refusals(api: Api) -> None:
    program, _ = await _program_with_tier(api)
    base = f"/v1/programs/{program['id']}/tiers"
    await api.error("POST", base, 409, "conflict", json={"key": "status", "levels": LEVELS})
    await api.error("POST", base, 400, "bad_request", json={"key": "Bad-Key", "levels": LEVELS})
    await api.error("POST", base, 400, "bad_request", json={"key": "empty", "levels": []})
    clash = [{"key": "a", "rank": 1}, {"key": "b", "rank": 1}]
    await api.error("POST", base, 409, "conflict", json={"key": "ranks", "levels": clash})
    await api.error("POST", base, 400, "bad_request", json={"key": "x", "levels": LEVELS, "unknown": 1})
    refresh = {"retention": {"mode": "ACTIVITY_REFRESH"}}  # needs a duration
    await api.error("POST", base, 400, "bad_request", json={"key": "y", "levels": LEVELS, "lifecycle": refresh})
    floor = {"retention": {"mode": "PERIOD_BASED"}, "downgrade_policy": {"min_level": "bronze"}}
    await api.error("POST", base, 400, "bad_request", json={"key": "z", "levels": LEVELS, "lifecycle": floor})
    await api.error("POST", "/v1/programs/nope/tiers", 404, "not_found", json={"key": "a", "levels": LEVELS})
    await api.error("GET", f"{base}/missing", 404, "not_found")
    await api.error("PATCH", f"{base}/missing", 404, "not_found", json={})
    await api.error("POST", f"{base}/missing/archive", 404, "not_found")
    await api.error("PATCH", f"{base}/status", 400, "bad_request", json={"levels": [{"key": "new"}]})  # no rank
    await api.error("PATCH", f"{base}/status", 409, "conflict", json={"levels": [{"key": "new", "rank": 2}]})
    await api.ok("POST", f"{base}/status/archive")
    await api.error("POST", f"{base}/status/archive", 409, "tier_archived")
    await api.error("PATCH", f"{base}/status", 409, "tier_archived", json={"display_name": "x"})
    await api.ok("PATCH", f"/v1/programs/{program['id']}", json={"status": "ARCHIVED"})
    await api.error("POST", base, 409, "conflict", json={"key": "later", "levels": LEVELS})


async def test_auto_qualification_cel_and_the_participant_resource(api: Api) -> None:
    program, _ = await _program_with_tier(api)
    rule = {
        "program_id": program["id"],
        "name": "spend",
        "condition": 'event.type == "purchase"',
        "actions": [{"type": "COUNTER", "key": "spend", "value": "event.amount"}],
    }
    await api.ok("POST", "/v1/rules", 201, json=rule)
    vip = {
        "program_id": program["id"],
        "name": "vip",
        "condition": "participant.tiers.status.rank >= 2",
        "actions": [{"type": "TAG", "tag": "vip"}],
    }
    await api.ok("POST", "/v1/rules", 201, json=vip)
    first = await _event(api, program, "ann", {"type": "purchase", "amount": 150})
    assert first["status"] == "COMPLETED"  # rank 0 reads as 0: the vip condition is false, not an error
    participant = await api.ok("GET", f"/v1/participants/{first['participant_id']}")
    assert participant["tiers"] == {"status": {"level": "silver", "rank": 1, "program_id": program["id"]}}
    await _event(api, program, "ann", {"type": "purchase", "amount": 400})
    await _event(api, program, "ann", {"type": "visit"})
    participant = await api.ok("GET", f"/v1/participants/{first['participant_id']}")
    assert participant["tiers"]["status"]["level"] == "gold"
    assert "vip" in participant["tags"]
    states = await api.ok(
        "GET", f"/v1/participants/{participant['id']}/state/tiers", params={"program_id": program["id"]}
    )
    assert [(state["key"], state["level"], state["rank"]) for state in states["data"]] == [("status", "gold", 2)]
    assert states["data"][0]["benefits"] == {"lounge": True}
    history = await api.ok("GET", f"/v1/participants/{participant['id']}/activity/state-history")
    tiers = [(entry["old_value"], entry["new_value"]) for entry in history["data"] if entry["state_type"] == "tier"]
    assert tiers == [(None, "silver"), ("silver", "gold")]
    assert all(entry["event_id"] for entry in history["data"] if entry["state_type"] == "tier")


async def test_set_tier_blocks_auto_qualification_and_an_archived_tier_is_skipped(api: Api) -> None:
    program, _ = await _program_with_tier(api)
    rule = {
        "program_id": program["id"],
        "name": "set",
        "condition": 'event.type == "promo"',
        "actions": [
            {"type": "COUNTER", "key": "spend", "value": "1000"},
            {"type": "SET_TIER", "tier": "status", "level": "silver"},
        ],
    }
    created = await api.ok("POST", "/v1/rules", 201, json=rule)
    simulated = await api.ok("POST", f"/v1/rules/{created['id']}/simulate", json={"event": {"type": "promo"}})
    assert simulated["evaluation"]["results"][1]["result"]["value"] == "silver"  # described, nothing written
    event = await _event(api, program, "bo", {"type": "promo"})
    assert event["status"] == "COMPLETED"
    participant = await api.ok("GET", f"/v1/participants/{event['participant_id']}")
    assert participant["tiers"]["status"]["level"] == "silver"  # not gold: SET_TIER blocked auto-qualification
    await _event(api, program, "bo", {"type": "other"})  # the next event qualifies as usual
    participant = await api.ok("GET", f"/v1/participants/{event['participant_id']}")
    assert participant["tiers"]["status"]["level"] == "gold"
    bad_level = {**rule, "name": "bad", "condition": 'event.type == "bad"'}
    bad_level["actions"] = [{"type": "SET_TIER", "tier": "status", "level": "diamond"}]
    await api.ok("POST", "/v1/rules", 201, json=bad_level)
    failed = await _event(api, program, "bo", {"type": "bad"})
    assert failed["status"] == "FAILED"
    assert "diamond" in failed["error_message"]
    await api.ok("POST", f"/v1/programs/{program['id']}/tiers/status/archive")
    skipped = await _event(api, program, "cy", {"type": "promo"})
    assert skipped["status"] == "COMPLETED"
    participant = await api.ok("GET", f"/v1/participants/{skipped['participant_id']}")
    assert participant["tiers"] == {}


async def test_manual_state_put_get_delete_and_refusals(api: Api) -> None:
    program, _ = await _program_with_tier(api)
    participant = await api.ok(
        "POST", "/v1/participants", 201, json={"external_id": "dee", "program_id": program["id"]}
    )
    path = f"/v1/participants/{participant['id']}/state/tiers"
    query = {"program_id": program["id"]}
    await api.error("GET", f"{path}/status", 404, "not_found", params=query)  # no level held
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    state = await api.ok("PUT", f"{path}/status", params=query, json={"level": "gold", "expires_at": expires})
    assert (state["level"], state["rank"]) == ("gold", 2)
    assert state["expires_at"] is not None
    assert await api.ok("GET", f"{path}/status", params=query) == state
    await api.error("PUT", f"{path}/status", 400, "bad_request", params=query, json={"level": "diamond"})
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await api.error(
        "PUT", f"{path}/status", 400, "bad_request", params=query, json={"level": "gold", "expires_at": past}
    )
    await api.error("PUT", f"{path}/status", 400, "bad_request", json={"level": "gold"})  # program_id required
    await api.error("PUT", f"{path}/nope", 404, "not_found", params=query, json={"level": "gold"})
    await api.error(
        "PUT", "/v1/participants/nobody/state/tiers/status", 404, "not_found", params=query, json={"level": "gold"}
    )
    other = await api.ok("POST", "/v1/programs", 201, json={"name": "Other"})
    await api.error("GET", path, 409, "participant_inactive", params={"program_id": other["id"]})  # not enrolled
    await api.ok("DELETE", f"{path}/status", 204, params=query)
    await api.error("GET", f"{path}/status", 404, "not_found", params=query)
    await api.ok("DELETE", f"{path}/status", 204, params=query)  # nothing held: still 204
    history = await api.ok("GET", f"/v1/participants/{participant['id']}/activity/state-history")
    tiers = [(e["operation"], e["source"]) for e in history["data"] if e["state_type"] == "tier"]
    assert tiers == [("set", "api"), ("delete", "api")]
    await api.ok("PATCH", f"/v1/participants/{participant['id']}/status", json={"status": "SUSPENDED"})
    await api.error("PUT", f"{path}/status", 409, "participant_inactive", params=query, json={"level": "gold"})
    await api.error("DELETE", f"{path}/status", 409, "participant_inactive", params=query)
    await api.ok("PATCH", f"/v1/participants/{participant['id']}/status", json={"status": "ACTIVE"})
    await api.ok("PATCH", f"/v1/programs/{program['id']}", json={"status": "SUSPENDED"})
    await api.error("PUT", f"{path}/status", 409, "participant_inactive", params=query, json={"level": "gold"})
    await api.ok("PATCH", f"/v1/programs/{program['id']}", json={"status": "ACTIVE"})
    await api.ok("POST", f"/v1/programs/{program['id']}/tiers/status/archive")
    await api.error("PUT", f"{path}/status", 409, "tier_archived", params=query, json={"level": "gold"})


async def test_a_bad_expires_at_is_a_400_and_two_programs_may_share_a_tier_key(api: Api) -> None:
    first, _ = await _program_with_tier(api)
    second = await api.ok("POST", "/v1/programs", 201, json={"name": "Second"})  # the same key "status" there too
    await api.ok("POST", f"/v1/programs/{second['id']}/tiers", 201, json={"key": "status", "levels": LEVELS})
    participant = await api.ok("POST", "/v1/participants", 201, json={"external_id": "eve", "program_id": first["id"]})
    await api.ok("POST", "/v1/participants", 200, json={"external_id": "eve", "program_id": second["id"]})
    path = f"/v1/participants/{participant['id']}/state/tiers/status"
    for bad in ("2030-01-01T00:00:00", "9999-12-31T23:59:59-05:00"):  # no time zone; past year 9999 in UTC
        await api.error(
            "PUT",
            path,
            400,
            "bad_request",
            params={"program_id": first["id"]},
            json={"level": "gold", "expires_at": bad},
        )
    await api.ok("PUT", path, params={"program_id": first["id"]}, json={"level": "gold"})
    await api.ok("PUT", path, params={"program_id": second["id"]}, json={"level": "silver"})
    await api.ok("DELETE", path, 204, params={"program_id": second["id"]})
    report = await api.engine.verify()  # each program's newest tier change is checked against that program's level
    assert report.ok, report.problems


async def test_a_retention_shorter_than_a_second_is_refused(api: Api) -> None:
    # Each period (or activity timer) is one review by the sweep: a 1 ms period would never let it catch up.
    program, _ = await api.program_and_asset()
    lifecycle = {"retention": {"mode": "ACTIVITY_REFRESH", "duration": "1ms"}}
    body = {"key": "fast", "levels": LEVELS, "lifecycle": lifecycle}
    await api.error("POST", f"/v1/programs/{program['id']}/tiers", 400, "bad_request", json=body)
