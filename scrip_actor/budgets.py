"""Rule budgets: the most a rule may issue of one asset per period, shared by every participant.

Pure domain code (docs/budgets.md). A budget is like a PREFUNDED wallet: one number (``consumed_minor``) that every
participant's events draw on, so it lives beside the :class:`~scrip_actor.ledger.World`, not in a participant.
The engine runs steps one at a time, so a check-and-consume inside the step (:class:`BudgetTx`) is exact: no
interleaving can take it one unit over the limit. What the step consumed is published only if its ledger
transaction commits, and is written in the same store record as the journal entries that consumed it.

A period is lifetime (no schedule), ``INTERVAL`` (a duration: ``"720h"``) or ``CRON`` (a five-field cron
expression, read by the maintained ``cronsim`` library, in UTC). A period ends at ``next_reset_at``; the reset is
applied lazily, by the first step that touches the budget once the *wall clock* (the step's ``wall_now``, never the
client's ``event_timestamp``, which a client could backdate to spend an old period again) has passed it.

``period_start_sequence`` is the journal sequence the current period began at: every entry from there on that the
rule posted counts, so ``scrip verify`` recomputes ``consumed_minor`` from the journal alone (:func:`issued_minor`).

In partitioned mode (docs/partitioned.md, *Shared rule budgets*) each budget has an owner partition and every other
partition spends a **lease** of it: ``BudgetState.leased_minor`` is what the owner granted this partition in the
current period (on the owner: what it granted out), so a partition's **allowance** is its lease, the owner's the
limit less what it leased out. A match its allowance cannot take, but the limit could, raises :class:`BudgetShort`
when the step may hold (the partition then asks the owner, as for a shared wallet); otherwise it is skipped as
``BUDGET_EXCEEDED``, as on one process. A new period starts every partition's lease at 0 (and the owner's at the
whole limit), so no lease outlives its period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import msgspec
from cronsim import CronSim, CronSimError

from scrip_actor.amounts import format_minor, parse_decimal, to_minor
from scrip_actor.durations import parse_duration
from scrip_actor.errors import ValidationFailed
from scrip_actor.ledger import SYSTEM_ISSUANCE, ActionFailed
from scrip_actor.model import Asset, BudgetSpec, JournalEntry, RuleBudget

__all__ = [
    "BUDGET_EXCEEDED",
    "INTERVAL_MIN",
    "Budget",
    "BudgetShort",
    "BudgetState",
    "BudgetTx",
    "Budgets",
    "checked_budgets",
    "issued_minor",
]

BUDGET_EXCEEDED = "BUDGET_EXCEEDED"  # the reason of a match skipped because its credits would not fit
INTERVAL_MIN = timedelta(seconds=1)  # a shorter period is not a budget but a rate limit


class BudgetState(msgspec.Struct, kw_only=True):
    """What a budget has used in its current period: the ``rule_budgets`` record (key ``rule_id NUL asset_id``)."""

    rule_id: str
    asset_id: str
    consumed_minor: int
    period_start_sequence: int  # the first journal sequence that counts towards this period
    period_started_at: datetime  # when this period's state began (creation, a reset, or a scheduled reset applied)
    next_reset_at: datetime | None  # None: lifetime
    # Partitioned mode only (the module docstring): granted to this partition in this period, or by the owner out
    # of it. A fresh period starts it at 0: a lease is for one period, and lapses with it.
    leased_minor: int = 0


class BudgetShort(ActionFailed):
    """A match the partition's allowance of a shared budget cannot take, though its limit could: the step is held
    while the partition asks the budget's owner for ``need_minor`` more (scrip_actor/partitioned/_budget_leases.py).
    ``period_end`` names the period the allowance is of (its ``next_reset_at``; None: a lifetime budget)."""

    def __init__(
        self, message: str, *, rule_id: str, asset_id: str, period_end: datetime | None, need_minor: int,
        full_need_minor: int,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.rule_id, self.asset_id, self.period_end = rule_id, asset_id, period_end
        self.need_minor, self.full_need_minor = need_minor, full_need_minor


class Budget:
    """One budget of one rule: its definition (from the rule) and its shared, live state."""

    __slots__ = ("asset", "cron", "interval", "limit_minor", "spec", "state")

    def __init__(self, spec: RuleBudget, asset: Asset, state: BudgetState) -> None:
        self.spec = spec
        self.asset = asset
        self.limit_minor = to_minor(parse_decimal(spec.limit), asset.scale)
        self.cron = spec.cron_expression if spec.schedule_type == "CRON" else None
        self.interval = parse_duration(spec.interval) if spec.schedule_type == "INTERVAL" and spec.interval else None
        self.state = state

    def next_reset_after(self, moment: datetime) -> datetime | None:
        """The first reset strictly after ``moment`` (None: a lifetime budget never resets)."""
        return _next_reset(self.cron, self.interval, moment)

    def effective(self, wall_now: datetime, next_sequence: int) -> BudgetState:
        """The state as it stands at ``wall_now``: the stored one, or a fresh period if a scheduled reset has passed
        (``next_sequence`` is the first journal sequence the new period would count from). Changes nothing."""
        state = self.state
        if state.next_reset_at is None or wall_now < state.next_reset_at:
            return state
        if self.interval is not None:  # stay on the schedule's grid: the next boundary after now
            missed = (wall_now - state.next_reset_at) // self.interval + 1
            next_reset = state.next_reset_at + missed * self.interval
        else:
            next_reset = self.next_reset_after(wall_now)
        return BudgetState(
            rule_id=state.rule_id,
            asset_id=state.asset_id,
            consumed_minor=0,
            period_start_sequence=next_sequence,
            period_started_at=wall_now,
            next_reset_at=next_reset,
        )

    def allowance_minor(self, state: BudgetState, leaseholder: bool | None) -> int:
        """What this process may consume in ``state``'s period: the limit on one process (``leaseholder`` None),
        the lease on a partition that holds one (True), the limit less the leases granted on the owner (False)."""
        if leaseholder is None:
            return self.limit_minor
        return state.leased_minor if leaseholder else self.limit_minor - state.leased_minor

    def public(self, wall_now: datetime, next_sequence: int) -> RuleBudget:
        """The budget as ``GET /rules/{id}`` shows it: the effective state (0 consumed once past a reset)."""
        state = self.effective(wall_now, next_sequence)
        return msgspec.structs.replace(
            self.spec,
            consumed=format_minor(state.consumed_minor, self.asset.scale),
            next_reset_at=state.next_reset_at,
        )


class Budgets:
    """Every rule's budgets, by rule id: the shared state the steps check and consume (see the module docstring).

    Rules without a budget have no entry, so the step's cost for them is one failed dict lookup.
    ``leaseholder`` is None on one process; in partitioned mode it tells, for (rule id, asset id), whether this
    partition holds a lease of the budget (True) or owns it (False).
    """

    def __init__(self) -> None:
        self.by_rule: dict[str, list[Budget]] = {}
        self.leaseholder: Callable[[str, str], bool] | None = None

    def find(self, rule_id: str, asset_id: str) -> Budget | None:
        """The rule's budget of ``asset_id``, if it has one."""
        return next((budget for budget in self.by_rule.get(rule_id, ()) if budget.spec.asset_id == asset_id), None)

    def begin(self, wall_now: datetime, next_sequence: int, *, hold: bool = False) -> BudgetTx:
        """A step's view of the budgets (see :class:`BudgetTx`). ``hold``: a match short of a shared budget's
        allowance raises :class:`BudgetShort` (partitioned mode) instead of being skipped."""
        return BudgetTx(self, wall_now, next_sequence, hold=hold and self.leaseholder is not None)


