"""Wire types that exist only at the HTTP edge: small request bodies, list envelopes, query strings, results.

Resources themselves (Program, Asset, Rule, Event, ...) and the engine's request Structs are used as they are,
from :mod:`scrip_actor.model`, so the handlers, the engine and ``/openapi.json`` share one definition. Requests
here follow the same convention: frozen, unknown fields refused, keyword-only.

PATCH bodies that must tell "absent" from ``null`` use :data:`msgspec.UNSET`: absent means "keep", ``null`` means
"clear" (``max_transaction_amount``, ``active_from``, ``active_to``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from scrip_actor.model import (
    BUDGETS_PER_RULE_MAX,
    Action,
    AssetStatus,
    AttributeValue,
    Bucket,
    BudgetSpec,
    DecimalString,
    Description,
    EventStatus,
    Expression,
    ExternalId,
    Key,
    Name,
    OperationDescription,
    ParticipantStatus,
    ProgramStatus,
    RuleStatus,
    Tag,
)

T = TypeVar("T")
_request: dict[str, Any] = {"frozen": True, "forbid_unknown_fields": True, "kw_only": True}
PageLimit = Annotated[int, Meta(ge=1, le=200, description="page size, 1-200")]

# --- envelopes ------------------------------------------------------------------------------------------------


# Timestamps from clients must say their time zone: comparing a naive one with stored UTC times is meaningless.
AwareDatetime = Annotated[datetime, Meta(tz=True)]


class Pagination(Struct, kw_only=True):
    """Where the next page starts: pass ``next_cursor`` as ``cursor``; None on the last page."""

    has_more: bool
    next_cursor: str | None


class ListOf(Struct, Generic[T], kw_only=True):
    """A page of a list: ``{data, pagination: {has_more, next_cursor}}``."""

    data: list[T]
    pagination: Pagination


class Health(Struct, kw_only=True):
    """``GET /healthz``: the process is up and the engine is open."""

    status: Literal["ok"] = "ok"


# --- query strings --------------------------------------------------------------------------------------------


class PageQuery(Struct, **_request):
    """``limit`` (default 50, max 200) and the opaque ``cursor`` from the previous page."""

    limit: PageLimit = 50
    cursor: str | None = None


SortDirection = Literal["asc", "desc"]
Search = Annotated[str, Meta(min_length=1, max_length=255, description="a case-insensitive part of the text")]


class ProgramQuery(PageQuery, **_request):
    """Filters of ``GET /v1/programs``: ``search`` in the name; newest first unless ``sort_by``/``sort_dir``."""

    include_archived: bool = False
    status: ProgramStatus | None = None
    search: Search | None = None
    sort_by: Literal["created_at", "name"] = "created_at"
    sort_dir: SortDirection | None = None  # default: desc for created_at, asc for name


class AssetQuery(PageQuery, **_request):
    """Filters of ``GET /v1/assets``: ``search`` in the symbol or name."""

    program_id: str | None = None
    status: AssetStatus | None = None
    search: Search | None = None


class ParticipantQuery(PageQuery, **_request):
    """Filters of ``GET /v1/participants``, newest first; ``external_id`` is an exact match (1-255 characters, as
    stored), ``search`` a part of the external id, email, phone or a name, ``from``/``to`` bound ``created_at``.

    ``sort_by`` takes only ``created_at``: the hosted ``external_id`` and ``status`` orders would need a scan of
    every participant (no index holds them), so they are refused with a 400 (docs/compatibility.md)."""

    external_id: ExternalId | None = None
    program_id: str | None = None
    status: ParticipantStatus | None = None
    search: Search | None = None
    created_from: AwareDatetime | None = field(default=None, name="from")
    created_to: AwareDatetime | None = field(default=None, name="to")
    sort_by: Literal["created_at"] = "created_at"
    sort_dir: SortDirection = "desc"


class BalanceQuery(PageQuery, **_request):
    """``asset_id`` narrows balances to one asset; pages are in asset id order."""

    asset_id: str | None = None


class LotQuery(PageQuery, **_request):
    """``asset_id`` (a LOT asset) is required."""

    asset_id: str
    status: Literal["AVAILABLE", "HELD", "DEFERRED", "CONSUMED", "EXPIRED"] | None = None
    program_id: str | None = None
    reference_id: str | None = None
    expires_before: AwareDatetime | None = None
    expires_after: AwareDatetime | None = None


class RuleQuery(PageQuery, **_request):
    """Filters of ``GET /v1/rules`` (ordered by ``order`` unless ``sort_by``); ``search`` in the name or
    description."""

    program_id: str | None = None
    status: RuleStatus | None = None
    include_archived: bool = False
    search: Search | None = None
    sort_by: Literal["order", "created_at", "name"] = "order"
    sort_dir: SortDirection | None = None  # default: asc for order and name, desc for created_at


class ResetBudgetQuery(Struct, **_request):
    """``POST /v1/rules/{id}/reset-budget?asset_id=``: which of the rule's budgets to reset."""

    asset_id: Annotated[str, Meta(min_length=1, max_length=64)]


