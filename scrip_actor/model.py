"""Typed records for every resource, request and result: the engine's boundary.

Requests are frozen and refuse unknown fields; limits that are static live in ``Meta`` annotations so decoding
enforces them. Records returned to callers carry amounts as decimal strings at the asset's scale and timestamps as
timezone-aware UTC datetimes (RFC 3339 on the wire).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "BUDGETS_PER_RULE_MAX",
    "Action",
    "AdjustResult",
    "Asset",
    "AssetCreate",
    "AssetUpdate",
    "Balance",
    "BalanceAdjust",
    "BalanceOperation",
    "BalanceOperationResult",
    "Bucket",
    "BudgetScheduleType",
    "BudgetSpec",
    "CounterAction",
    "CounterReset",
    "CreditAction",
    "DebitAction",
    "Event",
    "EventSubmit",
    "ForfeitAction",
    "HoldAction",
    "ItemRedemptionCreate",
    "JournalEntry",
    "Lot",
    "LotProcessed",
    "OperationBucket",
    "Page",
    "Participant",
    "ParticipantCreate",
    "ParticipantTier",
    "ParticipantUpdate",
    "Posting",
    "Program",
    "ProgramCreate",
    "ProgramUpdate",
    "Redemption",
    "RedemptionCreate",
    "ReferenceId",
    "ReleaseAction",
    "Reversal",
    "ReversalCreate",
    "Reward",
    "RewardCreate",
    "RewardUpdate",
    "Rule",
    "RuleBudget",
    "RuleCreate",
    "RuleEvaluation",
    "RuleUpdate",
    "RuleVersion",
    "SetAttributeAction",
    "SetTierAction",
    "StateChange",
    "StateOperation",
    "StateType",
    "TagAction",
    "Target",
    "TransferCreate",
    "TransferRecipient",
    "TransferResult",
    "UntagAction",
    "VoidHoldAction",
    "WalletBalance",
    "WalletOperationResult",
]

Name = Annotated[str, Meta(min_length=1, max_length=255)]
Description = Annotated[str, Meta(max_length=1000)]
OperationDescription = Annotated[str, Meta(min_length=1, max_length=500)]
Symbol = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]
Scale = Annotated[int, Meta(ge=0, le=18)]
DecimalString = Annotated[str, Meta(min_length=1, max_length=64)]
Tag = Annotated[str, Meta(min_length=1, max_length=255)]
Key = Annotated[str, Meta(min_length=1, max_length=255)]
AttributeValue = Annotated[str, Meta(max_length=4096)]
ExternalId = Annotated[str, Meta(min_length=1, max_length=255)]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=255)]
ReferenceId = Annotated[str, Meta(min_length=1, max_length=255)]
Expression = Annotated[str, Meta(min_length=1, max_length=4096)]

ProgramStatus = Literal["ACTIVE", "SUSPENDED", "ARCHIVED"]
UnknownParticipantPolicy = Literal["CREATE", "REJECT"]
InventoryMode = Literal["SIMPLE", "LOT"]
IssuancePolicy = Literal["UNLIMITED", "PREFUNDED"]
AssetStatus = Literal["ACTIVE", "ARCHIVED"]
ParticipantStatus = Literal["ACTIVE", "SUSPENDED", "CLOSED"]
RuleStatus = Literal["ACTIVE", "SUSPENDED", "ARCHIVED"]
# An admitted event is PENDING until processed. RECEIVED is the hosted name of an earlier state this server never
# answers (stores before schema 9 wrote it for a retried event; it reads back as PENDING); a filter takes it as PENDING.
EventStatus = Literal["RECEIVED", "PENDING", "PROCESSING", "COMPLETED", "FAILED"]
EvaluationStatus = Literal["MATCHED", "NOT_MATCHED", "SKIPPED", "STOPPED"]
Bucket = Literal["AVAILABLE", "HELD", "DEFERRED"]
EntityType = Literal["PARTICIPANT", "PROGRAM", "SYSTEM"]
LotStatus = Literal["AVAILABLE", "HELD", "DEFERRED", "CONSUMED", "EXPIRED"]
OperationBucket = Literal["AVAILABLE", "HELD"]  # the buckets an operator moves value in or out of

_request = {"frozen": True, "forbid_unknown_fields": True, "kw_only": True}


# --- programs -------------------------------------------------------------------------------------------------


class Program(Struct, kw_only=True):
    """A program: rules, linked assets, participants enrolled by their events."""

    id: str
    name: str
    description: str | None = None
    on_unknown_participant: UnknownParticipantPolicy = "CREATE"
    status: ProgramStatus = "ACTIVE"
    created_at: datetime
    updated_at: datetime


class ProgramCreate(Struct, **_request):
    """Create a program."""

    name: Name
    description: Description | None = None
    on_unknown_participant: UnknownParticipantPolicy = "CREATE"


class ProgramUpdate(Struct, **_request):
    """Change a program; omitted fields keep their value."""

    name: Name | None = None
    description: Description | None = None
    on_unknown_participant: UnknownParticipantPolicy | None = None
    status: ProgramStatus | None = None


# --- assets ---------------------------------------------------------------------------------------------------


class Asset(Struct, kw_only=True):
    """A unit of value. ``inventory_mode``, ``issuance_policy`` and ``scale`` never change."""

    id: str
    name: str
    symbol: str
    inventory_mode: InventoryMode
    issuance_policy: IssuancePolicy
    scale: int
    max_transaction_amount: str | None = None
    status: AssetStatus = "ACTIVE"
    program_ids: list[str] = []
    created_at: datetime
    updated_at: datetime


class AssetCreate(Struct, **_request):
    """Create an asset linked to ``program_id``."""

    program_id: str
    name: Name
    symbol: Symbol
    inventory_mode: InventoryMode
    issuance_policy: IssuancePolicy
    scale: Scale
    max_transaction_amount: DecimalString | None = None


class AssetUpdate(Struct, **_request):
    """Change an asset's mutable fields. ``clear_max_transaction_amount`` removes the cap."""

    name: Name | None = None
    status: AssetStatus | None = None
    max_transaction_amount: DecimalString | None = None
    clear_max_transaction_amount: bool = False


