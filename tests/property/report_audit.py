"""The reports' auditor: every figure of the three reports recomputed naively from the journal and the lots.

Deliberately simple and independent of ``scrip_actor.report_totals``: it walks every entry for every question,
classifies it by the rules docs/reports.md writes down, and compares with what the engine's running totals answer,
for the lifetime and for windows whose ends fall on, just before and just after entry times (so edge hours, whole
hours and instants exactly at ``from`` or ``to`` are all exercised).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from scrip_actor import Engine
from scrip_actor.model import JournalEntry, Lot

_ISSUE = {"CREDIT", "ADJUST", "SETTLE"}
_REDEEM = {"DEBIT", "REDEMPTION"}


def _columns(entries: list[JournalEntry], asset_id: str, program_id: str | None) -> dict[str, int]:
    """issued, redeemed, expired, forfeited, other of the participants' net change, naively."""
    figures = dict.fromkeys(("issued", "redeemed", "expired", "forfeited", "other"), 0)
    for entry in entries:
        if program_id is not None and entry.program_id != program_id:
            continue
        change = sum(
            p.amount_minor for p in entry.postings if p.entity_type == "PARTICIPANT" and p.asset_id == asset_id
        )
        if change == 0:
            continue
        if entry.action_type == "EXPIRATION":
            figures["expired"] -= change
        elif entry.action_type == "FORFEIT":
            figures["forfeited"] -= change
        elif change > 0 and entry.action_type in _ISSUE:
            figures["issued"] += change
        elif change < 0 and entry.action_type in _REDEEM:
            figures["redeemed"] -= change
        else:
            figures["other"] += change
    return figures


def _net(figures: dict[str, int]) -> int:
    return figures["issued"] - figures["redeemed"] - figures["expired"] - figures["forfeited"] + figures["other"]


def _minor(text: str | None, scale: int) -> int:
    assert text is not None
    return int(Decimal(text).scaleb(scale))


