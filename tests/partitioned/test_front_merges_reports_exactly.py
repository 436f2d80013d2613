"""Reports through the front: each merged report equals the exact sum of the partitions' own reports, and the
ledger summary equals what all partitions' journals say, with and without a window; a bad query is the embedded
400, a stopped partition a 503, never a partial sum.

Real Tansu, the real front (Hypercorn on loopback), three engine roles with their readers in one trio run, real
LMDB. The catalog has a LOT asset at scale 2 (lots with and without expiry) and a SIMPLE one at scale 0, and the
events earn, spend and forfeit, so every column of every report has something in it.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor import AssetCreate, CreditAction, ProgramCreate, RuleCreate, open_engine
from scrip_actor.model import DebitAction, ForfeitAction
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._engine_reads import read_advert
from tests.partitioned.front_setup import Running, front_with_readers, until
from tests.partitioned.partition_setup import TOPIC, config_for

PARTITIONS = 3
EVENTS = 78
PARTICIPANTS = 13  # prime to the 6 kinds of event: each participant gets a mix
KEY = "reports-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_KINDS = ("earn10", "earn40", "gift", "earn10", "spend", "forfeit")
_NOW = datetime.now(UTC).replace(microsecond=0)
_BASE = _NOW - timedelta(hours=12)  # event n happens at _BASE + 7 n minutes: about 9 hours, all in the past
_CATALOG_INTS = {"scale", "asset_count", "rule_count", "reward_count", "tier_count"}


@dataclass
class Reporting(Running):
    """The running front and readers, and the seeded program."""

    program_id: str = ""

    async def through_front(self, path: str, **params: Any) -> httpx.Response:
        return await self.front.get(path, params=params, headers=AUTH)


async def _seed(tmp_path: Path) -> tuple[Path, str]:
    """Every partition's store holds the same catalog: a LOT asset PTS (scale 2) and a SIMPLE asset MI (scale 0)."""
    template = tmp_path / "template"
    async with open_engine(config=config_for(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="reports"))

        async def asset(symbol: str, mode: str, scale: int) -> str:
            create = AssetCreate(
                program_id=program.id,
                name=symbol,
                symbol=symbol,
                inventory_mode=mode,  # type: ignore[arg-type]
                issuance_policy="UNLIMITED",
                scale=scale,
            )
            return (await engine.create_asset(create)).id

        points, miles = await asset("PTS", "LOT", 2), await asset("MI", "SIMPLE", 0)
        rules = {
            "earn10": [CreditAction(asset_id=points, amount="event.amount", expires_at="240h")],
            "earn40": [
                CreditAction(asset_id=points, amount="event.amount", expires_at="960h"),
                CreditAction(asset_id=miles, amount="3"),
            ],
            "gift": [CreditAction(asset_id=points, amount="event.amount")],  # a lot that never expires
            "spend": [DebitAction(asset_id=points, amount="event.amount", allow_negative=True)],
            "forfeit": [ForfeitAction(asset_id=points, bucket="AVAILABLE", amount="event.amount")],
        }
        for kind, actions in rules.items():
            condition = f"event.kind == '{kind}'"
            await engine.create_rule(RuleCreate(program_id=program.id, name=kind, condition=condition, actions=actions))
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    return partitions_dir, program.id


@asynccontextmanager
async def _running(broker: str, tmp_path: Path, extra_asset_on: int | None = None) -> AsyncIterator[Reporting]:
    partitions_dir, program_id = await _seed(tmp_path)
    if extra_asset_on is not None:
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, extra_asset_on))) as engine:
            extra = AssetCreate(
                program_id=program_id,
                name="X",
                symbol="X",
                inventory_mode="SIMPLE",
                issuance_policy="UNLIMITED",
                scale=0,
            )
            await engine.create_asset(extra)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    async with front_with_readers(broker, partitions_dir, PARTITIONS, KEY) as running:
        yield Reporting(running.front, running.engines, running.partitions_dir, program_id)