class WalletBalance(Struct, kw_only=True):
    """A program's wallet for one PREFUNDED asset."""

    asset_id: str
    available: str
    held: str
    deferred: str
    issuance_policy: IssuancePolicy


class WalletOperationResult(Struct, kw_only=True):
    """The result of funding or burning a program wallet."""

    available: str
    journal_entry_id: str | None
    message: str


# --- participants ---------------------------------------------------------------------------------------------


class Balance(Struct, kw_only=True):
    """One participant's balance of one asset, per bucket."""

    asset_id: str
    available: str
    held: str
    deferred: str


class ParticipantTier(Struct, kw_only=True):
    """A level a participant holds, as its resource shows it (``tiers: {"status": {"level": "gold", ...}}``)."""

    level: str
    rank: int
    program_id: str


class CounterReset(Struct, kw_only=True):
    """A counter's ``reset_after`` window: its length, and when its current window began (the last reset, or when
    the window was set)."""

    reset_after: str
    last_reset_at: datetime


class Participant(Struct, kw_only=True):
    """A participant and its state, as callers see it. ``counters`` are effective values (0 once a counter's
    reset window has passed); ``counter_resets`` names the counters that have a window (ours; not in the hosted
    participant resource, which shows it only on the counter endpoints)."""

    id: str
    external_id: str
    status: ParticipantStatus = "ACTIVE"
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    tags: list[str] = []
    counters: dict[str, str] = {}
    counter_resets: dict[str, CounterReset] = {}
    attributes: dict[str, str] = {}
    program_ids: list[str] = []
    balances: list[Balance] = []
    created_at: datetime
    updated_at: datetime
    tiers: dict[str, ParticipantTier] = {}  # schema 9: levels held (rank above 0), by tier key


class ParticipantCreate(Struct, **_request):
    """Create a participant, or update the one with this ``external_id`` (upsert)."""

    external_id: ExternalId
    program_id: str | None = None
    status: ParticipantStatus | None = None
    email: Annotated[str, Meta(max_length=255)] | None = None
    phone: Annotated[str, Meta(max_length=50)] | None = None
    first_name: Annotated[str, Meta(max_length=255)] | None = None
    last_name: Annotated[str, Meta(max_length=255)] | None = None
    display_name: Annotated[str, Meta(max_length=255)] | None = None
    tags: list[Tag] | None = None
    attributes: dict[Key, AttributeValue] | None = None


