"""Rule budgets over a real server: CRUD and every validation refusal, live ``consumed`` on GET, BUDGET_EXCEEDED in
the event's evaluations (the event still COMPLETES, later rules still run), scheduled and manual resets, and
``stop_after_match`` not firing for a skipped rule (docs/budgets.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from scrip_actor import open_engine
from scrip_actor.config import ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve
from tests.conftest import ManualClock, small_config
from tests.http.conftest import API_KEY, LIMITS, Api


@pytest.fixture
async def timed(tmp_path: Path) -> AsyncIterator[tuple[Api, ManualClock]]:
    """The ``api`` server, with a wall clock the test moves (periods end when it says)."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    config = small_config(tmp_path / "data")
    config = msgspec.structs.replace(config, server=ServerSettings(host="127.0.0.1", port=0, shutdown_grace_s=2))
    async with open_engine(config=config, clock=clock) as engine, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, config, ApiKeys.of(API_KEY), limits=LIMITS))
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
            yield Api(client, engine, base_url), clock
        await engine.wait_idle()
        report = await engine.verify()
        assert report.ok, report.problems
        nursery.cancel_scope.cancel()


def _credit(asset: dict[str, Any], amount: str = "10") -> list[dict[str, Any]]:
    return [{"type": "CREDIT", "asset_id": asset["id"], "amount": amount}]


async def _rule(api: Api, program: dict[str, Any], asset: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"program_id": program["id"], "name": "Budgeted", "condition": "true", "actions": _credit(asset), **fields}
    rule: dict[str, Any] = await api.ok("POST", "/v1/rules", 201, json=body)
    return rule


async def _event(api: Api, program: dict[str, Any], key: str, external_id: str = "u1") -> dict[str, Any]:
    body = {"program_id": program["id"], "external_id": external_id, "idempotency_key": key, "event_data": {}}
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    return await api.wait_event(accepted["id"])


async def _available(api: Api, external_id: str) -> str:
    page = await api.ok("GET", "/v1/participants", params={"external_id": external_id})  # slim items
    balances = (await api.ok("GET", f"/v1/participants/{page['data'][0]['id']}"))["balances"]
    return str(balances[0]["available"]) if balances else "0"


async def test_budget_crud_and_live_state(api: Api) -> None:
    program, asset = await api.program_and_asset()
    lifetime = {"asset_id": asset["id"], "limit": "25"}
    rule = await _rule(api, program, asset, budgets=[lifetime])
    assert rule["budgets"] == [
        {
            "asset_id": asset["id"],
            "limit": "25.00",
            "schedule_type": None,
            "cron_expression": None,
            "interval": None,
            "consumed": "0.00",
            "next_reset_at": None,
        }
    ]
    one = f"/v1/rules/{rule['id']}"
    for number in range(2):
        assert (await _event(api, program, f"k{number}"))["status"] == "COMPLETED"
    assert (await api.ok("GET", one))["budgets"][0]["consumed"] == "20.00"
    listed = await api.ok("GET", "/v1/rules", params={"program_id": program["id"]})
    assert listed["data"][0]["budgets"][0]["consumed"] == "20.00"
    # A new limit keeps what was consumed (same asset, same schedule).
    raised = await api.ok("PATCH", one, json={"budgets": [{**lifetime, "limit": "100"}]})
    assert (raised["budgets"][0]["limit"], raised["budgets"][0]["consumed"]) == ("100.00", "20.00")
    # A new schedule starts a new period.
    monthly = {"asset_id": asset["id"], "limit": "100", "schedule_type": "CRON", "cron_expression": "0 0 1 * *"}
    cron = await api.ok("PATCH", one, json={"budgets": [monthly]})
    assert cron["budgets"][0]["consumed"] == "0.00"
    assert datetime.fromisoformat(cron["budgets"][0]["next_reset_at"]).day == 1
    # Other changes leave budgets alone; [] removes them all.
    renamed = await api.ok("PATCH", one, json={"name": "Renamed"})
    assert renamed["budgets"][0]["schedule_type"] == "CRON"
    removed = await api.ok("PATCH", one, json={"budgets": []})
    assert removed["budgets"] == []
    assert (await api.ok("GET", one))["budgets"] == []
    history = await api.ok("GET", one + "/history")
    assert [version["changes"] for version in history["data"][:2]] == [["budgets"], ["name"]]