def windows(entries: list[JournalEntry]) -> list[tuple[datetime, datetime]]:
    """Windows cut at, just before and just after entry times, on and off hour boundaries."""
    times = sorted({entry.created_at for entry in entries})
    if not times:
        return [(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))]
    tick = timedelta(microseconds=1)
    first, last, middle = times[0], times[-1], times[len(times) // 2]
    hour = first.replace(minute=0, second=0, microsecond=0)
    return [
        (first, last),
        (first + tick, last - tick) if first + tick <= last - tick else (first, last),
        (first - timedelta(days=1), middle),
        (middle, middle),
        (middle + tick, last + timedelta(days=3)),
        (hour, hour + timedelta(hours=1) - tick),  # both ends whole hours: nothing read one by one
        (hour + timedelta(minutes=17), middle + timedelta(minutes=43)),
    ]


async def audit_reports(engine: Engine, entries: list[JournalEntry], program_id: str) -> None:
    """Compare every report with the naive recomputation from ``entries`` (the whole journal)."""
    balances: dict[tuple[str, str, str], int] = {}
    for entry in entries:
        for posting in entry.postings:
            if posting.entity_type == "PARTICIPANT":
                account = (posting.entity_id, posting.asset_id, posting.bucket)
                balances[account] = balances.get(account, 0) + posting.amount_minor
    assets = {asset.id: asset for asset in (await engine.list_assets(limit=100)).data}
    lifetime = {row.asset_id: row for row in await engine.reports.ledger_summary()}
    for asset_id, asset in assets.items():
        row = lifetime[asset_id]
        figures = _columns(entries, asset_id, None)
        scale = asset.scale
        assert _minor(row.total_issued, scale) == figures["issued"], (row, figures)
        assert _minor(row.total_redeemed, scale) == figures["redeemed"], (row, figures)
        assert _minor(row.total_expired, scale) == figures["expired"], (row, figures)
        assert _minor(row.total_forfeited, scale) == figures["forfeited"], (row, figures)
        assert _minor(row.total_other_adjustments_net, scale) == figures["other"], (row, figures)
        held = sum(value for (_, asset, _), value in balances.items() if asset == asset_id)
        # Participants hold exactly the current balance, and the holders are those with a nonzero bucket.
        assert _minor(row.current_balance, scale) == held, (row, held)
        holders = {entity for (entity, asset, _), value in balances.items() if asset == asset_id and value}
        assert row.participant_count == len(holders), (row, holders)
    for start, end in windows(entries):
        await _audit_window(engine, entries, assets, start, end, program_id)


_BUCKETS = ("AVAILABLE", "HELD", "DEFERRED")


async def _audit_window(
    engine: Engine, entries: list[JournalEntry], assets: dict[str, Any], start: datetime, end: datetime, program_id: str
) -> None:
    before = [entry for entry in entries if entry.created_at < start]
    inside = [entry for entry in entries if start <= entry.created_at <= end]
    for scope in (None, program_id):
        rows = await engine.reports.ledger_summary(program_id=scope, start=start, end=end)
        for row in rows:
            scale = assets[row.asset_id].scale
            opening = _net(_columns(before, row.asset_id, scope))
            period = _columns(inside, row.asset_id, scope)
            where = (start, end, scope, row)
            assert _minor(row.opening_balance, scale) == opening, where
            assert _minor(row.period_issued, scale) == period["issued"], where
            assert _minor(row.period_redeemed, scale) == period["redeemed"], where
            assert _minor(row.period_expired, scale) == period["expired"], where
            assert _minor(row.period_forfeited, scale) == period["forfeited"], where
            assert _minor(row.other_adjustments_net, scale) == period["other"], where
            assert _minor(row.closing_balance, scale) == opening + _net(period), where
    activity = {row.program_id: row for row in await engine.reports.program_activity(start=start, end=end)}
    mine = activity[program_id]
    issued = sum(
        Decimal(_columns(inside, asset_id, program_id)["issued"]).scaleb(-asset.scale)
        for asset_id, asset in assets.items()
        if program_id in asset.program_ids
    )
    assert Decimal(mine.total_issued) == issued, (mine, issued)
    assert mine.journal_count == sum(1 for entry in entries if entry.program_id == program_id)


async def audit_schedule(engine: Engine, lots: list[Lot], asset_id: str, scale: int) -> None:
    """The expiration schedule by day against the open lots, summed naively."""
    open_lots = [lot for lot in lots if lot.status in _BUCKETS and lot.remaining_minor > 0]
    days = sorted(lot.expires_at.astimezone(UTC).date() for lot in open_lots if lot.expires_at is not None)
    first = days[len(days) // 2] if days else date(2026, 3, 1)
    last = first + timedelta(days=2)
    (schedule,) = await engine.reports.expiration_schedule(start=first, end=last, granularity="day", asset_id=asset_id)
    total = sum(lot.remaining_minor for lot in open_lots)
    assert _minor(schedule.total_outstanding, scale) == total
    assert schedule.total_lot_count == len(open_lots)
    never = sum(lot.remaining_minor for lot in open_lots if lot.expires_at is None)
    assert _minor(schedule.never_expiring, scale) == never
    for bucket in schedule.buckets:
        day = date.fromisoformat(bucket.bucket_start)
        expected = [
            lot for lot in open_lots if lot.expires_at is not None and lot.expires_at.astimezone(UTC).date() == day
        ]
        assert _minor(bucket.amount, scale) == sum(lot.remaining_minor for lot in expected), (bucket, expected)
        assert bucket.lot_count == len(expected)
    early = sum(
        lot.remaining_minor
        for lot in open_lots
        if lot.expires_at is not None and lot.expires_at.astimezone(UTC).date() < first
    )
    assert _minor(schedule.expiring_before_window, scale) == early
    parts = [schedule.never_expiring, schedule.expiring_before_window, schedule.expiring_after_window]
    assert sum(_minor(part, scale) for part in [*parts, *(b.amount for b in schedule.buckets)]) == total