class ParticipantUpdate(Struct, **_request):
    """Change profile fields (``""`` clears one), merge ``attributes``, replace ``tags``. Status has its own call."""

    external_id: ExternalId | None = None
    email: Annotated[str, Meta(max_length=255)] | None = None
    phone: Annotated[str, Meta(max_length=50)] | None = None
    first_name: Annotated[str, Meta(max_length=255)] | None = None
    last_name: Annotated[str, Meta(max_length=255)] | None = None
    display_name: Annotated[str, Meta(max_length=255)] | None = None
    tags: list[Tag] | None = None
    attributes: dict[Key, AttributeValue] | None = None


class Lot(Struct, kw_only=True, gc=False):
    """One credit of a LOT asset: spent oldest first, expiring and maturing on its own."""

    id: str
    participant_id: str
    asset_id: str
    program_id: str
    number: int  # per participant and asset, strictly increasing: the FIFO tie-break
    amount_minor: int
    remaining_minor: int
    amount: str
    remaining: str
    status: LotStatus
    created_at: datetime
    expires_at: datetime | None = None
    matures_at: datetime | None = None
    event_id: str | None = None
    # Holds (docs/money-out.md): the reference a hold or a provisional credit stamped on the lot; provisional
    # lots (a CREDIT straight to HELD) go back to their source on a void-hold; a lot split off another by a
    # partial hold or release names the lot it came from (and keeps its dates, so FIFO and expiry are unchanged).
    reference_id: str | None = None
    provisional: bool = False
    parent_lot_id: str | None = None


# --- money out: adjustments and holds ---------------------------------------------------------------------------


class BalanceAdjust(Struct, **_request):
    """``POST /v1/participants/{id}/balances/adjust``: an operator's correction, CREDIT or DEBIT, in one bucket."""

    program_id: str
    asset_id: str
    type: Literal["CREDIT", "DEBIT"]
    amount: DecimalString
    description: OperationDescription
    bucket: OperationBucket = "AVAILABLE"
    allow_negative: bool = False  # DEBIT from AVAILABLE only: the rest becomes an overdraft
    idempotency_key: IdempotencyKey | None = None  # an extension: the hosted API takes none here


class AdjustResult(Struct, kw_only=True):
    """What an adjustment did, with the participant's balance of the asset after it."""

    amount: str
    asset_id: str
    balance: Balance
    bucket: OperationBucket
    journal_entry_id: str
    message: str
    program_id: str
    type: Literal["CREDIT", "DEBIT"]


class BalanceOperation(Struct, **_request):
    """The body of hold, release, forfeit and void-hold (``…/balances/{operation}``).

    ``amount`` omitted means everything the selection holds. For LOT assets the selection can be narrowed by
    ``lot_ids``, ``earned_from``/``earned_to`` (the lots' created_at) and ``reference_id``; void-hold takes only
    ``reference_id``. ``bucket`` is forfeit's (required there) and nobody else's.
    """

    program_id: str
    asset_id: str
    description: OperationDescription
    amount: DecimalString | None = None
    reference_id: ReferenceId | None = None
    lot_ids: Annotated[list[str], Meta(min_length=1, max_length=100)] | None = None
    earned_from: datetime | None = None
    earned_to: datetime | None = None
    bucket: OperationBucket | None = None
    idempotency_key: IdempotencyKey | None = None


class LotProcessed(Struct, kw_only=True):
    """One lot an operation took value from, and how much."""

    id: str
    amount: str


class BalanceOperationResult(Struct, kw_only=True):
    """What a hold, release, forfeit or void-hold did."""

    amount_processed: str
    asset_id: str
    balance: Balance
    journal_entry_id: str
    lots_processed: list[LotProcessed] | None  # LOT assets only
    message: str
    operation: Literal["HOLD", "RELEASE", "FORFEIT", "VOID_HOLD"]
    program_id: str
    reference_id: str | None


# --- the reward catalog -----------------------------------------------------------------------------------------

RewardStatus = Literal["ACTIVE", "INACTIVE", "ARCHIVED"]
RedemptionType = Literal["UNIT_BASED", "AMOUNT_BASED"]
Category = Annotated[str, Meta(min_length=1, max_length=100)]
RewardLimit = Annotated[int, Meta(ge=1, le=10**12)]
RewardMetadata = Annotated[
    dict[Annotated[str, Meta(max_length=100)], Annotated[str, Meta(max_length=1000)]], Meta(max_length=50)
]


