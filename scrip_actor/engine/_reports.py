"""The ledger reports: summary, expiration schedule and program activity, answered from running totals.

Nothing here scans the journal. The figures come from :class:`~scrip_actor.report_totals.ReportTotals`, which every
commit keeps (hour rows, holder counts, lot expiry cells). A period (``from``/``to``) adds whole hours from memory
and reads from the store only the entries and events of the two hours its ends cut through, found by their hour
keys; an end on an hour boundary (``from`` at hh:00:00, ``to`` at hh:59:59.999999) reads nothing. So a report costs
O(hour rows + entries in two hours), whatever the size of the journal (measured: docs/benchmarks.md, Reports).

Consistency: whole hours are read from memory and the edge hours from the store after waiting for everything
appended so far to be durable, so a report taken while events are being processed may lag by the commits made
while it waited (every report adds up exactly whatever it includes: opening + period == closing by construction).
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from scrip_actor._event_records import decode_stored_event
from scrip_actor._records import decode_entry
from scrip_actor.amounts import format_minor
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._rewards import Rewards
from scrip_actor.errors import ValidationFailed
from scrip_actor.ledger import World
from scrip_actor.model import Asset, Program
from scrip_actor.report_model import ActivityAsset, ExpirationBucket, ExpirationSchedule, LedgerSummary, ProgramActivity
from scrip_actor.report_totals import (
    ALL_PROGRAMS,
    COLUMNS,
    ENTRIES,
    EPOCH,
    EVENTS,
    EXPIRED,
    FORFEITED,
    ISSUED,
    NEVER_DAY,
    OTHER,
    REDEEMED,
    classify,
    day_of,
    event_time_key,
    hour_of,
    micros,
    net_change,
    time_index_prefix,
)
from scrip_actor.store import Store, unbe64

__all__ = ["BUCKETS_MAX", "Reports", "Window"]

Granularity = Literal["day", "week", "month"]
BUCKETS_MAX = 1000  # buckets one expiration schedule may ask for (about 2.7 years by day)
_HOUR_US = 3_600_000_000
Rows = dict[tuple[str, str], list[int]]  # (program key, asset id) -> summed columns


class Window:
    """A closed time window ``[start, end]`` cut into the rows before it and the rows inside it."""

    def __init__(self, start: datetime, end: datetime) -> None:
        if start > end:
            raise ValidationFailed.field("from", "invalid", "from must not be after to")
        self.start, self.end = start, end
        self.start_us, self.end_us = micros(start), micros(end)
        self.first_hour, self.last_hour = hour_of(start), hour_of(end)
        # An end on an hour boundary needs no reading: the whole hour row is on one side.
        # In microseconds, not datetimes: an hour's start can lie outside the years datetime holds (0001, 9999).
        self.first_whole = self.start_us % _HOUR_US == 0
        self.last_whole = self.end_us % _HOUR_US == _HOUR_US - 1

    def edge_hours(self) -> list[int]:
        """The hours whose entries must be read one by one."""
        edges = []
        if not self.first_whole:
            edges.append(self.first_hour)
        if not self.last_whole and (self.last_hour != self.first_hour or self.first_whole):
            edges.append(self.last_hour)
        return edges

    def side(self, hour: int) -> int:
        """-1: the whole hour is before the window; 0: inside; 1: after; 2: an edge (read it entry by entry)."""
        if (hour == self.first_hour and not self.first_whole) or (hour == self.last_hour and not self.last_whole):
            return 2
        if hour < self.first_hour:
            return -1
        if hour > self.last_hour:
            return 1
        return 0

    def place(self, moment_us: int) -> int:
        """-1, 0 or 1: where an instant falls."""
        return -1 if moment_us < self.start_us else 1 if moment_us > self.end_us else 0


def _add(rows: Rows, key: tuple[str, str], values: list[int]) -> None:
    row = rows.get(key)
    if row is None:
        rows[key] = list(values)
    else:
        for column, value in enumerate(values):
            row[column] += value


class Reports:
    """Every report of ``/v1/reports``; one call, no change. ``engine.reports`` is this object.

    Args:
        store: where the edge hours' entries and events are read.
        world: holds the running totals (``world.reports``) and the assets.
        catalog: programs, assets and rules (NotFound for unknown ids).
        rewards: the reward catalog (counted per program).
        caught_up: waits until everything appended so far is durable.
    """

    def __init__(
        self,
        *,
        store: Store,
        world: World,
        catalog: Catalog,
        rewards: Rewards,
        caught_up: Callable[[], Awaitable[None]],
        tier_count: Callable[[str], int] = lambda program_id: 0,
    ) -> None:
        self._store = store
        self._world = world
        self._catalog = catalog
        self._rewards = rewards
        self._caught_up = caught_up
        self._tier_count = tier_count  # a program's ACTIVE tier definitions (engine/_tiers.py)

    # --- the window -----------------------------------------------------------------------------------------

    def _window_rows(self, window: Window) -> tuple[Rows, Rows]:
        """The columns summed before the window and inside it, per (program key, asset)."""
        before: Rows = {}
        inside: Rows = {}
        for (program_key, asset_id, hour), row in self._world.reports.hours.items():
            side = window.side(hour)
            if side == -1:
                _add(before, (program_key, asset_id), row)
            elif side == 0:
                _add(inside, (program_key, asset_id), row)
        for hour in window.edge_hours():
            self._read_edge_entries(window, hour, before, inside)
            self._read_edge_events(window, hour, before, inside)
        return before, inside

    def _read_edge_entries(self, window: Window, hour: int, before: Rows, inside: Rows) -> None:
        for key, _ in self._store.scan("journal_index", time_index_prefix(hour)):
            raw = self._store.get_raw("journal", key[-8:])
            assert raw is not None, f"time index names missing entry #{unbe64(key[-8:])}"
            entry = decode_entry(raw)
            assert hour_of(entry.created_at) == hour
            side = window.place(micros(entry.created_at))
            if side == 1:
                continue
            rows = before if side == -1 else inside
            program_key = entry.program_id or ""
            counted = [0] * len(COLUMNS)
            counted[ENTRIES] = 1
            _add(rows, (program_key, ""), counted)
            for asset_id, (column, amount) in classify(entry).items():
                values = [0] * len(COLUMNS)
                values[column] = amount
                _add(rows, (program_key, asset_id), values)

    def _read_edge_events(self, window: Window, hour: int, before: Rows, inside: Rows) -> None:
        for program_id in self._catalog.programs:
            for key, _ in self._store.scan("events_by_time", event_time_key(program_id, hour)):
                raw = self._store.get_raw("events", key[-8:])
                assert raw is not None, f"events_by_time names missing event #{unbe64(key[-8:])}"
                stored = decode_stored_event(raw)
                side = window.place(micros(stored.event_timestamp))
                if side == 1:
                    continue
                values = [0] * len(COLUMNS)
                values[EVENTS] = 1
                _add(before if side == -1 else inside, (program_id, ""), values)

    # --- ledger summary -------------------------------------------------------------------------------------

    async def ledger_summary(
        self, *, program_id: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[LedgerSummary]:
        """Per asset (of the program, when one is given): lifetime figures, and period figures for
        ``[start, end]`` (both or neither; inclusive; on each entry's ``created_at``)."""
        if (start is None) != (end is None):
            raise ValidationFailed.field("from" if start is None else "to", "required", "give both from and to")
        if program_id is not None:
            self._catalog.program(program_id)  # NotFound
        window = Window(start, end) if start is not None and end is not None else None
        await self._caught_up()
        assets = self._assets(program_id)
        totals = self._world.reports.totals
        lifetime: Rows = {}
        for (program_key, asset_id), row in totals.items():
            if program_id is None or program_key == program_id:
                _add(lifetime, ("", asset_id), row)
        before: Rows = {}
        inside: Rows = {}
        if window is not None:
            before, inside = self._window_rows(window)
        return [self._summary(asset, program_id, lifetime, before, inside, window) for asset in assets]

    def _summary(
        self, asset: Asset, program_id: str | None, lifetime: Rows, before: Rows, inside: Rows, window: Window | None
    ) -> LedgerSummary:
        scale = asset.scale
        row = lifetime.get(("", asset.id), [0] * len(COLUMNS))
        holders = self._world.reports.holders.get((program_id or ALL_PROGRAMS, asset.id), 0)
        summary = LedgerSummary(
            asset_id=asset.id,
            asset_name=asset.name,
            asset_symbol=asset.symbol,
            scale=scale,
            total_issued=format_minor(row[ISSUED], scale),
            total_redeemed=format_minor(row[REDEEMED], scale),
            total_expired=format_minor(row[EXPIRED], scale),
            total_forfeited=format_minor(row[FORFEITED], scale),
            total_other_adjustments_net=format_minor(row[OTHER], scale),
            current_balance=format_minor(net_change(row), scale),
            participant_count=holders,
        )
        if window is None:
            return summary
        opening = _sum_rows(before, program_id, asset.id)
        period = _sum_rows(inside, program_id, asset.id)
        opening_minor = net_change(opening)
        summary.opening_balance = format_minor(opening_minor, scale)
        summary.closing_balance = format_minor(opening_minor + net_change(period), scale)
        summary.period_issued = format_minor(period[ISSUED], scale)
        summary.period_redeemed = format_minor(period[REDEEMED], scale)
        summary.period_expired = format_minor(period[EXPIRED], scale)
        summary.period_forfeited = format_minor(period[FORFEITED], scale)
        summary.other_adjustments_net = format_minor(period[OTHER], scale)
        return summary

    def _assets(self, program_id: str | None) -> list[Asset]:
        assets = sorted(self._world.assets.values(), key=lambda asset: asset.id)
        if program_id is None:
            return assets
        return [asset for asset in assets if program_id in asset.program_ids]

    # --- expiration schedule --------------------------------------------------------------------------------

    async def expiration_schedule(
        self,
        *,
        start: date | None,
        end: date | None,
        granularity: Granularity = "month",
        program_id: str | None = None,
        asset_id: str | None = None,
    ) -> list[ExpirationSchedule]:
        """Outstanding value of open lots per LOT asset by the calendar bucket (UTC days) of their ``expires_at``.

        The window is widened to whole buckets: the first is the one holding ``start``, the last the one holding
        ``end``. ``never_expiring + expiring_before_window + sum(buckets) + expiring_after_window ==
        total_outstanding``, exactly.
        """
        if start is None or end is None:
            raise ValidationFailed.field("from" if start is None else "to", "required", "from and to are required")
        if start > end:
            raise ValidationFailed.field("from", "invalid", "from must not be after to")
        if program_id is not None:
            self._catalog.program(program_id)
        if asset_id is not None:
            asset = self._catalog.asset(asset_id)
            if asset.inventory_mode != "LOT":
                raise ValidationFailed.field(
                    "asset_id", "invalid", f"asset {asset_id} is SIMPLE: only LOT assets have an expiration schedule"
                )
            assets = [asset]
        else:
            assets = [asset for asset in self._assets(program_id) if asset.inventory_mode == "LOT"]
        buckets = calendar_buckets(start, end, granularity)
        await self._caught_up()
        return [_schedule(asset, program_id, buckets, self._world.reports.expiry) for asset in assets]

    # --- program activity -----------------------------------------------------------------------------------

    async def program_activity(
        self, *, since: datetime | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[ProgramActivity]:
        """Per program: its events, entries, issued and redeemed value (in ``[start, end]`` when given), enrolled
        participants, latest activity, and the sizes of its catalog; ``since`` drops programs idle since then."""
        if (start is None) != (end is None):
            raise ValidationFailed.field("from" if start is None else "to", "required", "give both from and to")
        window = Window(start, end) if start is not None and end is not None else None
        await self._caught_up()
        totals = self._world.reports
        rows: Rows = totals.totals
        if window is not None:
            rows = self._window_rows(window)[1]
        activity = []
        for program in sorted(self._catalog.programs.values(), key=lambda program: program.id):
            last_us = totals.last_activity_us.get(program.id)
            if since is not None and (last_us is None or last_us < micros(since)):
                continue
            activity.append(self._activity(program, rows, last_us))
        return activity

    def _activity(self, program: Program, rows: Rows, last_us: int | None) -> ProgramActivity:
        totals = self._world.reports
        lifetime = totals.totals.get((program.id, ""), [0] * len(COLUMNS))
        counted = rows.get((program.id, ""), [0] * len(COLUMNS))
        assets = self._assets(program.id)
        per_asset = []
        # The sums across assets in minor units of the finest scale: exact (a Decimal sum rounds past 28 digits).
        scale = max((asset.scale for asset in assets), default=0)
        issued = redeemed = 0
        for asset in assets:
            row = rows.get((program.id, asset.id), [0] * len(COLUMNS))
            per_asset.append(
                ActivityAsset(
                    asset_id=asset.id,
                    asset_symbol=asset.symbol,
                    total_issued=format_minor(row[ISSUED], asset.scale),
                    total_redeemed=format_minor(row[REDEEMED], asset.scale),
                )
            )
            issued += row[ISSUED] * 10 ** (scale - asset.scale)
            redeemed += row[REDEEMED] * 10 ** (scale - asset.scale)
        return ProgramActivity(
            program_id=program.id,
            program_name=program.name,
            event_count=counted[EVENTS],
            journal_count=lifetime[ENTRIES],
            total_issued=format_minor(issued, scale),
            total_redeemed=format_minor(redeemed, scale),
            unique_participants=totals.enrolled.get(program.id, 0),
            last_activity_at=None if last_us is None else EPOCH + timedelta(microseconds=last_us),
            asset_count=len(assets),
            rule_count=sum(1 for rule in self._catalog.rules.values() if rule.program_id == program.id),
            reward_count=sum(1 for reward in self._rewards.rewards.values() if reward.program_id == program.id),
            tier_count=self._tier_count(program.id),
            assets=per_asset,
        )


def _sum_rows(rows: Rows, program_id: str | None, asset_id: str) -> list[int]:
    total = [0] * len(COLUMNS)
    for (program_key, row_asset), row in rows.items():
        if row_asset == asset_id and (program_id is None or program_key == program_id):
            for column, value in enumerate(row):
                total[column] += value
    return total


def calendar_buckets(first: date, last: date, granularity: Granularity) -> list[tuple[date, date]]:
    """The UTC calendar buckets (first day, last day) from the one holding ``first`` to the one holding ``last``."""
    if granularity == "day":
        start = first
    elif granularity == "week":
        start = first - timedelta(days=first.weekday())  # ISO weeks: Monday first
    else:
        start = first.replace(day=1)
    buckets: list[tuple[date, date]] = []
    while start <= last:
        if granularity == "day":
            stop = start
        elif granularity == "week":  # the last week of year 9999 ends at date.max
            stop = start + timedelta(days=6) if date.max - start >= timedelta(days=6) else date.max
        else:
            stop = start.replace(day=calendar.monthrange(start.year, start.month)[1])
        buckets.append((start, stop))
        if len(buckets) > BUCKETS_MAX:
            raise ValidationFailed.field(
                "granularity", "too_many_buckets", f"the window holds more than {BUCKETS_MAX} {granularity} buckets"
            )
        if stop == date.max:
            break  # no day after it to start from
        start = stop + timedelta(days=1)
    return buckets


def _day_number(day: date) -> int:
    """A date as the stored expiry day (day index + 1; 0 is "never")."""
    return day_of(datetime(day.year, day.month, day.day, tzinfo=UTC)) + 1


def _schedule(
    asset: Asset,
    program_id: str | None,
    buckets: list[tuple[date, date]],
    expiry: dict[tuple[str, str, int], list[int]],
) -> ExpirationSchedule:
    bounds = [(_day_number(first), _day_number(last)) for first, last in buckets]
    amounts = [0] * len(buckets)
    counts = [0] * len(buckets)
    never = before = after = total = lots = 0
    window_first, window_last = bounds[0][0], bounds[-1][1]
    for (cell_program, cell_asset, day), (value, count) in expiry.items():
        if cell_asset != asset.id or (program_id is not None and cell_program != program_id):
            continue
        total += value
        lots += count
        if day == NEVER_DAY:
            never += value
        elif day < window_first:
            before += value
        elif day > window_last:
            after += value
        else:
            index = _bucket_index(bounds, day)
            amounts[index] += value
            counts[index] += count
    assert never + before + after + sum(amounts) == total
    scale = asset.scale
    return ExpirationSchedule(
        asset_id=asset.id,
        asset_name=asset.name,
        asset_symbol=asset.symbol,
        scale=scale,
        total_outstanding=format_minor(total, scale),
        total_lot_count=lots,
        never_expiring=format_minor(never, scale),
        expiring_before_window=format_minor(before, scale),
        expiring_after_window=format_minor(after, scale),
        buckets=[
            ExpirationBucket(
                bucket_start=first.isoformat(),
                bucket_end=last.isoformat(),
                amount=format_minor(amounts[index], scale),
                lot_count=counts[index],
            )
            for index, (first, last) in enumerate(buckets)
        ],
    )


def _bucket_index(bounds: list[tuple[int, int]], day: int) -> int:
    """The bucket holding ``day`` (bisection over contiguous buckets)."""
    low, high = 0, len(bounds) - 1
    while low < high:
        middle = (low + high) // 2
        if bounds[middle][1] < day:
            low = middle + 1
        else:
            high = middle
    assert bounds[low][0] <= day <= bounds[low][1]
    return low