class HistoryQuery(Struct, **_request):
    """Rule history: default 20, max 100 per page; ``change_type`` and ``from``/``to`` (``changed_at``) filter."""

    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    cursor: str | None = None
    change_type: Literal["created", "updated", "archived", "suspended", "activated"] | None = None
    changed_from: AwareDatetime | None = field(default=None, name="from")
    changed_to: AwareDatetime | None = field(default=None, name="to")


class ParticipantEventQuery(PageQuery, **_request):
    """Filters of ``GET /v1/participants/{id}/events`` (newest first): ``from``/``to`` bound ``created_at``,
    ``event_from``/``event_to`` the event time (from inclusive, to exclusive)."""

    program_id: str | None = None
    status: EventStatus | None = None
    created_from: AwareDatetime | None = field(default=None, name="from")
    created_to: AwareDatetime | None = field(default=None, name="to")
    event_from: AwareDatetime | None = None
    event_to: AwareDatetime | None = None


class EventQuery(ParticipantEventQuery, **_request):
    """Filters of ``GET /v1/events``: those of a participant's events, plus the participant, the type, and
    ``rule_id`` (events where that rule matched). ``sort_by`` takes ``created_at`` only: the hosted
    ``event_timestamp`` and ``status`` orders have no index here and are refused with a 400."""

    external_id: str | None = None
    participant_id: str | None = None
    rule_id: str | None = None
    event_type: Literal["EXTERNAL", "SYSTEM"] | None = None
    sort_by: Literal["created_at"] = "created_at"
    sort_dir: SortDirection = "desc"


class EventGetQuery(Struct, **_request):
    """``GET /v1/events/{id}``: evaluations skipped on an error or timeout are listed only with
    ``include_skipped=true``."""

    include_skipped: bool = False


class ActivityQuery(PageQuery, **_request):
    """Filters of ``GET /v1/participants/{id}/activity/history`` (oldest first): ``from``/``to`` bound the
    entry's ``created_at``, ``event_from``/``event_to`` the event time (an operator's operation: its
    ``created_at``)."""

    asset_id: str | None = None
    bucket: Bucket | None = None
    created_from: AwareDatetime | None = field(default=None, name="from")
    created_to: AwareDatetime | None = field(default=None, name="to")
    event_from: AwareDatetime | None = None
    event_to: AwareDatetime | None = None


class JournalQuery(PageQuery, **_request):
    """Filters of ``GET /v1/journal-entries``; all given filters apply together."""

    program_id: str | None = None
    event_id: str | None = None
    rule_id: str | None = None
    participant_id: str | None = None
    external_id: ExternalId | None = None
    group_id: str | None = None
    asset_id: str | None = None
    bucket: Bucket | None = None
    reference_id: str | None = None
    action_type: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    min_amount: DecimalString | None = None
    max_amount: DecimalString | None = None
    created_from: AwareDatetime | None = field(default=None, name="from")
    created_to: AwareDatetime | None = field(default=None, name="to")


# --- request bodies -------------------------------------------------------------------------------------------


class WalletOperation(Struct, **_request):
    """Fund or burn a program wallet: a positive decimal ``amount`` at the asset's scale."""

    amount: DecimalString
    description: OperationDescription | None = None


class AssetLink(Struct, **_request):
    """Link an existing asset to a program."""

    asset_id: str


class AssetPatch(Struct, **_request):
    """Change an asset: ``max_transaction_amount: null`` removes the cap; an absent field keeps its value."""

    name: Name | UnsetType = UNSET
    status: AssetStatus | UnsetType = UNSET
    max_transaction_amount: DecimalString | None | UnsetType = UNSET


class StatusChange(Struct, **_request):
    """``PATCH /v1/participants/{id}/status``."""

    status: ParticipantStatus