class RewardCreate(Struct, **_request):
    """``POST /v1/programs/{id}/rewards``: something a participant can redeem from the catalog.

    UNIT_BASED rewards cost ``unit_cost`` per unit (a redemption asks for a ``quantity``); AMOUNT_BASED ones let
    the participant choose an ``amount`` of at least ``unit_cost`` (a gift card's value). ``max_total`` bounds the
    units (UNIT_BASED) or redemptions (AMOUNT_BASED) of everyone together, ``max_per_participant`` of each one.
    """

    name: Name
    redemption_type: RedemptionType
    asset_id: str
    unit_cost: DecimalString
    status: RewardStatus
    description: Description | None = None
    category: Category | None = None
    max_total: RewardLimit | None = None
    max_per_participant: RewardLimit | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    metadata: RewardMetadata | None = None


class RewardUpdate(Struct, **_request):
    """``PATCH``: any field but ``redemption_type`` and ``asset_id``; ARCHIVED is for good."""

    name: Name | None = None
    unit_cost: DecimalString | None = None
    status: RewardStatus | None = None
    description: Description | None = None
    category: Category | None = None
    max_total: RewardLimit | None = None
    max_per_participant: RewardLimit | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    metadata: RewardMetadata | None = None


class Reward(Struct, kw_only=True):
    """A catalog item, with how much of it has been redeemed (units, or redemptions for AMOUNT_BASED)."""

    id: str
    program_id: str
    name: str
    redemption_type: RedemptionType
    asset_id: str
    unit_cost: str
    status: RewardStatus
    description: str | None = None
    category: str | None = None
    max_total: int | None = None
    max_per_participant: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    metadata: dict[str, str] | None = None
    redeemed_count: int = 0
    created_at: datetime
    updated_at: datetime


class ItemRedemptionCreate(Struct, **_request):
    """``POST /v1/participants/{id}/redemptions/items``: redeem a catalog reward (``quantity`` for UNIT_BASED,
    default 1; ``amount`` for AMOUNT_BASED, required)."""

    program_id: str
    reward_id: str
    quantity: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    amount: DecimalString | None = None
    description: OperationDescription | None = None
    idempotency_key: IdempotencyKey | None = None


# --- money out: redemptions and their reversals ---------------------------------------------------------------


class RedemptionCreate(Struct, **_request):
    """``POST /v1/participants/{id}/redemptions``: spend ``amount`` of AVAILABLE value (lots FIFO)."""

    program_id: str
    asset_id: str
    amount: DecimalString
    description: OperationDescription
    idempotency_key: IdempotencyKey | None = None


class Redemption(Struct, kw_only=True):
    """A spend of AVAILABLE value to SYSTEM_REDEMPTION; ``reversed_amount`` grows with each reversal."""

    id: str
    participant_id: str
    program_id: str
    asset_id: str
    amount: str
    reversed_amount: str
    status: Literal["COMPLETED", "PARTIALLY_REVERSED", "FULLY_REVERSED"]
    description: str
    journal_entry_id: str
    lots_processed: list[LotProcessed] | None  # LOT assets: the lots it spent, oldest first
    reward_catalog_item_id: str | None = None  # catalog redemptions (not built yet)
    quantity: int | None = None
    created_at: datetime


class ReversalCreate(Struct, **_request):
    """``POST /v1/redemptions/{id}/reverse``: all that is left to reverse, or ``amount`` of it."""

    reason: OperationDescription
    amount: DecimalString | None = None
    quantity: Annotated[int, Meta(ge=1, le=10_000)] | None = None  # a UNIT_BASED reward's units (not ``amount``)
    idempotency_key: IdempotencyKey | None = None


class Reversal(Struct, kw_only=True):
    """Value given back from a redemption: its lots restored newest first (LIFO) with their own expiry."""

    id: str
    redemption_id: str
    amount: str
    reason: str
    journal_entry_id: str
    lots_restored: list[LotProcessed] | None  # LOT assets: the lots it restored, newest first
    created_at: datetime


# --- money out: transfers --------------------------------------------------------------------------------------


class TransferRecipient(Struct, **_request):
    """One recipient of a transfer: exactly one of ``external_id`` or ``participant_id`` (groups: not yet)."""

    amount: DecimalString
    external_id: ExternalId | None = None
    participant_id: str | None = None
    group_id: str | None = None


