"""The shapes of a backtest (docs/backtest.md): the proposed rule set, the request, the job and its report.

A backtest replays a program's recorded events over a time window with a proposed rule set, in a sandbox that is
never committed, and reports what the proposed rules would have done beside what actually happened. Amounts are
decimal strings at the asset's scale, as everywhere at the edges; the engine counts in integers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from scrip_actor.model import (
    BUDGETS_PER_RULE_MAX,
    Action,
    BudgetSpec,
    Description,
    Expression,
    Name,
    RuleEvaluation,
    RuleStatus,
)

__all__ = [
    "AssetAmounts",
    "AssetReport",
    "Backtest",
    "BacktestCreate",
    "BacktestStatus",
    "Distribution",
    "HistogramBucket",
    "ProposedRule",
    "RuleReport",
    "SampleEvent",
]

BacktestStatus = Literal["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
PROPOSED_RULES_MAX = 1000  # the body's bound; the program's own rules_per_program_max applies on top


class ProposedRule(Struct, forbid_unknown_fields=True, kw_only=True):
    """One rule of the proposed set: the body of ``POST /v1/rules`` without ``program_id``.

    ``rule_id`` names the program's existing rule this one replaces (a changed rule); without it the rule is new.
    An existing rule the proposed set does not name is removed for the backtest.
    """

    rule_id: str | None = None
    name: Name
    condition: Expression
    actions: Annotated[list[Action], Meta(min_length=1)]
    description: Description | None = None
    order: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None
    stop_after_match: bool = False
    active_from: datetime | None = None
    active_to: datetime | None = None
    status: RuleStatus = "ACTIVE"
    budgets: Annotated[list[BudgetSpec], Meta(max_length=BUDGETS_PER_RULE_MAX)] = []


class BacktestCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/programs/{id}/backtests``: the proposed rules (None: the program's current rules) and the window.

    The window is ``[from, to)`` on the events' receipt time (``created_at``, what ``GET /v1/events`` filters on
    with ``created_from``/``created_to``). ``events_max`` and ``time_max_s`` lower the configured bounds for this
    run (they cannot raise them).
    """

    rules: Annotated[list[ProposedRule], Meta(max_length=PROPOSED_RULES_MAX)] | None = None
    from_: datetime = msgspec.field(name="from")
    to: datetime
    events_max: Annotated[int, Meta(ge=1)] | None = None
    time_max_s: Annotated[float, Meta(gt=0)] | None = None


class AssetAmounts(Struct, kw_only=True):
    """Value that entered (``credited``) and left (``debited``) participants' balances, by asset."""

    asset_id: str
    credited: str
    debited: str


class HistogramBucket(Struct, kw_only=True):
    """Events whose credited amount lies in ``[lower, upper)`` (``upper`` None: no upper bound)."""

    lower: str
    upper: str | None
    count: int


class Distribution(Struct, kw_only=True):
    """The per-event credited amounts of one asset (events that credited it), exact: nearest-rank percentiles."""

    count: int
    min: str | None
    p50: str | None
    p90: str | None
    max: str | None
    histogram: list[HistogramBucket]


class AssetReport(Struct, kw_only=True):
    """One asset: the proposed totals, the actual ones, their difference, the wallet and the distribution."""

    asset_id: str
    credited: str
    debited: str
    actual_credited: str
    actual_debited: str
    difference_credited: str  # credited - actual_credited (negative: the proposed rules credit less)
    difference_debited: str
    wallet_draw: str  # net value the proposed rules took from the program's wallet (PREFUNDED assets; else "0")
    actual_wallet_draw: str
    wallet_failures: int  # events whose credit the wallet could not cover, as it would have failed live
    participants_affected: int
    distribution: Distribution


class RuleReport(Struct, kw_only=True):
    """One rule and one asset it moved (``asset_id`` None: a rule that moved no value, one row)."""

    rule_id: str | None  # None: a new rule of the proposed set (named by ``name``)
    name: str
    change: Literal["unchanged", "changed", "new", "removed"]
    asset_id: str | None
    matches: int
    budget_hits: int  # matches skipped because the rule's budget could not fit their credits
    participants_affected: int
    credited: str
    debited: str
    actual_matches: int
    actual_credited: str
    actual_debited: str


class SampleEvent(Struct, kw_only=True):
    """An affected event: what the proposed rules did with it beside what happened."""

    event_id: str
    participant_id: str | None
    external_id: str
    event_timestamp: datetime
    failure: str | None
    actual_failure: str | None
    amounts: list[AssetAmounts]
    actual_amounts: list[AssetAmounts]
    evaluations: list[RuleEvaluation]


class Backtest(Struct, kw_only=True):
    """A backtest job and, as it runs and once it ends, its report (docs/backtest.md)."""

    id: str
    program_id: str
    status: BacktestStatus
    from_: datetime = msgspec.field(name="from")
    to: datetime
    rules_source: Literal["current", "proposed"]
    created_at: datetime
    finished_at: datetime | None = None
    failure_reason: str | None = None
    events_replayed: int = 0  # window events replayed with the proposed rules
    replayed_to: datetime | None = None  # receipt time of the last event replayed: the progress through the window
    events_warmup: int = 0  # earlier events replayed with their own rules to rebuild the state at the window start
    events_skipped: int = 0  # window events not replayed: not processed yet, or refused by a paused program
    events_failed: int = 0  # window events that FAILED with the proposed rules
    events_failed_actual: int = 0
    participants_affected: int = 0
    totals: list[AssetAmounts] = []
    actual: list[AssetAmounts] = []
    difference: list[AssetAmounts] = []
    assets: list[AssetReport] = []
    rules: list[RuleReport] = []
    sample: list[SampleEvent] = []
    warnings: list[str] = []
