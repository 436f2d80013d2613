"""``/v1/reports``: the ledger summary, the expiration schedule and program activity (docs/reports.md).

Each is one engine call answered from running totals (no journal scan), so they stay fast on a large store.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from msgspec import Struct, field

from scrip_actor.durations import utc
from scrip_actor.errors import ValidationFailed
from scrip_actor.http.routing import Call, Endpoint
from scrip_actor.http.schemas import AwareDatetime, DataOf
from scrip_actor.report_model import ExpirationSchedule, LedgerSummary, ProgramActivity

__all__ = ["ENDPOINTS"]

_request: dict[str, Any] = {"frozen": True, "forbid_unknown_fields": True, "kw_only": True}


class LedgerSummaryQuery(Struct, **_request):
    """``program_id``; ``from`` and ``to`` (both or neither; inclusive) add the period figures."""

    program_id: str | None = None
    start: AwareDatetime | None = field(default=None, name="from")
    end: AwareDatetime | None = field(default=None, name="to")


class ExpirationScheduleQuery(Struct, **_request):
    """``from`` and ``to`` (required; dates or timestamps, taken as their UTC day; inclusive)."""

    start: str | None = field(default=None, name="from")
    end: str | None = field(default=None, name="to")
    granularity: Literal["day", "week", "month"] = "month"
    program_id: str | None = None
    asset_id: str | None = None


class ProgramActivityQuery(Struct, **_request):
    """``since`` drops programs idle since then; ``from``/``to`` (both or neither) scope the period counts."""

    since: AwareDatetime | None = None
    start: AwareDatetime | None = field(default=None, name="from")
    end: AwareDatetime | None = field(default=None, name="to")


def _day(text: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` date, or an RFC 3339 timestamp with an offset taken as its UTC day."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed.field(name, "invalid", f"{name} must be a date (YYYY-MM-DD) or a timestamp") from None
    try:
        return utc(moment).date()  # refuses a naive timestamp, and one outside years 1-9999 in UTC
    except ValueError as error:
        raise ValidationFailed.field(name, "invalid", f"{name}: {error}") from None


async def ledger_summary(call: Call) -> DataOf[LedgerSummary]:
    """Per asset: issued, redeemed, expired, forfeited, current balance, holders; with from/to the period."""
    query: LedgerSummaryQuery = call.query
    rows = await call.engine.reports.ledger_summary(program_id=query.program_id, start=query.start, end=query.end)
    return DataOf(data=rows)


async def expiration_schedule(call: Call) -> DataOf[ExpirationSchedule]:
    """Per LOT asset: outstanding lot value by calendar bucket of expiry; the parts add up to the total."""
    query: ExpirationScheduleQuery = call.query
    rows = await call.engine.reports.expiration_schedule(
        start=_day(query.start, "from"),
        end=_day(query.end, "to"),
        granularity=query.granularity,
        program_id=query.program_id,
        asset_id=query.asset_id,
    )
    return DataOf(data=rows)


async def program_activity(call: Call) -> DataOf[ProgramActivity]:
    """Per program: events, entries, issued and redeemed, participants, latest activity, catalog sizes."""
    query: ProgramActivityQuery = call.query
    rows = await call.engine.reports.program_activity(since=query.since, start=query.start, end=query.end)
    return DataOf(data=rows)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/reports/ledger-summary",
        ledger_summary,
        "Ledger summary per asset",
        "Reports",
        query=LedgerSummaryQuery,
        response=DataOf[LedgerSummary],
    ),
    Endpoint(
        "GET",
        "/v1/reports/expiration-schedule",
        expiration_schedule,
        "Outstanding lot value by expiry bucket",
        "Reports",
        query=ExpirationScheduleQuery,
        response=DataOf[ExpirationSchedule],
    ),
    Endpoint(
        "GET",
        "/v1/reports/program-activity",
        program_activity,
        "Activity per program",
        "Reports",
        query=ProgramActivityQuery,
        response=DataOf[ProgramActivity],
    ),
]