async def test_budget_validation_refusals(api: Api) -> None:
    program, asset = await api.program_and_asset()
    other = await api.ok("POST", "/v1/programs", 201, json={"name": "Other"})
    foreign = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": other["id"],
            "name": "Miles",
            "symbol": "MI",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 0,
        },
    )
    base = {"program_id": program["id"], "name": "R", "condition": "true", "actions": _credit(asset)}
    good = {"asset_id": asset["id"], "limit": "10"}
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"asset_id": "nope", "limit": "1"}, "budgets[0].asset_id"),
        ({"asset_id": foreign["id"], "limit": "1"}, "budgets[0].asset_id"),
        ({**good, "limit": "0"}, "budgets[0].limit"),
        ({**good, "limit": "-5"}, "budgets[0].limit"),
        ({**good, "limit": "ten"}, "budgets[0].limit"),
        ({**good, "schedule_type": "CRON"}, "budgets[0].cron_expression"),
        ({**good, "schedule_type": "CRON", "cron_expression": "every day"}, "budgets[0].cron_expression"),
        ({**good, "schedule_type": "CRON", "cron_expression": "0 0 31 2 *"}, "budgets[0].cron_expression"),
        ({**good, "schedule_type": "CRON", "cron_expression": "61 * * * *"}, "budgets[0].cron_expression"),
        ({**good, "schedule_type": "INTERVAL"}, "budgets[0].interval"),
        ({**good, "schedule_type": "INTERVAL", "interval": "soon"}, "budgets[0].interval"),
        ({**good, "schedule_type": "INTERVAL", "interval": "500ms"}, "budgets[0].interval"),
        ({**good, "schedule_type": "INTERVAL", "interval": "0s"}, "budgets[0].interval"),
        ({**good, "interval": "24h"}, "budgets[0].interval"),
        ({**good, "cron_expression": "0 0 * * *"}, "budgets[0].cron_expression"),
        ({**good, "schedule_type": "INTERVAL", "interval": "1h", "cron_expression": "0 * * * *"}, "budgets[0]"),
    ]
    for budget, field in refusals:
        body = await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "budgets": [budget]})
        fields = [item["field"] for item in body["details"].get("fields", [])]
        assert any(name.startswith(field) for name in fields), (budget, body)
    # Too many decimals for the asset is invalid_scale, as for every other amount of the API.
    scale = await api.error(
        "POST", "/v1/rules", 400, "invalid_scale", json={**base, "budgets": [{**good, "limit": "1.001"}]}
    )
    assert scale["details"]["fields"][0]["field"] == "budgets[0].limit"
    duplicate = await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "budgets": [good, good]})
    assert duplicate["details"]["fields"][0]["field"] == "budgets[1].asset_id"
    # Decode-time refusals: unknown fields, a bad schedule type, too many budgets.
    await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "budgets": [{**good, "consumed": "1"}]})
    await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "budgets": [{**good, "schedule_type": "X"}]})
    await api.error("POST", "/v1/rules", 400, "bad_request", json={**base, "budgets": [good] * 17})
    rule = await api.ok("POST", "/v1/rules", 201, json={**base, "budgets": [good]})
    bad_patch = {"budgets": [{**good, "schedule_type": "CRON", "cron_expression": "nope"}]}
    await api.error("PATCH", f"/v1/rules/{rule['id']}", 400, "bad_request", json=bad_patch)
    assert (await api.ok("GET", f"/v1/rules/{rule['id']}"))["budgets"][0]["limit"] == "10.00"  # unchanged