class TransferCreate(Struct, **_request):
    """``POST /v1/transfers``: one source, 1-100 recipients, one journal entry (all of them or none)."""

    program_id: str
    asset_id: str
    recipients: Annotated[list[TransferRecipient], Meta(min_length=1, max_length=100)]
    description: OperationDescription
    source_external_id: ExternalId | None = None
    source_participant_id: str | None = None
    source_group_id: str | None = None
    idempotency_key: IdempotencyKey | None = None


class TransferResult(Struct, kw_only=True):
    """What a transfer moved, in its one TRANSFER entry."""

    asset_id: str
    journal_entry_id: str
    recipient_count: int
    source_id: str
    total_amount: str


# --- rules ----------------------------------------------------------------------------------------------------


class Target(Struct, **_request):
    """Whom an action applies to; by default the event's participant.

    ``external_id`` is a CEL expression (e.g. ``event.referrer_id``) evaluated with the event's variables.
    """

    type: Literal["PARTICIPANT"] = "PARTICIPANT"
    external_id: Expression | None = None


class CreditAction(Struct, tag="CREDIT", tag_field="type", **_request):
    """Add value. ``amount`` is a decimal string or a CEL expression; expiry/vesting are durations or timestamps.

    ``reference_id`` is a CEL expression giving text (e.g. ``event.authorization_id``). With ``bucket: HELD``
    (LOT assets) the credit is *provisional*: its lots are HELD and stamped with the reference, an
    authorization that VOID_HOLD can return. A credit to AVAILABLE with a reference that has provisional lots
    *settles* them: one SETTLE entry replaces the held value by the settled amount (docs/money-out.md).
    """

    asset_id: str
    amount: Expression
    description: Annotated[str, Meta(max_length=500)] | None = None
    expires_at: Annotated[str, Meta(max_length=64)] | None = None
    matures_at: Annotated[str, Meta(max_length=64)] | None = None
    bucket: OperationBucket = "AVAILABLE"
    reference_id: Expression | None = None
    target: Target | None = None


class DebitAction(Struct, tag="DEBIT", tag_field="type", **_request):
    """Remove available value; fails when too little is available unless ``allow_negative``."""

    asset_id: str
    amount: Expression
    allow_negative: bool = False
    description: Annotated[str, Meta(max_length=500)] | None = None
    target: Target | None = None


class TagAction(Struct, tag="TAG", tag_field="type", **_request):
    """Add a tag (lowercased)."""

    tag: Tag
    target: Target | None = None


class UntagAction(Struct, tag="UNTAG", tag_field="type", **_request):
    """Remove a tag; absent tags are ignored."""

    tag: Tag
    target: Target | None = None


class CounterAction(Struct, tag="COUNTER", tag_field="type", **_request):
    """Add ``value`` (a decimal string or a CEL expression) to a counter, creating it at 0. ``reset_after`` (a
    duration such as ``"720h"``) gives the counter a reset window, starting at the event's time if it has none."""

    key: Key
    value: Expression
    reset_after: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    target: Target | None = None


class SetAttributeAction(Struct, tag="SET_ATTRIBUTE", tag_field="type", **_request):
    """Set a string attribute: ``value`` is literal text, ``value_expression`` a CEL expression (one of them)."""

    key: Key
    value: AttributeValue | None = None
    value_expression: Expression | None = None
    target: Target | None = None


class HoldAction(Struct, tag="HOLD", tag_field="type", **_request):
    """AVAILABLE → HELD: ``amount`` (omitted: everything available), the lots stamped with ``reference_id``."""

    asset_id: str
    amount: Expression | None = None
    reference_id: Expression | None = None
    description: Annotated[str, Meta(max_length=500)] | None = None
    target: Target | None = None


class ReleaseAction(Struct, tag="RELEASE", tag_field="type", **_request):
    """HELD → AVAILABLE: ``amount`` (omitted: all held), only lots stamped with ``reference_id`` if given."""

    asset_id: str
    amount: Expression | None = None
    reference_id: Expression | None = None
    description: Annotated[str, Meta(max_length=500)] | None = None
    target: Target | None = None


class ForfeitAction(Struct, tag="FORFEIT", tag_field="type", **_request):
    """``bucket`` → SYSTEM_BREAKAGE: ``amount`` (omitted: all of the bucket), narrowed by ``reference_id``."""

    asset_id: str
    bucket: OperationBucket
    amount: Expression | None = None
    reference_id: Expression | None = None
    description: Annotated[str, Meta(max_length=500)] | None = None
    target: Target | None = None