class BudgetTx:
    """One step's budget work: effective states (lazy resets), check, consume; published only by :meth:`commit`.

    Dropping the object undoes everything, like dropping a :class:`~scrip_actor.ledger.LedgerTx`.
    """

    __slots__ = ("_budgets", "_hold", "_next_sequence", "_pending", "_wall_now")

    def __init__(self, budgets: Budgets, wall_now: datetime, next_sequence: int, *, hold: bool = False) -> None:
        self._budgets = budgets
        self._wall_now = wall_now
        self._next_sequence = next_sequence
        self._hold = hold
        self._pending: dict[tuple[str, str], tuple[Budget, BudgetState]] = {}

    def of_rule(self, rule_id: str) -> list[Budget] | None:
        """The rule's budgets, or None if it has none."""
        return self._budgets.by_rule.get(rule_id)

    def try_consume(self, budgets: list[Budget], issued: dict[str, int]) -> bool:
        """Consume ``issued`` (asset id -> minor units) from the rule's budgets if every one of them fits; else
        change nothing and return False. A budget that consumed nothing is written only if its period moved on
        (its lazy reset), so a rule's other budgets cost no write when it issues one asset.

        Raises:
            BudgetShort: (partitioned mode, holding) a budget's allowance cannot take the amount, but its limit can.
        """
        touched = []
        leaseholder = self._budgets.leaseholder
        for budget in budgets:
            key = (budget.state.rule_id, budget.state.asset_id)
            held = self._pending.get(key)
            state = held[1] if held else budget.effective(self._wall_now, self._next_sequence)
            amount = issued.get(budget.state.asset_id, 0)
            # Issuing none of the asset always fits, even past a limit lowered below what was consumed.
            if not amount:
                touched.append((key, budget, state, amount))
                continue
            holder = None if leaseholder is None else leaseholder(*key)
            wanted_minor = state.consumed_minor + amount
            if wanted_minor > budget.allowance_minor(state, holder):
                if self._hold and wanted_minor <= budget.limit_minor:
                    raise _short(budget, state, wanted_minor - budget.allowance_minor(state, holder), amount)
                return False
            touched.append((key, budget, state, amount))
        for key, budget, state, amount in touched:
            if amount == 0 and state is budget.state:
                continue  # nothing consumed, no reset: nothing to write
            self._pending[key] = (budget, msgspec.structs.replace(state, consumed_minor=state.consumed_minor + amount))
        return True

    def commit(self) -> list[BudgetState]:
        """Publish what this step consumed (call once its ledger transaction has committed); the states to store."""
        states = []
        for budget, state in self._pending.values():
            assert state.consumed_minor >= 0
            assert state is budget.state or state.consumed_minor <= max(budget.limit_minor, budget.state.consumed_minor)
            budget.state = state
            states.append(state)
        return states