def _event(program_id: str, number: int) -> dict[str, Any]:
    kind = _KINDS[number % len(_KINDS)]
    amount = {"spend": "1.05", "forfeit": "0.50"}.get(kind, f"{number + 1}.{number % 100:02d}")
    return {
        "program_id": program_id,
        "external_id": f"user{number % PARTICIPANTS}",
        "idempotency_key": f"k{number}",
        "event_timestamp": (_BASE + timedelta(minutes=7 * number)).isoformat(),
        "event_data": {"kind": kind, "amount": amount},
    }


async def _submit_and_wait_applied(running: Reporting) -> None:
    events = [_event(running.program_id, number) for number in range(EVENTS)]
    answer = await running.front.post("/v1/events/batch", json={"events": events}, headers=AUTH)
    assert answer.status_code == 202 and answer.json()["error_count"] == 0, answer.text
    assert {result["event"]["log"]["partition"] for result in answer.json()["results"]} == set(range(PARTITIONS))
    with trio.fail_after(15):
        while True:
            listed = (await running.through_front("/v1/events", limit=200)).json()["data"]
            if len(listed) == EVENTS and all(event["status"] in ("COMPLETED", "FAILED") for event in listed):
                return
            await trio.sleep(0.1)


# --- the expected answers, computed here independently ------------------------------------------------------


def _added(key: str, values: list[Any]) -> Any:
    """The sum over partitions of one field as docs/partitioned.md says it adds up (exact Decimal sums)."""
    first = values[0]
    if key == "last_activity_at":
        present = [value for value in values if value is not None]
        return max(present, key=datetime.fromisoformat) if present else None
    if isinstance(first, list):
        return [_sum_rows(list(rows)) for rows in zip(*values, strict=True)]
    if isinstance(first, int) and key not in _CATALOG_INTS:
        return sum(values)
    if isinstance(first, str) and key.startswith(("total_", "period_", "current_", "opening_", "closing_")):
        return str(sum((Decimal(value) for value in values), Decimal(0)))
    if key in ("other_adjustments_net", "never_expiring", "expiring_before_window", "expiring_after_window", "amount"):
        return None if first is None else str(sum((Decimal(value) for value in values), Decimal(0)))
    assert all(value == first for value in values), (key, values)  # the catalog: the same on every partition
    return first


def _sum_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: _added(key, [row[key] for row in rows]) for key in rows[0]}


async def _sum_of_the_partitions(running: Reporting, path: str, **params: Any) -> list[dict[str, Any]]:
    reports = []
    for partition in range(PARTITIONS):
        answer = await running.direct(partition, path, **params)
        assert answer.status_code == 200, answer.text
        reports.append(answer.json()["data"])
    return [_sum_rows(list(rows)) for rows in zip(*reports, strict=True)]


