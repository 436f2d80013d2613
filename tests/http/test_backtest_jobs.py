"""Backtests over a real server: the job flow (202, poll, report), the inline route, listing, and every refusal
shaped as {code, message, details} with the field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from tests.http.conftest import Api


async def _history(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], datetime, datetime]:
    program, asset = await api.program_and_asset()
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "ten percent",
            "condition": "event.amount >= 10.0",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "event.amount * 0.1"}],
        },
    )
    before = datetime.now(UTC) - timedelta(seconds=1)
    for index, (external_id, amount) in enumerate([("u1", 50.0), ("u2", 5.0), ("u1", 120.5)]):
        accepted = await api.ok(
            "POST",
            "/v1/events",
            202,
            json={
                "program_id": program["id"],
                "external_id": external_id,
                "idempotency_key": f"order-{index}",
                "event_data": {"amount": amount},
            },
        )
        await api.wait_event(accepted["id"])
    return program, asset, rule, before, datetime.now(UTC) + timedelta(seconds=1)


async def _finished(api: Api, path: str) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            job: dict[str, Any] = await api.ok("GET", path)
            if job["status"] != "RUNNING":
                return job
            await trio.sleep(0.01)


async def test_a_backtest_job_runs_and_reports_proposed_beside_actual(api: Api) -> None:
    program, asset, rule, before, after = await _history(api)
    base = f"/v1/programs/{program['id']}/backtests"
    window = {"from": before.isoformat(), "to": after.isoformat()}
    started = await api.ok("POST", base, 202, json={"rules": None, **window})
    assert started["status"] == "RUNNING"
    job = await _finished(api, f"{base}/{started['id']}")
    assert job["status"] == "COMPLETED", job
    assert job["events_replayed"] == 3
    assert job["totals"] == job["actual"] == [{"asset_id": asset["id"], "credited": "17.05", "debited": "0.00"}]
    proposed = {
        "rule_id": rule["id"],
        "name": "double",
        "condition": "event.amount >= 10.0",
        "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "event.amount * 0.2"}],
    }
    inline = await api.ok("POST", f"/v1/programs/{program['id']}/backtest", 200, json={"rules": [proposed], **window})
    assert inline["status"] == "COMPLETED"
    assert inline["totals"][0]["credited"] == "34.10"
    assert inline["difference"][0]["credited"] == "17.05"
    [row] = inline["rules"]
    assert {key: row[key] for key in ("rule_id", "name", "change", "matches", "credited", "actual_credited")} == {
        "rule_id": rule["id"],
        "name": "double",
        "change": "changed",
        "matches": 2,
        "credited": "34.10",
        "actual_credited": "17.05",
    }
    listed = await api.ok("GET", base, params={"limit": 1})
    assert [item["id"] for item in listed["data"]] == [inline["id"]]
    assert listed["pagination"]["has_more"] is True
    rest = await api.ok("GET", base, params={"cursor": listed["pagination"]["next_cursor"]})
    assert [item["id"] for item in rest["data"]] == [started["id"]]
    await api.error("POST", f"{base}/{started['id']}/cancel", 409, "conflict")  # finished already


async def test_refusals_name_the_field_and_unknowns_are_404(api: Api) -> None:
    program, asset, _, before, after = await _history(api)
    base = f"/v1/programs/{program['id']}/backtests"
    window = {"from": before.isoformat(), "to": after.isoformat()}
    bad_rule = {"name": "x", "condition": "event.amount >", "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1"}]}  # fmt: skip
    cases = [
        ({"rules": [bad_rule], **window}, "rules[0].condition"),
        ({"rules": [{**bad_rule, "condition": "true", "order": 0}], **window}, "rules[0].order"),
        ({"from": after.isoformat(), "to": before.isoformat()}, "to"),
        ({"from": before.isoformat(), "to": (before + timedelta(days=100)).isoformat()}, "to"),
        ({"events_max": 10**12, **window}, "events_max"),
        ({"rules": None, "from": "yesterday", "to": after.isoformat()}, "from"),
    ]
    for body, field in cases:
        error = await api.error("POST", base, 400, "bad_request", json=body)
        fields = [item["field"] for item in error["details"].get("fields", [])]
        assert any(name.startswith(field) or name.startswith(f"$.{field}") for name in fields), (field, error)
    await api.error("POST", "/v1/programs/nope/backtests", 404, "not_found", json=window)
    await api.error("GET", f"{base}/nope", 404, "not_found")
    await api.error("POST", f"{base}/nope/cancel", 404, "not_found")
    await api.error("GET", "/v1/programs/nope/backtests", 404, "not_found")


async def test_one_run_at_a_time_and_a_cancel_ends_it_cancelled(api: Api) -> None:
    program, _, _, before, after = await _history(api)
    base = f"/v1/programs/{program['id']}/backtests"
    window = {"from": before.isoformat(), "to": after.isoformat()}
    started = await api.ok("POST", base, 202, json=window)  # its child process takes a while to start
    busy = await api.error("POST", base, 409, "backtest_running", json=window)
    assert busy["details"] == {"running_max": 1}
    cancelled = await api.ok("POST", f"{base}/{started['id']}/cancel")
    assert cancelled["id"] == started["id"]
    job = await _finished(api, f"{base}/{started['id']}")
    assert job["status"] == "CANCELLED"
    assert job["finished_at"] is not None
    again = await api.ok("POST", base, 202, json=window)  # the slot is free again
    assert (await _finished(api, f"{base}/{again['id']}"))["status"] == "COMPLETED"
