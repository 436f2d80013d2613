"""Properties of automation times: cron fires move strictly forward at the expression's local time, and an
ATTRIBUTE_DATE subscription fires exactly once per year on its day (February 29 on the 28th in a common year)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.automations import ScheduleConfig, attribute_month_day, next_attribute_date, next_cron

ZONES = ["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    zone=st.sampled_from(ZONES),
    after=moments,
    steps=st.integers(1, 40),
)
def test_daily_cron_fires_strictly_later_once_per_local_day(
    minute: int, hour: int, zone: str, after: datetime, steps: int
) -> None:
    tz = ZoneInfo(zone)
    fires = []
    moment = after
    for _ in range(steps):
        fire = next_cron(f"{minute} {hour} * * *", zone, moment)
        assert fire is not None and fire > moment
        fires.append(fire)
        moment = fire
    local_days = [fire.astimezone(tz).date() for fire in fires]
    assert len(set(local_days)) == len(local_days)  # never twice on one local day (a fall-back hour repeats)
    for fire in fires:
        local = fire.astimezone(tz)
        # At the expression's time, or later that day when a spring-forward gap swallowed it.
        assert (local.hour, local.minute) >= (hour, minute) or local.date() != fire.astimezone(tz).date()
        assert local - local.replace(hour=hour, minute=minute) < timedelta(hours=3)


@settings(max_examples=200, deadline=None)
@given(
    month=st.integers(1, 12),
    day=st.integers(1, 31),
    zone=st.sampled_from(ZONES),
    clock=st.sampled_from(["00:00", "09:30", "23:59"]),
    start=moments,
)
def test_an_attribute_date_fires_once_a_year_on_its_day(
    month: int, day: int, zone: str, clock: str, start: datetime
) -> None:
    month_day = attribute_month_day(f"{month:02}-{day:02}")
    if month_day is None:  # not a date in any year (04-31)
        return
    config = ScheduleConfig(attribute="birthday", time=clock, timezone=zone)
    tz = ZoneInfo(zone)
    moment, years = start, []
    for _ in range(6):
        fire = next_attribute_date(month_day, config, moment)
        assert fire > moment
        local = fire.astimezone(tz)
        expected_day = 28 if (month, day) == (2, 29) and local.year % 4 != 0 else day
        if (month, day) == (2, 29) and local.year % 100 == 0 and local.year % 400 != 0:
            expected_day = 28
        assert (local.month, local.day) == (month, expected_day)
        years.append(local.year)
        moment = fire
    assert years == list(range(years[0], years[0] + 6))  # every year, none skipped, none twice