class SetTierAction(Struct, tag="SET_TIER", tag_field="type", **_request):
    """Set the participant's level of a program tier (``tier`` its key, ``level`` a level key). Blocks automatic
    qualification of that tier for the rest of the event; an archived tier's SET_TIER is skipped (docs/tiers.md)."""

    tier: Annotated[str, Meta(min_length=1, max_length=64)]
    level: Annotated[str, Meta(min_length=1, max_length=100)]
    target: Target | None = None


class VoidHoldAction(Struct, tag="VOID_HOLD", tag_field="type", **_request):
    """Return the provisional HELD lots of ``reference_id`` to their source (LOT assets)."""

    asset_id: str
    reference_id: Expression
    description: Annotated[str, Meta(max_length=500)] | None = None
    target: Target | None = None


class ScheduleEventAction(Struct, tag="SCHEDULE_EVENT", tag_field="type", **_request):
    """A SYSTEM follow-up event for this participant (or ``target``) after ``delay`` from the event's time, stored
    as a one_time automation with ``source: rule_action`` (docs/automations.md)."""

    event_name: Annotated[str, Meta(min_length=1, max_length=255)]
    delay: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    payload: dict[str, Any] = {}
    target: Target | None = None


class BroadcastAction(Struct, tag="BROADCAST", tag_field="type", **_request):
    """A SYSTEM event to every participant of the program: an immediate automation, ``source: rule_action``."""

    event_name: Annotated[str, Meta(min_length=1, max_length=255)]
    payload: dict[str, Any] = {}
    target: Target | None = None


Action = (
    CreditAction
    | DebitAction
    | TagAction
    | UntagAction
    | CounterAction
    | SetAttributeAction
    | HoldAction
    | ReleaseAction
    | ForfeitAction
    | VoidHoldAction
    | SetTierAction
    | ScheduleEventAction
    | BroadcastAction
)


# --- rule budgets (docs/budgets.md) ---------------------------------------------------------------------------

BudgetScheduleType = Literal["CRON", "INTERVAL"]
BUDGETS_PER_RULE_MAX = 16  # one per asset; a rule rarely credits more than two or three


class BudgetSpec(Struct, **_request):
    """A rule's cap on what it issues of one asset per period: lifetime (no schedule), CRON or INTERVAL."""

    asset_id: str
    limit: DecimalString
    schedule_type: BudgetScheduleType | None = None
    cron_expression: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    interval: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class RuleBudget(Struct, kw_only=True):
    """A budget as a rule carries it: the definition, and (on reads) the live ``consumed`` and ``next_reset_at``.

    The stored rule and its history snapshots hold the definition only (``consumed`` None): the live state is
    shared by every participant and kept in its own record (``rule_budgets``), written with the entries that
    consume it.
    """

    asset_id: str
    limit: str
    schedule_type: BudgetScheduleType | None = None
    cron_expression: str | None = None
    interval: str | None = None
    consumed: str | None = None
    next_reset_at: datetime | None = None


class Rule(Struct, kw_only=True):
    """A CEL condition and the actions that run when it holds."""

    id: str
    program_id: str
    name: str
    description: str | None = None
    condition: str
    actions: list[Action]
    order: int
    stop_after_match: bool = False
    active_from: datetime | None = None
    active_to: datetime | None = None
    status: RuleStatus = "ACTIVE"
    version: int = 1
    created_at: datetime
    updated_at: datetime
    budgets: list[RuleBudget] = []


class RuleCreate(Struct, **_request):
    """Create a rule. ``order`` defaults to the program's highest order + 10."""

    program_id: str
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


class RuleUpdate(Struct, **_request):
    """Change a rule; omitted fields keep their value. ``clear_active_from``/``clear_active_to`` remove a bound."""

    name: Name | None = None
    description: Description | None = None
    condition: Expression | None = None
    actions: Annotated[list[Action], Meta(min_length=1)] | None = None
    order: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None
    stop_after_match: bool | None = None
    active_from: datetime | None = None
    active_to: datetime | None = None
    clear_active_from: bool = False
    clear_active_to: bool = False
    status: RuleStatus | None = None
    budgets: Annotated[list[BudgetSpec], Meta(max_length=BUDGETS_PER_RULE_MAX)] | None = None  # [] removes all


