"""The three ledger reports over a real server: every field, the period arithmetic (edge hours included), the
calendar buckets of the expiration schedule, program activity, and every refusal (docs/reports.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.http.conftest import Api

_SUMMARY = "/v1/reports/ledger-summary"
_SCHEDULE = "/v1/reports/expiration-schedule"
_ACTIVITY = "/v1/reports/program-activity"


async def _asset(api: Api, program: dict[str, Any], symbol: str, mode: str, scale: int) -> dict[str, Any]:
    body = {"program_id": program["id"], "name": symbol.title(), "symbol": symbol, "inventory_mode": mode,
            "issuance_policy": "UNLIMITED", "scale": scale}  # fmt: skip
    asset: dict[str, Any] = await api.ok("POST", "/v1/assets", 201, json=body)
    return asset


async def _event(api: Api, program: dict[str, Any], external_id: str, key: str, at: str, **data: Any) -> dict[str, Any]:
    body = {"program_id": program["id"], "external_id": external_id, "idempotency_key": key, "event_timestamp": at,
            "event_data": data}  # fmt: skip
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    event = await api.wait_event(accepted["id"])
    assert event["status"] == "COMPLETED", event
    return event


async def _world(api: Api) -> dict[str, Any]:
    """Program A (PTS simple scale 2, MILES lot scale 0) with earn and spend rules, four events, an adjustment
    debit, a forfeit and a never-expiring lot credit; program B with one event of its own asset."""
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Alpha"})
    points = await _asset(api, program, "PTS", "SIMPLE", 2)
    miles = await _asset(api, program, "MILES", "LOT", 0)
    earn = [
        {"type": "CREDIT", "asset_id": points["id"], "amount": "event.points"},
        {"type": "CREDIT", "asset_id": miles["id"], "amount": "5", "expires_at": "720h"},
    ]
    await api.ok("POST", "/v1/rules", 201,
                 json={"program_id": program["id"], "name": "earn", "condition": "has(event.points)", "actions": earn})  # fmt: skip
    spend = [{"type": "DEBIT", "asset_id": points["id"], "amount": "event.spend"}]
    await api.ok("POST", "/v1/rules", 201,
                 json={"program_id": program["id"], "name": "spend", "condition": "has(event.spend)", "actions": spend})  # fmt: skip
    first = await _event(api, program, "ann", "e1", "2031-01-10T10:30:00Z", points=100)
    await _event(api, program, "ann", "e2", "2031-01-10T11:15:00Z", points=50)
    await _event(api, program, "bob", "e3", "2031-01-11T09:00:00Z", points=30)
    await _event(api, program, "ann", "e4", "2031-01-12T00:00:00Z", points=20)
    await _event(api, program, "ann", "e5", "2031-01-12T00:30:00Z", spend=40)
    ann = first["participant_id"]
    one = f"/v1/participants/{ann}/balances"
    base = {"program_id": program["id"], "description": "test"}
    await api.ok("POST", one + "/adjust", json={**base, "asset_id": points["id"], "type": "DEBIT", "amount": "10"})
    await api.ok(
        "POST", one + "/forfeit", json={**base, "asset_id": points["id"], "amount": "5", "bucket": "AVAILABLE"}
    )
    await api.ok("POST", one + "/adjust", json={**base, "asset_id": miles["id"], "type": "CREDIT", "amount": "7"})
    other = await api.ok("POST", "/v1/programs", 201, json={"name": "Beta"})
    coins = await _asset(api, other, "COIN", "SIMPLE", 0)
    await api.ok("POST", "/v1/rules", 201, json={"program_id": other["id"], "name": "coin", "condition": "true",
                 "actions": [{"type": "CREDIT", "asset_id": coins["id"], "amount": "3"}]})  # fmt: skip
    await _event(api, other, "cat", "b1", "2031-02-01T00:00:00Z")
    return {"program": program, "points": points, "miles": miles, "other": other, "coins": coins, "ann": ann}


def _by_symbol(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["asset_symbol"]: row for row in rows}


def _adds_up(row: dict[str, Any]) -> None:
    """Lifetime and (when present) period identities, in decimals."""
    d = {key: Decimal(value) for key, value in row.items() if isinstance(value, str) and key not in _TEXT}
    assert d["current_balance"] == (
        d["total_issued"] - d["total_redeemed"] - d["total_expired"] - d["total_forfeited"]
        + d["total_other_adjustments_net"]
    )  # fmt: skip
    if row["opening_balance"] is not None:
        assert d["closing_balance"] == (
            d["opening_balance"] + d["period_issued"] - d["period_redeemed"] - d["period_expired"]
            - d["period_forfeited"] + d["other_adjustments_net"]
        )  # fmt: skip


_TEXT = {"asset_id", "asset_name", "asset_symbol"}


async def test_ledger_summary_lifetime_figures(api: Api) -> None:
    world = await _world(api)
    rows = _by_symbol((await api.ok("GET", _SUMMARY))["data"])
    assert set(rows) == {"PTS", "MILES", "COIN"}
    points = rows["PTS"]
    assert points == {
        "asset_id": world["points"]["id"],
        "asset_name": "Pts",
        "asset_symbol": "PTS",
        "scale": 2,
        "total_issued": "200.00",
        "total_redeemed": "40.00",
        "total_expired": "0.00",
        "total_forfeited": "5.00",
        "total_other_adjustments_net": "-10.00",
        "current_balance": "145.00",
        "participant_count": 2,
        "opening_balance": None,
        "closing_balance": None,
        "period_issued": None,
        "period_redeemed": None,
        "period_expired": None,
        "period_forfeited": None,
        "other_adjustments_net": None,
    }
    assert (rows["MILES"]["total_issued"], rows["MILES"]["current_balance"]) == ("27", "27")
    assert rows["COIN"]["current_balance"] == "3"
    assert rows["COIN"]["participant_count"] == 1
    for row in rows.values():
        _adds_up(row)
    # The current balance is what the participants hold.
    ann = await api.ok("GET", f"/v1/participants/{world['ann']}/balances")
    held = {b["asset_id"]: Decimal(b["available"]) + Decimal(b["held"]) + Decimal(b["deferred"]) for b in ann["data"]}
    assert held[world["points"]["id"]] == Decimal("145.00") - Decimal("30.00")  # bob holds the 30


async def test_ledger_summary_program_filter(api: Api) -> None:
    world = await _world(api)
    rows = _by_symbol((await api.ok("GET", _SUMMARY, params={"program_id": world["program"]["id"]}))["data"])
    assert set(rows) == {"PTS", "MILES"}
    assert rows["PTS"]["current_balance"] == "145.00"
    other = _by_symbol((await api.ok("GET", _SUMMARY, params={"program_id": world["other"]["id"]}))["data"])
    assert set(other) == {"COIN"}
    assert (other["COIN"]["total_issued"], other["COIN"]["participant_count"]) == ("3", 1)
    await api.error("GET", _SUMMARY, 404, "not_found", params={"program_id": "prog_nope"})


async def test_ledger_summary_period_whole_and_edge_hours(api: Api) -> None:
    world = await _world(api)
    program_id = world["program"]["id"]
    # From on an hour boundary, to cutting through an hour: e2 and e3 inside.
    window = {"program_id": program_id, "from": "2031-01-10T11:00:00Z", "to": "2031-01-11T23:59:59Z"}
    rows = _by_symbol((await api.ok("GET", _SUMMARY, params=window))["data"])
    points = rows["PTS"]
    # Opening: e1 (100) and the adjustment (-10) and forfeit (-5), both made "now", years before 2031.
    assert (points["opening_balance"], points["period_issued"], points["closing_balance"]) == (
        "85.00",
        "80.00",
        "165.00",
    )
    assert (points["period_redeemed"], points["period_forfeited"], points["other_adjustments_net"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert (rows["MILES"]["opening_balance"], rows["MILES"]["period_issued"]) == ("12", "10")
    # Both ends inside hours: e1 at 10:30 is before 10:45, e4 at exactly `to` is inside (inclusive), e5 after.
    window = {"program_id": program_id, "from": "2031-01-10T10:45:00Z", "to": "2031-01-12T00:00:00Z"}
    points = _by_symbol((await api.ok("GET", _SUMMARY, params=window))["data"])["PTS"]
    assert (points["opening_balance"], points["period_issued"], points["closing_balance"]) == (
        "85.00",
        "100.00",
        "185.00",
    )
    # One instant: the debit of e5 alone.
    window = {"from": "2031-01-12T00:30:00Z", "to": "2031-01-12T00:30:00Z"}
    points = _by_symbol((await api.ok("GET", _SUMMARY, params=window))["data"])["PTS"]
    assert (points["opening_balance"], points["period_redeemed"], points["closing_balance"]) == (
        "185.00",
        "40.00",
        "145.00",
    )
    # A window after everything: closing is the current balance; one before everything: all zero.
    after = _by_symbol((await api.ok("GET", _SUMMARY, params={"from": "2040-01-01T00:00:00Z",
                                                               "to": "2040-01-02T00:00:00Z"}))["data"])  # fmt: skip
    assert after["PTS"]["closing_balance"] == after["PTS"]["current_balance"] == "145.00"
    before = _by_symbol((await api.ok("GET", _SUMMARY, params={"from": "2000-01-01T00:00:00Z",
                                                                "to": "2000-01-02T00:00:00+02:00"}))["data"])  # fmt: skip
    assert before["PTS"]["closing_balance"] == "0.00"
    for row in [*rows.values(), points, *after.values(), *before.values()]:
        _adds_up(row)


async def test_ledger_summary_refusals(api: Api) -> None:
    await api.ok("POST", "/v1/programs", 201, json={"name": "Alpha"})
    for params in ({"from": "2031-01-01T00:00:00Z"}, {"to": "2031-01-01T00:00:00Z"}):
        body = await api.error("GET", _SUMMARY, 400, "bad_request", params=params)
        assert body["details"]["fields"][0]["reason"] == "required"
    backwards = {"from": "2031-01-02T00:00:00Z", "to": "2031-01-01T00:00:00Z"}
    await api.error("GET", _SUMMARY, 400, "bad_request", params=backwards)
    await api.error("GET", _SUMMARY, 400, "bad_request", params={"from": "yesterday", "to": "2031-01-01T00:00:00Z"})
    await api.error(
        "GET", _SUMMARY, 400, "bad_request", params={"from": "2031-01-01T00:00:00", "to": "2031-01-01T01:00:00"}
    )
    await api.error("GET", _SUMMARY, 400, "bad_request", params={"colour": "red"})


async def test_expired_lots_count_as_expired_at_their_expiry_time(api: Api) -> None:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Alpha"})
    miles = await _asset(api, program, "MILES", "LOT", 0)
    earn = [{"type": "CREDIT", "asset_id": miles["id"], "amount": "event.miles", "expires_at": "1h"}]
    await api.ok("POST", "/v1/rules", 201,
                 json={"program_id": program["id"], "name": "earn", "condition": "event.miles > 0",
                       "actions": earn})  # fmt: skip
    await _event(api, program, "ann", "x1", "2020-01-01T00:00:00Z", miles=5)
    await _event(api, program, "ann", "x2", "2020-01-01T00:10:00Z", miles=3)
    await _event(api, program, "ann", "x3", "2020-06-01T00:00:00Z", miles=0)  # settles the two expired lots
    row = _by_symbol((await api.ok("GET", _SUMMARY))["data"])["MILES"]
    assert (row["total_issued"], row["total_expired"], row["current_balance"], row["participant_count"]) == (
        "8",
        "8",
        "0",
        0,
    )
    window = {"from": "2020-01-01T00:30:00Z", "to": "2020-01-01T01:05:00Z"}  # the first lot expires at 01:00
    row = _by_symbol((await api.ok("GET", _SUMMARY, params=window))["data"])["MILES"]
    assert (row["opening_balance"], row["period_expired"], row["closing_balance"]) == ("8", "5", "3")
    _adds_up(row)


async def test_expiration_schedule_buckets_add_up(api: Api) -> None:
    world = await _world(api)
    params = {"from": "2031-02-01", "to": "2031-02-28", "granularity": "day"}
    (miles,) = (await api.ok("GET", _SCHEDULE, params=params))["data"]
    assert {key: miles[key] for key in miles if key != "buckets"} == {
        "asset_id": world["miles"]["id"],
        "asset_name": "Miles",
        "asset_symbol": "MILES",
        "scale": 0,
        "total_outstanding": "27",
        "total_lot_count": 5,
        "never_expiring": "7",
        "expiring_before_window": "0",
        "expiring_after_window": "0",
    }
    assert len(miles["buckets"]) == 28
    nonzero = {b["bucket_start"]: (b["amount"], b["lot_count"]) for b in miles["buckets"] if b["lot_count"]}
    # e1 and e2 (Jan 10, +30 days), e3 (Jan 11 09:00), e4 (Jan 12 00:00).
    assert nonzero == {"2031-02-09": ("10", 2), "2031-02-10": ("5", 1), "2031-02-11": ("5", 1)}
    assert all(b["bucket_start"] == b["bucket_end"] for b in miles["buckets"])
    # One day; the rest falls before and after it.
    (one,) = (await api.ok("GET", _SCHEDULE, params={"from": "2031-02-10T15:00:00Z", "to": "2031-02-10",
                                                       "granularity": "day"}))["data"]  # fmt: skip
    assert (one["expiring_before_window"], one["buckets"][0]["amount"], one["expiring_after_window"]) == (
        "10",
        "5",
        "5",
    )
    # Weeks start on Monday: 2031-02-10 is one.
    (weeks,) = (await api.ok("GET", _SCHEDULE, params={"from": "2031-02-05", "to": "2031-02-12",
                                                         "granularity": "week"}))["data"]  # fmt: skip
    assert [(b["bucket_start"], b["bucket_end"], b["amount"]) for b in weeks["buckets"]] == [
        ("2031-02-03", "2031-02-09", "10"),
        ("2031-02-10", "2031-02-16", "10"),
    ]
    # Months by default; an empty month still has its bucket.
    (months,) = (await api.ok("GET", _SCHEDULE, params={"from": "2031-01-15", "to": "2031-02-01"}))["data"]
    assert [(b["bucket_start"], b["bucket_end"], b["amount"]) for b in months["buckets"]] == [
        ("2031-01-01", "2031-01-31", "0"),
        ("2031-02-01", "2031-02-28", "20"),
    ]
    for schedule in (miles, one, weeks, months):
        parts = [schedule["never_expiring"], schedule["expiring_before_window"], schedule["expiring_after_window"]]
        parts += [b["amount"] for b in schedule["buckets"]]
        assert sum(Decimal(part) for part in parts) == Decimal(schedule["total_outstanding"])
    filtered = await api.ok("GET", _SCHEDULE, params={**params, "asset_id": world["miles"]["id"],
                                                      "program_id": world["program"]["id"]})  # fmt: skip
    assert filtered["data"] == [miles]
    assert (await api.ok("GET", _SCHEDULE, params={**params, "program_id": world["other"]["id"]}))["data"] == []


async def test_expiration_schedule_refusals(api: Api) -> None:
    world = await _world(api)
    window = {"from": "2031-02-01", "to": "2031-02-28"}
    body = await api.error("GET", _SCHEDULE, 400, "bad_request", params={**window, "asset_id": world["points"]["id"]})
    assert "SIMPLE" in body["message"]
    await api.error("GET", _SCHEDULE, 404, "not_found", params={**window, "asset_id": "asset_nope"})
    await api.error("GET", _SCHEDULE, 404, "not_found", params={**window, "program_id": "prog_nope"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={"from": "2031-02-01"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={"to": "2031-02-01"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={"from": "2031-03-01", "to": "2031-02-01"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={**window, "granularity": "year"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={"from": "2031-02-30", "to": "2031-03-01"})
    await api.error("GET", _SCHEDULE, 400, "bad_request", params={"from": "2031-02-01T00:00:00", "to": "2031-03-01"})
    too_many = await api.error(
        "GET", _SCHEDULE, 400, "bad_request", params={"from": "2030-01-01", "to": "2040-01-01", "granularity": "day"}
    )
    assert too_many["details"]["fields"][0]["reason"] == "too_many_buckets"


async def test_program_activity(api: Api) -> None:
    world = await _world(api)
    await api.ok("POST", f"/v1/programs/{world['program']['id']}/rewards", 201, json={
        "name": "Mug", "redemption_type": "UNIT_BASED", "asset_id": world["points"]["id"], "unit_cost": "10", "status": "ACTIVE"})  # fmt: skip
    tiers = f"/v1/programs/{world['program']['id']}/tiers"
    await api.ok("POST", tiers, 201, json={"key": "status", "levels": [{"key": "gold", "rank": 1}]})
    await api.ok("POST", tiers, 201, json={"key": "old", "levels": [{"key": "x", "rank": 1}]})
    await api.ok("POST", f"{tiers}/old/archive")  # an archived tier is not counted
    rows = {row["program_name"]: row for row in (await api.ok("GET", _ACTIVITY))["data"]}
    alpha = rows["Alpha"]
    assert alpha == {
        "program_id": world["program"]["id"],
        "program_name": "Alpha",
        "event_count": 5,
        "journal_count": 12,  # four earns of two entries, a debit, an adjustment, a forfeit, a lot credit
        "total_issued": "227.00",  # 200.00 PTS + 27 MILES
        "total_redeemed": "40.00",
        "unique_participants": 2,
        "last_activity_at": "2031-01-12T00:30:00Z",
        "asset_count": 2,
        "rule_count": 2,
        "reward_count": 1,
        "tier_count": 1,
        "assets": [
            {"asset_id": a["id"], "asset_symbol": a["symbol"], "total_issued": issued, "total_redeemed": redeemed}
            for a, issued, redeemed in sorted(
                [(world["points"], "200.00", "40.00"), (world["miles"], "27", "0")], key=lambda item: item[0]["id"]
            )
        ],
    }
    assert (rows["Beta"]["event_count"], rows["Beta"]["total_issued"], rows["Beta"]["unique_participants"]) == (
        1,
        "3",
        1,
    )
    window = {"from": "2031-01-10T11:00:00Z", "to": "2031-01-11T23:59:59Z"}
    rows = {row["program_name"]: row for row in (await api.ok("GET", _ACTIVITY, params=window))["data"]}
    assert (rows["Alpha"]["event_count"], rows["Alpha"]["total_issued"], rows["Alpha"]["journal_count"]) == (
        2,
        "90.00",
        12,
    )
    assert rows["Beta"]["event_count"] == 0
    kept = (await api.ok("GET", _ACTIVITY, params={"since": "2031-01-20T00:00:00Z"}))["data"]
    assert [row["program_name"] for row in kept] == ["Beta"]
    await api.error("GET", _ACTIVITY, 400, "bad_request", params={"from": "2031-01-10T11:00:00Z"})
    await api.error("GET", _ACTIVITY, 400, "bad_request", params={"since": "soon"})


async def test_windows_at_the_ends_of_the_calendar_answer_not_500(api: Api) -> None:
    # Hours and days whose bounds lie outside the years datetime holds, once in UTC, are a 200 or a 400, never a 500.
    for params in (
        {"from": "9999-12-31T23:30:00-05:00", "to": "9999-12-31T23:40:00-05:00"},
        {"from": "0001-01-01T00:30:00+05:00", "to": "0001-01-01T00:40:00+05:00"},
    ):
        for path in ("/v1/reports/ledger-summary", "/v1/reports/program-activity"):
            response = await api.client.get(path, params=params)
            assert response.status_code in (200, 400), (path, params, response.text)
    schedule = "/v1/reports/expiration-schedule"
    for granularity in ("day", "week", "month"):
        response = await api.client.get(
            schedule, params={"from": "9999-12-01", "to": "9999-12-31", "granularity": granularity}
        )
        assert response.status_code == 200, (granularity, response.text)
    await api.error(
        "GET", schedule, 400, "bad_request", params={"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02"}
    )