async def test_a_match_over_the_budget_is_skipped_whole_and_the_event_completes(api: Api) -> None:
    program, asset = await api.program_and_asset()
    budgeted = await _rule(
        api,
        program,
        asset,
        order=10,
        actions=[*_credit(asset, "10"), {"type": "TAG", "tag": "budgeted"}],
        budgets=[{"asset_id": asset["id"], "limit": "25"}],
    )
    plain = await _rule(api, program, asset, name="Plain", order=20, actions=_credit(asset, "1"))
    for number in range(2):
        await _event(api, program, f"k{number}")
    third = await _event(api, program, "k2")  # 20 consumed: 10 more would make 30 > 25
    assert third["status"] == "COMPLETED"
    assert [(e["rule_id"], e["outcome"], e["reason"]) for e in third["rule_evaluations"]] == [
        (budgeted["id"], "SKIPPED", "BUDGET_EXCEEDED"),
        (plain["id"], "MATCHED", None),
    ]
    # The hosted statuses beside ours: a budget skip is listed (not only with include_skipped), as SKIPPED.
    assert [e["status"] for e in third["rule_evaluations"]] == ["SKIPPED", "SUCCESS"]
    assert await _available(api, "u1") == "23.00"  # 10 + 1, 10 + 1, then only the plain rule's 1
    assert (await api.ok("GET", f"/v1/rules/{budgeted['id']}"))["budgets"][0]["consumed"] == "20.00"
    # The skipped rule's other actions did not apply either (TAG): a new participant shows it.
    await _event(api, program, "k3", external_id="u2")
    page = await api.ok("GET", "/v1/participants", params={"external_id": "u2"})
    assert (await api.ok("GET", f"/v1/participants/{page['data'][0]['id']}"))["tags"] == []
    # Listed as skipped, not matched: the event list's rule filter does not find it.
    matched = await api.ok("GET", "/v1/events", params={"rule_id": budgeted["id"]})
    assert len(matched["data"]) == 2
    stored = await api.ok("GET", f"/v1/events/{third['id']}")  # read back from the store's outcome record
    assert stored["rule_evaluations"][0]["reason"] == "BUDGET_EXCEEDED"
    metrics = (await api.client.get("/metrics")).text
    assert f'scrip_rule_budget_skips_total{{program="{program["id"]}",rule="{budgeted["id"]}"}} 2.0' in metrics


async def test_a_skipped_rule_does_not_stop_later_rules(api: Api) -> None:
    program, asset = await api.program_and_asset()
    stopper = await _rule(
        api, program, asset, order=10, stop_after_match=True, budgets=[{"asset_id": asset["id"], "limit": "10"}]
    )
    fallback = await _rule(api, program, asset, name="Fallback", order=20, actions=_credit(asset, "2"))
    first = await _event(api, program, "k0")
    assert [e["outcome"] for e in first["rule_evaluations"]] == ["MATCHED", "STOPPED"]
    second = await _event(api, program, "k1")
    assert [(e["rule_id"], e["outcome"]) for e in second["rule_evaluations"]] == [
        (stopper["id"], "SKIPPED"),
        (fallback["id"], "MATCHED"),
    ]
    assert await _available(api, "u1") == "12.00"


async def test_reset_budget_by_hand(api: Api) -> None:
    program, asset = await api.program_and_asset()
    rule = await _rule(api, program, asset, budgets=[{"asset_id": asset["id"], "limit": "10"}])
    reset = f"/v1/rules/{rule['id']}/reset-budget"
    await _event(api, program, "k0")
    assert (await _event(api, program, "k1"))["rule_evaluations"][0]["reason"] == "BUDGET_EXCEEDED"
    budget = await api.ok("POST", reset, params={"asset_id": asset["id"]})
    assert (budget["consumed"], budget["next_reset_at"], budget["limit"]) == ("0.00", None, "10.00")
    assert (await _event(api, program, "k2"))["rule_evaluations"][0]["outcome"] == "MATCHED"
    assert (await api.ok("GET", f"/v1/rules/{rule['id']}"))["budgets"][0]["consumed"] == "10.00"
    await api.error("POST", reset, 400, "bad_request")  # asset_id is required
    await api.error("POST", reset, 400, "bad_request", params={"asset_id": ""})
    await api.error("POST", reset, 404, "not_found", params={"asset_id": "other"})
    await api.error("POST", "/v1/rules/nope/reset-budget", 404, "not_found", params={"asset_id": asset["id"]})
    await api.ok("PATCH", f"/v1/rules/{rule['id']}", json={"status": "ARCHIVED"})
    await api.error("POST", reset, 409, "conflict", params={"asset_id": asset["id"]})