async def _journal_figures(running: Reporting, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """Per asset, in minor units, from every partition's journal (through the front's merged list) and the
    participants' balances: docs/reports.md's table, applied entry by entry."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cursor = None
    while True:
        page = (
            await running.through_front("/v1/journal-entries", limit=100, **({"cursor": cursor} if cursor else {}))
        ).json()
        for entry in page["data"]:
            net: dict[str, int] = defaultdict(int)
            for posting in entry["postings"]:
                if posting["entity_type"] == "PARTICIPANT":
                    net[posting["asset_id"]] += posting["amount_minor"]
            created = datetime.fromisoformat(entry["created_at"])
            for asset_id, change in net.items():
                column = _column(entry["action_type"], change)
                counted = change if column in ("issued", "other") else -change  # the table's signs
                figures[asset_id]["total_" + column] += counted
                if start <= created <= end:
                    figures[asset_id]["period_" + column] += counted
                if created < start:
                    figures[asset_id]["opening"] += change
                if created <= end:
                    figures[asset_id]["closing"] += change
        if not page["pagination"]["has_more"]:
            break
        cursor = page["pagination"]["next_cursor"]
    participants = (await running.through_front("/v1/participants", limit=100)).json()["data"]
    assert len(participants) == PARTICIPANTS
    for participant in participants:
        balances = await running.through_front(f"/v1/participants/{participant['id']}/balances")
        assert balances.status_code == 200, balances.text
        for balance in balances.json()["data"]:
            held = sum(Decimal(balance[bucket]) != 0 for bucket in ("available", "held", "deferred"))
            figures[balance["asset_id"]]["holders"] += held > 0
    return figures


def _column(action: str, change: int) -> str:
    if action in ("EXPIRATION", "FORFEIT"):
        return {"EXPIRATION": "expired", "FORFEIT": "forfeited"}[action]
    if change > 0 and action in ("CREDIT", "ADJUST", "SETTLE"):
        return "issued"
    if change < 0 and action in ("DEBIT", "REDEMPTION"):
        return "redeemed"
    return "other"


def _minor(text: str, scale: int) -> int:
    return int(Decimal(text).scaleb(scale))


# --- the checks ----------------------------------------------------------------------------------------------


async def _ledger_summary_is_the_sum_and_the_journals(running: Reporting) -> None:
    start, end = _BASE + timedelta(hours=2, minutes=13, seconds=7), _BASE + timedelta(hours=6, minutes=31)
    window = {"from": start.isoformat(), "to": end.isoformat()}
    figures = await _journal_figures(running, start, end)
    for params in ({}, window, {**window, "program_id": running.program_id}):
        merged = await running.through_front("/v1/reports/ledger-summary", **params)
        assert merged.status_code == 200, merged.text
        rows = merged.json()["data"]
        assert rows == await _sum_of_the_partitions(running, "/v1/reports/ledger-summary", **params)
        assert len(rows) == 2
        for row in rows:
            scale, mine = row["scale"], figures[row["asset_id"]]
            for column in ("issued", "redeemed", "expired", "forfeited"):
                assert _minor(row[f"total_{column}"], scale) == mine[f"total_{column}"], (column, row)
            assert _minor(row["total_other_adjustments_net"], scale) == mine["total_other"]
            balance = mine["total_issued"] - mine["total_redeemed"] - mine["total_expired"] - mine["total_forfeited"]
            assert _minor(row["current_balance"], scale) == balance + mine["total_other"]
            assert row["participant_count"] == mine["holders"] > 0
            if params:
                assert _minor(row["opening_balance"], scale) == mine["opening"]
                assert _minor(row["closing_balance"], scale) == mine["closing"]
                for column in ("issued", "redeemed", "expired", "forfeited"):
                    assert _minor(row[f"period_{column}"], scale) == mine[f"period_{column}"], (column, row)
                assert _minor(row["other_adjustments_net"], scale) == mine["period_other"]
            else:
                assert row["opening_balance"] is None
    (points,) = [figures[row["asset_id"]] for row in rows if row["scale"] == 2]
    assert points["total_redeemed"] > 0 and points["total_forfeited"] > 0 and points["period_issued"] > 0


async def _expiration_schedule_is_the_sum(running: Reporting) -> None:
    today = _NOW.date()
    for first, last, granularity in ((9, 45, "day"), (20, 60, "week"), (0, 120, "month")):
        params = {
            "from": (today + timedelta(days=first)).isoformat(),
            "to": (today + timedelta(days=last)).isoformat(),
            "granularity": granularity,
        }
        merged = await running.through_front("/v1/reports/expiration-schedule", **params)
        assert merged.status_code == 200, merged.text
        (row,) = merged.json()["data"]  # the LOT asset only
        assert [row] == await _sum_of_the_partitions(running, "/v1/reports/expiration-schedule", **params)
        parts = ("never_expiring", "expiring_before_window", "expiring_after_window")
        in_buckets = sum(Decimal(bucket["amount"]) for bucket in row["buckets"])
        assert sum(Decimal(row[part]) for part in parts) + in_buckets == Decimal(row["total_outstanding"]) > 0
        assert Decimal(row["never_expiring"]) > 0 and in_buckets > 0
        assert sum(bucket["lot_count"] for bucket in row["buckets"]) <= row["total_lot_count"]


async def _program_activity_is_the_sum(running: Reporting) -> None:
    window = {"from": (_BASE + timedelta(hours=1)).isoformat(), "to": (_BASE + timedelta(hours=5)).isoformat()}
    for params in ({}, window):
        merged = await running.through_front("/v1/reports/program-activity", **params)
        assert merged.status_code == 200, merged.text
        assert merged.json()["data"] == await _sum_of_the_partitions(running, "/v1/reports/program-activity", **params)
    (whole,) = (await running.through_front("/v1/reports/program-activity")).json()["data"]
    assert whole["event_count"] == EVENTS and whole["unique_participants"] == PARTICIPANTS
    # ``since`` between the partitions' latest activities: a partition idle since then drops the program from its
    # own answer, but the merge still counts its events (since is applied to the merged last_activity_at).
    latest = []
    for partition in range(PARTITIONS):
        (own,) = (await running.direct(partition, "/v1/reports/program-activity")).json()["data"]
        latest.append(datetime.fromisoformat(own["last_activity_at"]))
    since = min(latest) + timedelta(microseconds=1)
    assert (
        await running.direct(latest.index(min(latest)), "/v1/reports/program-activity", since=since.isoformat())
    ).json()["data"] == []
    (kept,) = (await running.through_front("/v1/reports/program-activity", since=since.isoformat())).json()["data"]
    assert kept == whole
    later = max(latest) + timedelta(microseconds=1)
    assert (await running.through_front("/v1/reports/program-activity", since=later.isoformat())).json()["data"] == []


async def _bad_queries_are_the_embedded_refusals(running: Reporting) -> None:
    start = _BASE.isoformat()
    for path, params, status in (
        ("/v1/reports/ledger-summary", {"bogus": "1"}, 400),
        ("/v1/reports/ledger-summary", {"from": "yesterday", "to": start}, 400),
        ("/v1/reports/ledger-summary", {"from": start}, 400),
        ("/v1/reports/ledger-summary", {"program_id": "no-such-program"}, 404),
        ("/v1/reports/expiration-schedule", {"from": "2026-01-01", "to": "2026-02-01", "granularity": "year"}, 400),
        ("/v1/reports/expiration-schedule", {"from": "2026-03-01", "to": "2026-02-01"}, 400),
        ("/v1/reports/expiration-schedule", {}, 400),
        ("/v1/reports/program-activity", {"since": "2026-01-01T00:00:00"}, 400),  # no offset
    ):
        merged = await running.through_front(path, **params)
        direct = await running.direct(1, path, **params)
        assert merged.status_code == status == direct.status_code, (path, params, merged.text)
        body, expected = merged.json(), direct.json()
        assert (body["code"], body["details"]) == (expected["code"], expected["details"]), (body, expected)


async def _a_stopped_partition_is_503(running: Reporting) -> None:
    running.engines[2].cancel()
    await until(lambda: read_advert(partition_data_dir(running.partitions_dir, 2)) is None, 10)  # withdrawn
    today = _NOW.date()
    for path, params in (
        ("/v1/reports/ledger-summary", {}),
        ("/v1/reports/expiration-schedule", {"from": today.isoformat(), "to": today.isoformat()}),
        ("/v1/reports/program-activity", {}),
    ):
        answer = await running.through_front(path, **params)
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "partition_unavailable" and answer.json()["details"]["partition"] == 2


async def test_reports_through_the_front_are_the_exact_sums_of_the_partitions(broker: str, tmp_path: Path) -> None:
    async with _running(broker, tmp_path) as running:
        await _submit_and_wait_applied(running)
        await _ledger_summary_is_the_sum_and_the_journals(running)
        await _expiration_schedule_is_the_sum(running)
        await _program_activity_is_the_sum(running)
        await _bad_queries_are_the_embedded_refusals(running)
        await _a_stopped_partition_is_503(running)


async def test_partitions_whose_catalogs_differ_are_a_502_not_a_guess(broker: str, tmp_path: Path) -> None:
    """A report's rows are the catalog's assets: if one partition's store has an asset the others lack (its catalog
    was changed behind the front's back), no sum is right, and the front says so."""
    async with _running(broker, tmp_path, extra_asset_on=1) as running:
        answer = await running.through_front("/v1/reports/ledger-summary")
        assert answer.status_code == 502, answer.text
        body = answer.json()
        assert body["code"] == "partitions_disagree" and body["details"]["field"] == "data", body
        assert len((await running.direct(1, "/v1/reports/ledger-summary")).json()["data"]) == 3