class TagsReplace(Struct, **_request):
    """Replace every tag."""

    tags: list[Tag]


class AttributesMerge(Struct, **_request):
    """Merge attributes (string keys to string values)."""

    attributes: dict[Key, AttributeValue]


class AttributeSet(Struct, **_request):
    """Set one attribute."""

    value: Annotated[str, Meta(min_length=1, max_length=4096)]


class CounterSet(Struct, **_request):
    """Set one counter to an exact decimal value. ``reset_after``: a duration (``"720h"``) gives the counter a
    reset window starting now; ``""`` removes its window; omitted leaves the window as it is."""

    value: DecimalString
    reset_after: Annotated[str, Meta(max_length=64)] | None = None


class RulePatch(Struct, **_request):
    """Change a rule; absent fields keep their value, ``active_from``/``active_to: null`` remove a bound."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    condition: Expression | UnsetType = UNSET
    actions: Annotated[list[Action], Meta(min_length=1)] | UnsetType = UNSET
    order: Annotated[int, Meta(ge=1, le=2**31 - 1)] | UnsetType = UNSET
    stop_after_match: bool | UnsetType = UNSET
    active_from: AwareDatetime | None | UnsetType = UNSET
    active_to: AwareDatetime | None | UnsetType = UNSET
    status: RuleStatus | UnsetType = UNSET
    budgets: Annotated[list[BudgetSpec], Meta(max_length=BUDGETS_PER_RULE_MAX)] | UnsetType = UNSET  # [] removes


class ConditionCheck(Struct, **_request):
    """``POST /v1/rules/validate``."""

    condition: Expression


class MockState(Struct, **_request):
    """The participant state a simulation pretends the participant has."""

    tags: list[Tag] = []
    counters: dict[Key, float | int | str] = {}
    attributes: dict[Key, AttributeValue] = {}


class SimulateRequest(Struct, **_request):
    """``POST /v1/rules/{id}/simulate``: an event's data and, optionally, mock participant state."""

    event: dict[str, Any]
    participant_state: MockState = MockState()
    event_timestamp: AwareDatetime | None = None


class EventBatch(Struct, **_request):
    """``POST /v1/events/batch``: each item is decoded and judged on its own."""

    events: list[msgspec.Raw]


# --- results --------------------------------------------------------------------------------------------------


class EventAccepted(Struct, kw_only=True):
    """The 202 answer to an accepted event (also for a replay of the same key and payload)."""

    id: str
    program_id: str
    external_id: str
    participant_id: str | None
    idempotency_key: str
    event_timestamp: datetime
    status: EventStatus


class EventRetried(Struct, kw_only=True):
    """The 202 answer to ``POST /v1/events/{id}/retry``: the FAILED event is queued again."""

    event_id: str
    message: str
    previous_status: Literal["FAILED"]
    previous_error: str | None
    status: EventStatus


class ItemError(Struct, kw_only=True):
    """Why one batch item was not accepted."""

    code: str
    message: str
    details: dict[str, Any] = {}


class BatchItem(Struct, kw_only=True):
    """One batch item's outcome, at its input ``index``."""

    index: int
    status: Literal["accepted", "error"]
    error: ItemError | None = None
    event: EventAccepted | None = None


class BatchResult(Struct, kw_only=True):
    """``POST /v1/events/batch`` answer, results in input order."""

    total: int
    success_count: int
    error_count: int
    results: list[BatchItem]


class TagItem(Struct, kw_only=True):
    """One tag."""

    tag: str


class TagList(Struct, kw_only=True):
    """All tags, as ``{tags}``."""

    tags: list[str]


class AttributeItem(Struct, kw_only=True):
    """One attribute."""

    key: str
    value: str


class AttributeMap(Struct, kw_only=True):
    """All attributes after a merge."""

    attributes: dict[str, str]


class CounterItem(Struct, kw_only=True, omit_defaults=True):
    """One counter: its effective value as a decimal string (0 once its reset window has passed) and, when it has
    a window, its length and when the current window began."""

    key: str
    value: str
    reset_after: str | None = None
    last_reset_at: datetime | None = None


class DataOf(Struct, Generic[T], kw_only=True):
    """A small, unpaginated list: ``{data}``."""

    data: list[T]


class ConditionResult(Struct, kw_only=True):
    """``POST /v1/rules/validate`` answer: syntax only (``note`` says so, as the hosted API does)."""

    valid: bool
    message: str
    note: str
    details: dict[str, Any] = {}