def _short(budget: Budget, state: BudgetState, need_minor: int, amount_minor: int) -> BudgetShort:
    scale = budget.asset.scale
    message = (
        f"rule {state.rule_id}'s budget of {budget.asset.symbol} has {format_minor(max(0, need_minor), scale)} "
        f"too little here for {format_minor(amount_minor, scale)}"
    )
    return BudgetShort(
        message, rule_id=state.rule_id, asset_id=state.asset_id, period_end=state.next_reset_at,
        need_minor=need_minor, full_need_minor=amount_minor,
    )  # fmt: skip


def issued_minor(entries: Iterable[JournalEntry], rule_id: str) -> dict[str, int]:
    """What ``rule_id`` issued in ``entries``, by asset: its CREDIT entries' value out of SYSTEM_ISSUANCE or the
    program wallet. A provisional credit counts when made (to HELD); settling it later moves no new value. In
    partitioned mode a credit to another partition's participant counts where it left the source for a transit
    account, not where it arrives from transit (another partition's budget lease must not count it again). The
    step and ``scrip verify`` count with this one function."""
    issued: dict[str, int] = {}
    for entry in entries:
        if entry.rule_id != rule_id or entry.action_type != "CREDIT":
            continue
        for posting in entry.postings:
            if posting.entity_type == "PROGRAM" or posting.entity_id == SYSTEM_ISSUANCE:
                issued[posting.asset_id] = issued.get(posting.asset_id, 0) - posting.amount_minor
    return issued


# --- definitions: validation at create / PATCH ----------------------------------------------------------------