async def test_interval_and_cron_periods_reset_by_the_wall_clock(timed: tuple[Api, ManualClock]) -> None:
    api, clock = timed
    program, asset = await api.program_and_asset()
    daily = {"asset_id": asset["id"], "limit": "10", "schedule_type": "INTERVAL", "interval": "24h"}
    rule = await _rule(api, program, asset, budgets=[daily])
    one = f"/v1/rules/{rule['id']}"
    start = clock.now
    assert datetime.fromisoformat(rule["budgets"][0]["next_reset_at"]) == start + timedelta(hours=24)
    await _event(api, program, "k0")
    assert (await _event(api, program, "k1"))["rule_evaluations"][0]["reason"] == "BUDGET_EXCEEDED"
    clock.advance(timedelta(hours=50))  # two boundaries passed: the period is the third day's
    shown = (await api.ok("GET", one))["budgets"][0]
    assert shown["consumed"] == "0.00"
    assert datetime.fromisoformat(shown["next_reset_at"]) == start + timedelta(hours=72)
    # The client's event_timestamp does not choose the period (backdating spends nothing twice, and no less).
    body = {
        "program_id": program["id"],
        "external_id": "u1",
        "idempotency_key": "k2",
        "event_data": {},
        "event_timestamp": start.isoformat(),
    }
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    assert (await api.wait_event(accepted["id"]))["rule_evaluations"][0]["outcome"] == "MATCHED"
    assert (await api.ok("GET", one))["budgets"][0]["consumed"] == "10.00"
    # A manual reset starts a new interval from now.
    budget = await api.ok("POST", one + "/reset-budget", params={"asset_id": asset["id"]})
    assert datetime.fromisoformat(budget["next_reset_at"]) == clock.now + timedelta(hours=24)
    hourly = {"asset_id": asset["id"], "limit": "10", "schedule_type": "CRON", "cron_expression": "0 * * * *"}
    cron = await api.ok("PATCH", one, json={"budgets": [hourly]})
    assert datetime.fromisoformat(cron["budgets"][0]["next_reset_at"]) == clock.now.replace(minute=0) + timedelta(
        hours=1
    )
    await _event(api, program, "k3")
    assert (await _event(api, program, "k4"))["rule_evaluations"][0]["reason"] == "BUDGET_EXCEEDED"
    clock.advance(timedelta(minutes=61))
    assert (await _event(api, program, "k5"))["rule_evaluations"][0]["outcome"] == "MATCHED"


async def test_what_counts_credits_to_targets_not_debits_and_a_lowered_limit(api: Api) -> None:
    """Credits to a target count; a DEBIT gives nothing back; a limit lowered below consumed lets no credit through
    but a match that issues none of the asset still applies; a skipped rule's new target is never created."""
    program, asset = await api.program_and_asset()
    referral = [
        {"type": "CREDIT", "asset_id": asset["id"], "amount": "5", "target": {"external_id": "'ref-' + 'a'"}},
        {"type": "CREDIT", "asset_id": asset["id"], "amount": "5"},
        {"type": "DEBIT", "asset_id": asset["id"], "amount": "1", "allow_negative": True},
    ]
    budget = {"asset_id": asset["id"], "limit": "25"}
    rule = await _rule(api, program, asset, order=10, actions=referral, budgets=[budget])
    one = f"/v1/rules/{rule['id']}"
    await _event(api, program, "k0")
    assert (await api.ok("GET", one))["budgets"][0]["consumed"] == "10.00"  # 5 + 5 to two participants, debit aside
    assert await _available(api, "ref-a") == "5.00"
    # A skipped rule's new target is never created, and a later rule creating it from scratch works.
    fresh = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "30", "target": {"external_id": "'new-' + 'b'"}}]
    await _rule(api, program, asset, name="Big", order=20, actions=fresh, budgets=[{**budget, "limit": "20"}])
    plain = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "2", "target": {"external_id": "'new-' + 'b'"}}]
    await _rule(api, program, asset, name="Plain", order=30, actions=plain)
    second = await _event(api, program, "k1")
    assert [e["outcome"] for e in second["rule_evaluations"]] == ["MATCHED", "SKIPPED", "MATCHED"]
    assert await _available(api, "new-b") == "2.00"
    # Lowered below what was consumed (20): no more credits, but the match issuing nothing of it still applies.
    lowered = await api.ok("PATCH", one, json={"budgets": [{**budget, "limit": "15"}]})
    assert (lowered["budgets"][0]["limit"], lowered["budgets"][0]["consumed"]) == ("15.00", "20.00")
    assert (await _event(api, program, "k2"))["rule_evaluations"][0]["reason"] == "BUDGET_EXCEEDED"
    tagger = [{"type": "TAG", "tag": "seen"}]
    await api.ok("PATCH", one, json={"actions": tagger})
    assert (await _event(api, program, "k3"))["rule_evaluations"][0]["outcome"] == "MATCHED"
    assert (await api.ok("GET", one))["budgets"][0]["consumed"] == "20.00"
