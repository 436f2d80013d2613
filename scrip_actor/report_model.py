"""The shapes of the three ledger reports (``/v1/reports/...``); amounts are decimal strings at the asset's scale.

See docs/reports.md for what each figure counts and how they add up.
"""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

__all__ = ["ActivityAsset", "ExpirationBucket", "ExpirationSchedule", "LedgerSummary", "ProgramActivity"]


class LedgerSummary(Struct, kw_only=True):
    """One asset's lifetime figures and, with ``from``/``to``, its period figures.

    Lifetime: ``current_balance == total_issued - total_redeemed - total_expired - total_forfeited
    + total_other_adjustments_net``. Period: ``closing_balance == opening_balance + period_issued - period_redeemed
    - period_expired - period_forfeited + other_adjustments_net``. Both exactly, in minor units.
    """

    asset_id: str
    asset_name: str
    asset_symbol: str
    scale: int
    total_issued: str
    total_redeemed: str
    total_expired: str
    total_forfeited: str
    total_other_adjustments_net: str  # extension: what the reference's current_balance formula leaves out
    current_balance: str
    participant_count: int  # participants holding a nonzero balance of the asset (enrolled in the program, if one)
    opening_balance: str | None = None
    closing_balance: str | None = None
    period_issued: str | None = None
    period_redeemed: str | None = None
    period_expired: str | None = None
    period_forfeited: str | None = None
    other_adjustments_net: str | None = None


class ExpirationBucket(Struct, kw_only=True):
    """Open lots expiring on the UTC calendar days ``bucket_start``..``bucket_end`` (both inclusive)."""

    bucket_start: str  # YYYY-MM-DD
    bucket_end: str  # YYYY-MM-DD
    amount: str
    lot_count: int


class ExpirationSchedule(Struct, kw_only=True):
    """One LOT asset's outstanding lot value by expiry: the parts add up exactly to ``total_outstanding``."""

    asset_id: str
    asset_name: str
    asset_symbol: str
    scale: int
    total_outstanding: str
    total_lot_count: int
    never_expiring: str
    expiring_before_window: str
    expiring_after_window: str
    buckets: list[ExpirationBucket]


class ActivityAsset(Struct, kw_only=True):
    """A program's issued and redeemed value of one asset (in the window, when one is given)."""

    asset_id: str
    asset_symbol: str
    total_issued: str
    total_redeemed: str


class ProgramActivity(Struct, kw_only=True):
    """One program's activity. ``total_issued``/``total_redeemed`` add the per-asset decimal amounts of
    ``assets`` (exact decimals; meaningful when the assets share a unit, so each asset is listed too)."""

    program_id: str
    program_name: str
    event_count: int
    journal_count: int
    total_issued: str
    total_redeemed: str
    unique_participants: int
    last_activity_at: datetime | None
    asset_count: int
    rule_count: int
    reward_count: int
    tier_count: int
    assets: list[ActivityAsset]