def checked_budgets(specs: list[BudgetSpec], program_id: str, assets: dict[str, Asset]) -> list[RuleBudget]:
    """Validate a rule's budgets (400 naming the field) and return them normalized for storage.

    One budget per asset; the asset exists and is linked to the rule's program; ``limit`` is positive in the
    asset's scale; ``schedule_type`` null has neither ``cron_expression`` nor ``interval``, CRON exactly a cron
    expression cronsim accepts, INTERVAL exactly a duration of at least one second.
    """
    seen: set[str] = set()
    checked = []
    for index, spec in enumerate(specs):
        field = f"budgets[{index}]"
        asset = assets.get(spec.asset_id)
        if asset is None:
            raise ValidationFailed.field(f"{field}.asset_id", "not_found", f"asset {spec.asset_id!r} does not exist")
        if program_id not in asset.program_ids:
            raise ValidationFailed.field(
                f"{field}.asset_id", "not_linked", f"asset {asset.symbol} is not linked to this program"
            )
        if spec.asset_id in seen:
            raise ValidationFailed.field(f"{field}.asset_id", "duplicate", f"a second budget for {asset.symbol}")
        seen.add(spec.asset_id)
        limit = _checked_limit(spec.limit, asset, f"{field}.limit")
        _check_schedule(spec, field)
        checked.append(
            RuleBudget(
                asset_id=spec.asset_id,
                limit=limit,
                schedule_type=spec.schedule_type,
                cron_expression=spec.cron_expression,
                interval=spec.interval,
            )
        )
    return checked


def _checked_limit(text: str, asset: Asset, field: str) -> str:
    # parse_decimal and to_minor raise the API's own errors for this field (invalid_scale for too many decimals,
    # like every other amount), so they pass through unchanged.
    minor = to_minor(parse_decimal(text, field), asset.scale, field)
    if minor <= 0:
        raise ValidationFailed.field(field, "invalid", f"{field} must be positive, got {text}")
    return format_minor(minor, asset.scale)


def _check_schedule(spec: BudgetSpec, field: str) -> None:
    kind = spec.schedule_type
    if kind != "CRON" and spec.cron_expression is not None:
        raise ValidationFailed.field(f"{field}.cron_expression", "invalid", "cron_expression needs schedule_type CRON")
    if kind != "INTERVAL" and spec.interval is not None:
        raise ValidationFailed.field(f"{field}.interval", "invalid", "interval needs schedule_type INTERVAL")
    if kind == "CRON":
        if spec.cron_expression is None:
            raise ValidationFailed.field(f"{field}.cron_expression", "required", "schedule_type CRON needs one")
        if len(spec.cron_expression.split()) != 5:  # cronsim also reads a seconds field; budgets are to the minute
            message = "a cron expression has five fields (minute hour day month weekday), such as '0 0 1 * *'"
            raise ValidationFailed.field(f"{field}.cron_expression", "invalid", message)
        try:
            _next_reset(spec.cron_expression, None, datetime(2000, 1, 1, tzinfo=UTC))
        except (CronSimError, StopIteration, ValueError) as error:
            message = f"not a cron expression such as '0 0 1 * *': {error}"
            raise ValidationFailed.field(f"{field}.cron_expression", "invalid", message) from None
    elif kind == "INTERVAL":
        if spec.interval is None:
            raise ValidationFailed.field(f"{field}.interval", "required", "schedule_type INTERVAL needs one")
        try:
            interval = parse_duration(spec.interval)
        except ValueError as error:
            raise ValidationFailed.field(f"{field}.interval", "invalid", str(error)) from None
        if interval < INTERVAL_MIN:
            raise ValidationFailed.field(f"{field}.interval", "invalid", "an interval is at least 1s")


def _next_reset(cron: str | None, interval: timedelta | None, moment: datetime) -> datetime | None:
    if interval is not None:
        return moment + interval
    if cron is None:
        return None
    # cronsim gives the fire times strictly after its start, in the start's zone (UTC here), to the minute.
    return next(CronSim(cron, moment.astimezone(UTC)))