class RuleVersion(Struct, kw_only=True):
    """One entry of a rule's history: the full snapshot after a change."""

    rule_id: str
    version: int
    change_type: Literal["created", "updated", "archived", "suspended", "activated"]
    changes: list[str]
    changed_at: datetime
    snapshot: Rule
    # The version applies to events from this inbox sequence on (those admitted after the change); recorded so a
    # replay of the inbox can apply each change at the same point (DESIGN.md section 6).
    applies_from_sequence: int = 0


# --- events ---------------------------------------------------------------------------------------------------


class EventSubmit(Struct, **_request):
    """An event to process, for exactly one of ``external_id`` or ``participant_id``.

    ``event_timestamp`` defaults to the time of receipt. ``participant_id`` must name an existing participant;
    ``external_id`` may be new (the program's ``on_unknown_participant`` decides).
    """

    program_id: str
    idempotency_key: IdempotencyKey
    event_data: dict[str, Any]
    external_id: ExternalId | None = None
    participant_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    event_timestamp: datetime | None = None


class RuleEvaluation(Struct, kw_only=True, frozen=True, gc=False):
    """How one rule fared for one event (immutable: the common outcomes are shared, not rebuilt per event)."""

    rule_id: str
    rule_name: str
    rule_version: int
    status: EvaluationStatus
    reason: str | None = None
    stopped_by_rule_id: str | None = None


class Event(Struct, kw_only=True, gc=False):
    """An event and, once processed, its outcome."""

    id: str
    sequence: int
    program_id: str
    external_id: str
    idempotency_key: str
    event_timestamp: datetime
    event_data: dict[str, Any]
    status: EventStatus = "PENDING"
    participant_id: str | None = None
    error_message: str | None = None
    rule_evaluations: list[RuleEvaluation] = []
    journal_entry_ids: list[str] = []
    created_at: datetime
    processed_at: datetime | None = None
    attempts: int = 0  # processing attempts: 1 after the first, +1 per retry of a FAILED event
    payload_hash: str = ""
    event_type: Literal["EXTERNAL", "SYSTEM"] = "EXTERNAL"  # SYSTEM: made by an automation (docs/automations.md)


# --- ledger ---------------------------------------------------------------------------------------------------


class Posting(Struct, kw_only=True, gc=False):
    """One leg of a journal entry: a signed amount on one account bucket."""

    entity_type: EntityType
    entity_id: str  # participant id, program id, or SYSTEM_ISSUANCE / SYSTEM_BREAKAGE / SYSTEM_REDEMPTION
    asset_id: str
    bucket: Bucket
    amount_minor: int
    amount: str


class JournalEntry(Struct, kw_only=True, gc=False):
    """An immutable, hash-chained record of one balance change; its postings sum to zero per asset."""

    id: str
    sequence: int
    action_type: str
    program_id: str | None
    event_id: str | None = None
    rule_id: str | None = None
    reference_id: str | None = None
    description: str | None = None
    created_at: datetime
    postings: list[Posting]
    previous_hash: str
    entry_hash: str = ""


StateType = Literal["tag", "counter", "attribute", "tier"]
StateOperation = Literal["set", "delete", "add", "remove", "auto_reset"]


class StateChange(Struct, kw_only=True):
    """One change of a participant's tags, counters, attributes or tiers, with what caused it (the hosted
    state-history entry). ``event_id`` and ``rule_id`` are set when a rule made the change, ``source`` says which
    kind of cause it was: ``rule`` (an event's rule), ``api`` (an operator's call) or ``lifecycle`` (the engine's
    own sweep, e.g. a tier downgrade at a period end). Values are text (a counter's decimal, a tier's level key);
    None where there was none (a new key's old value, a deleted key's new one)."""

    id: str
    sequence: int
    participant_id: str
    state_type: StateType
    key: str
    operation: StateOperation
    old_value: str | None = None
    new_value: str | None = None
    source: Literal["rule", "api", "lifecycle"]
    event_id: str | None = None
    rule_id: str | None = None
    program_id: str | None = None
    changed_by_api_key_id: str | None = None  # always null here: our API keys carry no id (docs/http.md)
    event_timestamp: datetime | None = None  # the causing event's time (hosted event_from/event_to filter it)
    changed_at: datetime


class Page(Struct, kw_only=True):
    """One page of a list: ``next_cursor`` is None on the last page."""

    data: list[Any]
    has_more: bool
    next_cursor: str | None


def to_builtins(value: Any) -> Any:
    """Plain JSON-ready data from any record (handy for printing and tests)."""
    return msgspec.to_builtins(value)
