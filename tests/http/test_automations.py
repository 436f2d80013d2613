"""Automations over a real server: every endpoint, the hosted filters and refusals, SYSTEM events in the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from tests.http.conftest import Api


async def _program_with_members(api: Api, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    program, _ = await api.program_and_asset()
    members = [
        await api.ok("POST", "/v1/participants", 201, json={"external_id": f"m{n}", "program_id": program["id"]})
        for n in range(count)
    ]
    return program, members


async def _wait_status(api: Api, path: str, status: str) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            automation: dict[str, Any] = await api.ok("GET", path)
            if automation["execution_status"] == status:
                return automation
            await trio.sleep(0.01)


async def _subscribed(api: Api, path: str, count: int) -> None:
    """Wait until ``count`` subscriptions are listed (the runner enrols in the background)."""
    with trio.fail_after(10):
        while True:
            if len((await api.ok("GET", path))["data"]) >= count:
                return
            await trio.sleep(0.02)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"next": value}
    return value


def _cron(**fields: Any) -> dict[str, Any]:
    return {
        "name": "monthly",
        "trigger": {"type": "cron", "cron_expression": "0 9 1 * *", "timezone": "Europe/Paris"},
        "scope": "participants",
        "event_name": "statement",
        **fields,
    }


async def test_an_immediate_fan_out_creates_system_events_and_reports_progress(api: Api) -> None:
    program, members = await _program_with_members(api, 5)
    base = f"/v1/programs/{program['id']}/automations"
    created = await api.ok(
        "POST",
        base,
        201,
        json={
            "name": "welcome",
            "trigger": {"type": "immediate"},
            "scope": "participants",
            "event_name": "welcome",
            "payload": {"campaign": "launch"},
            "participant_filter": "participant.external_id != 'm0'",
        },
    )
    assert (created["trigger_type"], created["source"], created["status"]) == ("immediate", "api", "active")
    done = await _wait_status(api, f"{base}/{created['id']}", "completed")
    assert (done["participants_processed"], done["participants_total"], done["events_created"]) == (5, 5, 4)
    assert done["execution_started_at"] is not None and done["execution_completed_at"] is not None
    await api.engine.wait_idle()
    listed = await api.ok("GET", f"/v1/events?program_id={program['id']}&event_type=SYSTEM")
    assert sorted(event["participant_id"] for event in listed["data"]) == sorted(m["id"] for m in members[1:])
    event = await api.ok("GET", f"/v1/events/{listed['data'][0]['id']}")
    assert event["event_type"] == "SYSTEM"
    assert event["event_data"] == {"campaign": "launch", "type": "welcome"}
    assert event["idempotency_key"].startswith(f"automation:{created['id']}:")
    external = await api.ok("GET", f"/v1/events?program_id={program['id']}&event_type=EXTERNAL")
    assert external["data"] == []


async def test_crud_list_filters_and_pagination(api: Api) -> None:
    program, members = await _program_with_members(api, 1)
    base = f"/v1/programs/{program['id']}/automations"
    cron = await api.ok("POST", base, 201, json=_cron())
    assert cron["timezone"] == "Europe/Paris"
    assert cron["next_run_at"] is not None
    when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    one = await api.ok(
        "POST",
        base,
        201,
        json={
            "name": "reminder",
            "trigger": {"type": "one_time", "trigger_at": when},
            "scope": "program",
            "participant_id": members[0]["id"],
            "event_name": "remind",
        },
    )
    assert await api.ok("GET", f"{base}/{one['id']}") == one
    page = await api.ok("GET", f"{base}?limit=1")
    assert [a["id"] for a in page["data"]] == [one["id"]]  # newest first
    rest = await api.ok("GET", f"{base}?limit=1&cursor={page['pagination']['next_cursor']}")
    assert [a["id"] for a in rest["data"]] == [cron["id"]] and rest["pagination"]["has_more"] is False
    assert [a["id"] for a in (await api.ok("GET", f"{base}?trigger_type=cron"))["data"]] == [cron["id"]]
    assert [a["id"] for a in (await api.ok("GET", f"{base}?scope=program&source=api"))["data"]] == [one["id"]]
    assert [a["id"] for a in (await api.ok("GET", f"{base}?search=REMIND"))["data"]] == [one["id"]]
    patched = await api.ok(
        "PATCH", f"{base}/{cron['id']}", json={"cron_expression": "0 10 * * *", "timezone": "Asia/Tokyo"}
    )
    assert patched["cron_expression"] == "0 10 * * *"
    assert datetime.fromisoformat(patched["next_run_at"]).astimezone(UTC).hour == 1  # 10:00 in Tokyo
    paused = await api.ok("PATCH", f"{base}/{cron['id']}", json={"status": "paused"})
    assert (paused["status"], paused["next_run_at"]) == ("paused", None)
    archived = await api.ok("DELETE", f"{base}/{cron['id']}")
    assert archived["status"] == "archived"
    assert [a["id"] for a in (await api.ok("GET", f"{base}?status=archived"))["data"]] == [cron["id"]]
    await api.error("PATCH", f"{base}/{cron['id']}", 409, "conflict", json={"name": "again"})
    subscriptions = await api.ok("GET", f"{base}/{one['id']}/subscriptions?status=active")
    assert subscriptions["data"] == []
    await api.error("POST", f"{base}/{one['id']}/refresh-subscriptions", 400, "bad_request")


async def test_trigger_and_cancel_follow_the_hosted_rules(api: Api) -> None:
    program, members = await _program_with_members(api, 2)
    base = f"/v1/programs/{program['id']}/automations"
    cron = await api.ok("POST", base, 201, json=_cron(name="c"))
    triggered = await api.ok("POST", f"{base}/{cron['id']}/trigger")
    assert triggered["execution_status"] == "pending"
    await _wait_status(api, f"{base}/{cron['id']}", "completed")
    await api.error("POST", f"{base}/{cron['id']}/cancel", 400, "bad_request")  # nothing running
    when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    one = await api.ok(
        "POST",
        base,
        201,
        json={
            "name": "o",
            "trigger": {"type": "one_time", "trigger_at": when},
            "scope": "program",
            "participant_id": members[0]["id"],
            "event_name": "o",
        },
    )
    await api.error("POST", f"{base}/{one['id']}/trigger", 400, "bad_request")  # one_time + program
    await api.ok("PATCH", f"{base}/{cron['id']}", json={"status": "paused"})
    await api.error("POST", f"{base}/{cron['id']}/trigger", 400, "bad_request")  # not active


async def test_bad_automations_are_400s_naming_the_field(api: Api) -> None:
    program, members = await _program_with_members(api, 1)
    base = f"/v1/programs/{program['id']}/automations"
    cases: list[tuple[dict[str, Any], str]] = [
        (_cron(trigger={"type": "cron", "cron_expression": "* * *"}), "cron_expression"),
        (_cron(trigger={"type": "cron", "cron_expression": "0 25 * * *"}), "cron_expression"),
        (_cron(trigger={"type": "cron", "cron_expression": "TZ=UTC 0 1 * * *"}), "cron_expression"),
        (_cron(trigger={"type": "cron", "cron_expression": "0 1 * * *", "timezone": "Nowhere/City"}), "timezone"),
        (_cron(trigger={"type": "one_time", "trigger_at": "2020-01-01T00:00:00Z"}), "trigger_at"),
        (_cron(trigger={"type": "one_time", "trigger_at": "2099-01-01T00:00:00"}), "trigger_at"),  # naive
        (_cron(trigger={"type": "immediate"}, scope="program", participant_id=members[0]["id"]), "scope"),
        (_cron(scope="program"), "participant_id"),
        (_cron(participant_id=members[0]["id"]), "participant_id"),
        (_cron(participant_filter="participant.tags.exists(t, "), "participant_filter"),
        (_cron(guard_condition=")"), "guard_condition"),
        (_cron(name=""), "name"),
        (_cron(event_name="x" * 256), "event_name"),
        (_cron(trigger={"type": "sometimes"}), "trigger"),
        (_cron(unknown_field=1), "unknown_field"),
        (_cron(payload=_nested(20)), "payload"),
    ]
    for body, field in cases:
        error = await api.error("POST", base, 400, "bad_request", json=body)
        assert field in str(error), (field, error)
    await api.ok("POST", base, 201, json=_cron())
    await api.error("POST", base, 409, "conflict", json=_cron())  # a name is unique per program
    await api.error("GET", f"{base}/no-such-id", 404, "not_found")
    await api.error("GET", "/v1/programs/no-such-program/automations", 404, "not_found")
    await api.error("GET", f"{base}?color=red", 400, "bad_request")  # an undocumented query parameter
    await api.error("GET", f"{base}?cursor=garbage", 400, "bad_request")
    await api.error("PATCH", f"{base}/no-such-id", 404, "not_found", json={"name": "n"})


async def test_participant_state_subscriptions_and_refresh(api: Api) -> None:
    program, members = await _program_with_members(api, 3)
    base = f"/v1/programs/{program['id']}/automations"
    await api.ok("PUT", f"/v1/participants/{members[0]['id']}/state/attributes/birthday", json={"value": "06-15"})
    body = {
        "name": "birthday",
        "trigger": {
            "type": "participant_state",
            "schedule_type": "ATTRIBUTE_DATE",
            "schedule_config": {"attribute": "birthday", "time": "09:30"},
        },
        "scope": "participants",
        "event_name": "birthday",
        "participant_filter": "'birthday' in participant.attributes",
    }
    created = await api.ok("POST", base, 201, json=body)
    assert (created["schedule_type"], created["trigger_type"]) == ("ATTRIBUTE_DATE", "participant_state")
    path = f"{base}/{created['id']}/subscriptions"
    await _subscribed(api, path, 1)
    (subscription,) = (await api.ok("GET", path))["data"]
    assert subscription["participant_id"] == members[0]["id"] and subscription["status"] == "active"
    assert subscription["next_trigger_at"].endswith("09:30:00Z") and "-06-15T" in subscription["next_trigger_at"]
    await api.ok("PUT", f"/v1/participants/{members[1]['id']}/state/attributes/birthday", json={"value": "1999-01-02"})
    await api.ok("POST", f"{base}/{created['id']}/refresh-subscriptions", 202)
    await _subscribed(api, path, 2)
    assert (await api.ok("GET", f"{path}?status=failed"))["data"] == []
    page = await api.ok("GET", f"{path}?limit=1")
    assert page["pagination"]["has_more"] is True
    await api.error("POST", f"{base}/{created['id']}/trigger", 400, "bad_request")  # participant_state
    await api.ok("PATCH", f"{base}/{created['id']}", json={"status": "paused"})
    await api.error("POST", f"{base}/{created['id']}/refresh-subscriptions", 400, "bad_request")  # paused
    bad = {**body, "name": "b2", "trigger": {**body["trigger"], "schedule_config": {"time": "25:00"}}}
    await api.error("POST", base, 400, "bad_request", json=bad)
    threshold = {**body, "name": "b3", "trigger": {**body["trigger"], "schedule_type": "THRESHOLD"}}
    await api.error("POST", base, 400, "bad_request", json=threshold)  # no counter
    bad_threshold = {"counter": "visits", "threshold": "lots"}
    threshold["trigger"] = {**threshold["trigger"], "schedule_config": bad_threshold}
    await api.error("POST", base, 400, "bad_request", json=threshold)
    program_scope = {**body, "name": "b4", "scope": "program", "participant_id": members[0]["id"]}
    await api.error("POST", base, 400, "bad_request", json=program_scope)
