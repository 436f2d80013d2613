"""The asynchronous client: :class:`AsyncScripClient`, one coroutine method per server route.

This file is the source of ``_sync_client.py``: ``python -m scrip_actor.client._unasync`` rewrites it without
``async``/``await`` (as httpcore does), and a test fails when the two disagree. Edit this file, never the other.

Route methods take path parameters positionally, then the request body: the server's own msgspec Struct
(``ProgramCreate``, ``RuleCreate``...) or, for the small bodies, keyword arguments. List methods take the route's
query parameters as keywords (``from_`` for ``from``, ``to_`` for ``to``: a trailing underscore is dropped) and
answer one page; ``iter_*`` methods follow ``pagination.next_cursor`` through every page. Answers are the server's
own Structs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from types import TracebackType
from typing import Any

import anyio
import httpx

from scrip_actor.automations import Automation, AutomationCreate, AutomationUpdate, Subscription
from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.client._errors import ApiError
from scrip_actor.client._transport import Attempts, ClientSettings, QueryValue, RetryPolicy, decimal_string, decode
from scrip_actor.client._transport import prepare as _prepare
from scrip_actor.http.hosted import ActivityItem, EventRecord, JournalEntryRecord, ParticipantItem, RuleVersionRecord
from scrip_actor.http.schemas import (
    AssetPatch,
    AttributeItem,
    AttributeMap,
    BatchResult,
    ConditionResult,
    CounterItem,
    DataOf,
    EventAccepted,
    EventRetried,
    Health,
    ListOf,
    MockState,
    RulePatch,
    TagItem,
    TagList,
)
from scrip_actor.http.simulate import Simulation
from scrip_actor.model import (
    AdjustResult,
    Asset,
    AssetCreate,
    Balance,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    EventSubmit,
    ItemRedemptionCreate,
    Lot,
    Participant,
    ParticipantCreate,
    ParticipantUpdate,
    Program,
    ProgramCreate,
    ProgramUpdate,
    Redemption,
    RedemptionCreate,
    Reversal,
    ReversalCreate,
    Reward,
    RewardCreate,
    RewardUpdate,
    Rule,
    RuleBudget,
    RuleCreate,
    StateChange,
    TransferCreate,
    TransferResult,
    WalletBalance,
    WalletOperationResult,
)
from scrip_actor.report_model import ExpirationSchedule, LedgerSummary, ProgramActivity
from scrip_actor.tiers import TierCreate, TierDefinition, TierState, TierStateSet, TierUpdate
from scrip_actor.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

__all__ = ["AsyncScripClient"]

_FINISHED = frozenset({"COMPLETED", "FAILED"})


class _AsyncTransport:
    """Sending one logical call: the connection pool, authentication, retries, decoding and errors."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """A client of the server at ``base_url``; open until :meth:`aclose` (or the end of its ``async with``).

        Args:
            base_url: the server, e.g. ``http://127.0.0.1:8080``.
            api_key: an API key of the server (sent as ``Authorization: Bearer``).
            timeout_s: the longest wait for each read, write or pooled connection of a request.
            connect_timeout_s: the longest wait to open a connection.
            retry: attempts, backoff and total time of each call (:class:`RetryPolicy`).
            transport: an ``httpx`` transport to send through (a proxy's, a test's); default: TCP.
        """
        self.settings = ClientSettings(
            base_url=base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, retry=retry or RetryPolicy()
        )
        self._http = httpx.AsyncClient(transport=transport, **self.settings.httpx_options(api_key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings.base_url!r})"  # never the key

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(
        self, name: str, path: dict[str, str], body: Any = None, filters: dict[str, QueryValue] | None = None
    ) -> Any:
        """One logical call of route ``name``: sent, retried as the policy and the route allow, decoded."""
        prepared = _prepare(name, path, body, filters)
        attempts = Attempts(prepared, self.settings.retry)
        headers = {"Content-Type": "application/json"} if prepared.content is not None else {}
        while True:
            attempts.sent += 1
            try:
                response = await self._http.request(
                    prepared.route.method,
                    prepared.url,
                    params=prepared.params,
                    content=prepared.content,
                    headers=headers,
                )
            except httpx.TransportError as error:
                wait_s = attempts.after_exception(error)
                if wait_s is None:
                    raise attempts.transport_error(error) from error
                await anyio.sleep(wait_s)
                continue
            if response.status_code < 400:
                return decode(prepared.route, response)
            wait_s = attempts.after_answer(response)
            if wait_s is None:
                raise attempts.error_of(response)
            await anyio.sleep(wait_s)

    async def _pages(self, name: str, path: dict[str, str], filters: dict[str, QueryValue]) -> AsyncIterator[Any]:
        """Every item of a paginated list, page after page, following ``pagination.next_cursor``."""
        filters = dict(filters)
        while True:
            page = await self._send(name, path, None, filters)
            for item in page.data:
                yield item
            cursor = page.pagination.next_cursor
            if not page.pagination.has_more or cursor is None:
                return
            if cursor == filters.get("cursor"):
                raise ApiError(f"the server answered the same cursor twice on {name}", code="pagination_stalled")
            filters["cursor"] = cursor

    async def wait_for_event(
        self, event_id: str, *, timeout_s: float = 30.0, poll_interval_s: float = 0.05
    ) -> EventRecord:
        """Poll an event until it is COMPLETED or FAILED and answer it; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            event: EventRecord = await self._send("get_event", {"event_id": event_id})
            if event.status in _FINISHED:
                return event
            if time.monotonic() + poll_interval_s > deadline:
                raise TimeoutError(f"event {event_id} is still {event.status} after {timeout_s} s")
            await anyio.sleep(poll_interval_s)


class _AsyncLedgerMethods(_AsyncTransport):
    """Programs, wallets, assets, participants, balance operations, rewards and redemptions."""

    async def create_program(self, body: ProgramCreate) -> Program:
        """``POST /v1/programs``: create a program (ACTIVE)."""
        return await self._send("create_program", {}, body)

    async def list_programs(self, **filters: QueryValue) -> ListOf[Program]:
        """``GET /v1/programs``: one page of programs (filters: status, search, include_archived, sort_by...)."""
        return await self._send("list_programs", {}, None, filters)

    def iter_programs(self, **filters: QueryValue) -> AsyncIterator[Program]:
        """Every program matching the filters of :meth:`list_programs`, page after page."""
        return self._pages("list_programs", {}, filters)

    async def get_program(self, program_id: str) -> Program:
        """``GET /v1/programs/{program_id}``."""
        return await self._send("get_program", {"program_id": program_id})

    async def update_program(self, program_id: str, body: ProgramUpdate) -> Program:
        """``PATCH /v1/programs/{program_id}``: omitted fields keep their value."""
        return await self._send("update_program", {"program_id": program_id}, body)

    async def fund_wallet(
        self, program_id: str, asset_id: str, amount: str | int | Decimal, description: str | None = None
    ) -> WalletOperationResult:
        """``POST .../assets/{asset_id}/fund``: SYSTEM_ISSUANCE to the program wallet (not retried once sent)."""
        body = {"amount": decimal_string(amount), "description": description}
        return await self._send("fund_wallet", {"program_id": program_id, "asset_id": asset_id}, _drop_none(body))

    async def burn_wallet(
        self, program_id: str, asset_id: str, amount: str | int | Decimal, description: str | None = None
    ) -> WalletOperationResult:
        """``POST .../assets/{asset_id}/burn``: the program wallet to SYSTEM_BREAKAGE (not retried once sent)."""
        body = {"amount": decimal_string(amount), "description": description}
        return await self._send("burn_wallet", {"program_id": program_id, "asset_id": asset_id}, _drop_none(body))

    async def program_balance(self, program_id: str, **filters: QueryValue) -> ListOf[WalletBalance]:
        """``GET /v1/programs/{program_id}/balance``: one page of wallet balances (filters: asset_id)."""
        return await self._send("program_balance", {"program_id": program_id}, None, filters)

    def iter_program_balance(self, program_id: str, **filters: QueryValue) -> AsyncIterator[WalletBalance]:
        """Every wallet balance of the program."""
        return self._pages("program_balance", {"program_id": program_id}, filters)

    async def link_asset(self, program_id: str, asset_id: str) -> Asset:
        """``POST /v1/programs/{program_id}/assets``: link an existing asset (twice: ConflictError)."""
        return await self._send("link_asset", {"program_id": program_id}, {"asset_id": asset_id})

    async def list_program_assets(self, program_id: str, **filters: QueryValue) -> ListOf[Asset]:
        """``GET /v1/programs/{program_id}/assets``: one page of the program's assets."""
        return await self._send("list_program_assets", {"program_id": program_id}, None, filters)

    def iter_program_assets(self, program_id: str, **filters: QueryValue) -> AsyncIterator[Asset]:
        """Every asset linked to the program."""
        return self._pages("list_program_assets", {"program_id": program_id}, filters)

    async def create_asset(self, body: AssetCreate) -> Asset:
        """``POST /v1/assets``."""
        return await self._send("create_asset", {}, body)

    async def list_assets(self, **filters: QueryValue) -> ListOf[Asset]:
        """``GET /v1/assets``: one page (filters: program_id, status, search)."""
        return await self._send("list_assets", {}, None, filters)

    def iter_assets(self, **filters: QueryValue) -> AsyncIterator[Asset]:
        """Every asset matching the filters of :meth:`list_assets`."""
        return self._pages("list_assets", {}, filters)

    async def get_asset(self, asset_id: str) -> Asset:
        """``GET /v1/assets/{asset_id}``."""
        return await self._send("get_asset", {"asset_id": asset_id})

    async def update_asset(self, asset_id: str, body: AssetPatch) -> Asset:
        """``PATCH /v1/assets/{asset_id}``: name, status, max_transaction_amount (None removes the cap)."""
        return await self._send("update_asset", {"asset_id": asset_id}, body)

    async def upsert_participant(self, body: ParticipantCreate) -> Participant:
        """``POST /v1/participants``: create, or update the participant with this ``external_id``."""
        return await self._send("upsert_participant", {}, body)

    async def list_participants(self, **filters: QueryValue) -> ListOf[ParticipantItem]:
        """``GET /v1/participants``: one page (filters: external_id, program_id, status, search, from_, to_...)."""
        return await self._send("list_participants", {}, None, filters)

    def iter_participants(self, **filters: QueryValue) -> AsyncIterator[ParticipantItem]:
        """Every participant matching the filters of :meth:`list_participants`."""
        return self._pages("list_participants", {}, filters)

    async def get_participant(self, participant_id: str) -> Participant:
        """``GET /v1/participants/{participant_id}``: with balances, tags, counters, attributes, tiers."""
        return await self._send("get_participant", {"participant_id": participant_id})

    async def update_participant(self, participant_id: str, body: ParticipantUpdate) -> Participant:
        """``PATCH /v1/participants/{participant_id}``: profile, attributes merged, tags replaced."""
        return await self._send("update_participant", {"participant_id": participant_id}, body)

    async def set_participant_status(self, participant_id: str, status: str) -> Participant:
        """``PATCH /v1/participants/{participant_id}/status``: ACTIVE, SUSPENDED or CLOSED."""
        return await self._send("set_participant_status", {"participant_id": participant_id}, {"status": status})

    async def participant_balances(self, participant_id: str, **filters: QueryValue) -> ListOf[Balance]:
        """``GET /v1/participants/{participant_id}/balances``: one page (filters: asset_id)."""
        return await self._send("participant_balances", {"participant_id": participant_id}, None, filters)

    def iter_participant_balances(self, participant_id: str, **filters: QueryValue) -> AsyncIterator[Balance]:
        """Every balance of the participant."""
        return self._pages("participant_balances", {"participant_id": participant_id}, filters)

    async def activity_history(self, participant_id: str, **filters: QueryValue) -> ListOf[ActivityItem]:
        """``GET .../activity/history``: one page of balance operations, oldest first."""
        return await self._send("activity_history", {"participant_id": participant_id}, None, filters)

    def iter_activity_history(self, participant_id: str, **filters: QueryValue) -> AsyncIterator[ActivityItem]:
        """Every balance operation of the participant."""
        return self._pages("activity_history", {"participant_id": participant_id}, filters)

    async def participant_events(self, participant_id: str, **filters: QueryValue) -> ListOf[EventRecord]:
        """``GET /v1/participants/{participant_id}/events``: one page, newest first."""
        return await self._send("participant_events", {"participant_id": participant_id}, None, filters)

    def iter_participant_events(self, participant_id: str, **filters: QueryValue) -> AsyncIterator[EventRecord]:
        """Every event of the participant."""
        return self._pages("participant_events", {"participant_id": participant_id}, filters)

    async def participant_lots(self, participant_id: str, asset_id: str, **filters: QueryValue) -> ListOf[Lot]:
        """``GET .../balances/lots?asset_id=``: one page of lots of a LOT asset, oldest first."""
        filters["asset_id"] = asset_id
        return await self._send("participant_lots", {"participant_id": participant_id}, None, filters)

    def iter_participant_lots(self, participant_id: str, asset_id: str, **filters: QueryValue) -> AsyncIterator[Lot]:
        """Every lot of the participant in a LOT asset."""
        filters["asset_id"] = asset_id
        return self._pages("participant_lots", {"participant_id": participant_id}, filters)

    async def state_history(self, participant_id: str, **filters: QueryValue) -> ListOf[StateChange]:
        """``GET .../activity/state-history``: one page of tag, counter, attribute and tier changes."""
        return await self._send("state_history", {"participant_id": participant_id}, None, filters)

    def iter_state_history(self, participant_id: str, **filters: QueryValue) -> AsyncIterator[StateChange]:
        """Every state change of the participant."""
        return self._pages("state_history", {"participant_id": participant_id}, filters)

    async def adjust_balance(self, participant_id: str, body: BalanceAdjust) -> AdjustResult:
        """``POST .../balances/adjust``: CREDIT or DEBIT one bucket (an idempotency key is added if none)."""
        return await self._send("adjust_balance", {"participant_id": participant_id}, body)

    async def hold_balance(self, participant_id: str, body: BalanceOperation) -> BalanceOperationResult:
        """``POST .../balances/hold``: AVAILABLE to HELD (an idempotency key is added if none)."""
        return await self._send("hold_balance", {"participant_id": participant_id}, body)

    async def release_balance(self, participant_id: str, body: BalanceOperation) -> BalanceOperationResult:
        """``POST .../balances/release``: HELD to AVAILABLE (an idempotency key is added if none)."""
        return await self._send("release_balance", {"participant_id": participant_id}, body)

    async def forfeit_balance(self, participant_id: str, body: BalanceOperation) -> BalanceOperationResult:
        """``POST .../balances/forfeit``: to SYSTEM_BREAKAGE for good (an idempotency key is added if none)."""
        return await self._send("forfeit_balance", {"participant_id": participant_id}, body)

    async def void_hold_balance(self, participant_id: str, body: BalanceOperation) -> BalanceOperationResult:
        """``POST .../balances/void-hold``: provisional HELD lots back to their source (key added if none)."""
        return await self._send("void_hold_balance", {"participant_id": participant_id}, body)

    async def transfer(self, body: TransferCreate) -> TransferResult:
        """``POST /v1/transfers``: between participants (an idempotency key is added if none)."""
        return await self._send("transfer", {}, body)

    async def create_reward(self, program_id: str, body: RewardCreate) -> Reward:
        """``POST /v1/programs/{program_id}/rewards``."""
        return await self._send("create_reward", {"program_id": program_id}, body)

    async def list_rewards(self, program_id: str, **filters: QueryValue) -> ListOf[Reward]:
        """``GET /v1/programs/{program_id}/rewards``: one page of the catalog."""
        return await self._send("list_rewards", {"program_id": program_id}, None, filters)

    def iter_rewards(self, program_id: str, **filters: QueryValue) -> AsyncIterator[Reward]:
        """Every reward of the program's catalog."""
        return self._pages("list_rewards", {"program_id": program_id}, filters)

    async def get_reward(self, program_id: str, reward_id: str) -> Reward:
        """``GET /v1/programs/{program_id}/rewards/{reward_id}``."""
        return await self._send("get_reward", {"program_id": program_id, "reward_id": reward_id})

    async def update_reward(self, program_id: str, reward_id: str, body: RewardUpdate) -> Reward:
        """``PATCH /v1/programs/{program_id}/rewards/{reward_id}``."""
        return await self._send("update_reward", {"program_id": program_id, "reward_id": reward_id}, body)

    async def redeem_item(self, participant_id: str, body: ItemRedemptionCreate) -> Redemption:
        """``POST .../redemptions/items``: redeem a catalog reward (an idempotency key is added if none)."""
        return await self._send("redeem_item", {"participant_id": participant_id}, body)

    async def redeem(self, participant_id: str, body: RedemptionCreate) -> Redemption:
        """``POST .../redemptions``: redeem an amount (an idempotency key is added if none)."""
        return await self._send("redeem", {"participant_id": participant_id}, body)

    async def list_redemptions(self, participant_id: str, **filters: QueryValue) -> ListOf[Redemption]:
        """``GET /v1/participants/{participant_id}/redemptions``: one page."""
        return await self._send("list_redemptions", {"participant_id": participant_id}, None, filters)

    def iter_redemptions(self, participant_id: str, **filters: QueryValue) -> AsyncIterator[Redemption]:
        """Every redemption of the participant."""
        return self._pages("list_redemptions", {"participant_id": participant_id}, filters)

    async def get_redemption(self, redemption_id: str) -> Redemption:
        """``GET /v1/redemptions/{redemption_id}``."""
        return await self._send("get_redemption", {"redemption_id": redemption_id})

    async def reverse_redemption(self, redemption_id: str, body: ReversalCreate) -> Reversal:
        """``POST /v1/redemptions/{redemption_id}/reverse`` (an idempotency key is added if none)."""
        return await self._send("reverse_redemption", {"redemption_id": redemption_id}, body)

    async def list_reversals(self, redemption_id: str, **filters: QueryValue) -> ListOf[Reversal]:
        """``GET /v1/redemptions/{redemption_id}/reversals``: one page."""
        return await self._send("list_reversals", {"redemption_id": redemption_id}, None, filters)

    def iter_reversals(self, redemption_id: str, **filters: QueryValue) -> AsyncIterator[Reversal]:
        """Every reversal of the redemption."""
        return self._pages("list_reversals", {"redemption_id": redemption_id}, filters)


class _AsyncRuleMethods(_AsyncTransport):
    """Participant state, tiers, rules, events, the journal, reports and the system routes."""

    async def list_tags(self, participant_id: str) -> DataOf[TagItem]:
        """``GET .../state/tags``."""
        return await self._send("list_tags", {"participant_id": participant_id})

    async def replace_tags(self, participant_id: str, tags: list[str]) -> TagList:
        """``PUT .../state/tags``: replace every tag."""
        return await self._send("replace_tags", {"participant_id": participant_id}, {"tags": tags})

    async def add_tag(self, participant_id: str, tag: str) -> TagItem:
        """``PUT .../state/tags/{tag}``."""
        return await self._send("add_tag", {"participant_id": participant_id, "tag": tag})

    async def remove_tag(self, participant_id: str, tag: str) -> None:
        """``DELETE .../state/tags/{tag}``."""
        await self._send("remove_tag", {"participant_id": participant_id, "tag": tag})

    async def list_attributes(self, participant_id: str) -> DataOf[AttributeItem]:
        """``GET .../state/attributes``."""
        return await self._send("list_attributes", {"participant_id": participant_id})

    async def merge_attributes(self, participant_id: str, attributes: dict[str, str]) -> AttributeMap:
        """``PATCH .../state/attributes``: merge string attributes."""
        return await self._send("merge_attributes", {"participant_id": participant_id}, {"attributes": attributes})

    async def set_attribute(self, participant_id: str, key: str, value: str) -> AttributeItem:
        """``PUT .../state/attributes/{key}``."""
        return await self._send("set_attribute", {"participant_id": participant_id, "key": key}, {"value": value})

    async def delete_attribute(self, participant_id: str, key: str) -> None:
        """``DELETE .../state/attributes/{key}``."""
        await self._send("delete_attribute", {"participant_id": participant_id, "key": key})

    async def list_counters(self, participant_id: str) -> DataOf[CounterItem]:
        """``GET .../state/counters``."""
        return await self._send("list_counters", {"participant_id": participant_id})

    async def get_counter(self, participant_id: str, key: str) -> CounterItem:
        """``GET .../state/counters/{key}``."""
        return await self._send("get_counter", {"participant_id": participant_id, "key": key})

    async def set_counter(
        self, participant_id: str, key: str, value: str | int | Decimal, reset_after: str | None = None
    ) -> CounterItem:
        """``PUT .../state/counters/{key}``: an exact value; ``reset_after`` a window (``"720h"``; ``""`` removes)."""
        body = _drop_none({"value": decimal_string(value), "reset_after": reset_after})
        return await self._send("set_counter", {"participant_id": participant_id, "key": key}, body)

    async def delete_counter(self, participant_id: str, key: str) -> None:
        """``DELETE .../state/counters/{key}``."""
        await self._send("delete_counter", {"participant_id": participant_id, "key": key})

    async def create_tier(self, program_id: str, body: TierCreate) -> TierDefinition:
        """``POST /v1/programs/{program_id}/tiers``."""
        return await self._send("create_tier", {"program_id": program_id}, body)

    async def list_tiers(self, program_id: str, **filters: QueryValue) -> ListOf[TierDefinition]:
        """``GET /v1/programs/{program_id}/tiers`` (filters: status)."""
        return await self._send("list_tiers", {"program_id": program_id}, None, filters)

    async def get_tier(self, program_id: str, key: str) -> TierDefinition:
        """``GET /v1/programs/{program_id}/tiers/{key}``."""
        return await self._send("get_tier", {"program_id": program_id, "key": key})

    async def update_tier(self, program_id: str, key: str, body: TierUpdate) -> TierDefinition:
        """``PATCH /v1/programs/{program_id}/tiers/{key}``."""
        return await self._send("update_tier", {"program_id": program_id, "key": key}, body)

    async def archive_tier(self, program_id: str, key: str) -> TierDefinition:
        """``POST /v1/programs/{program_id}/tiers/{key}/archive``."""
        return await self._send("archive_tier", {"program_id": program_id, "key": key})

    async def list_tier_states(self, participant_id: str, program_id: str) -> DataOf[TierState]:
        """``GET .../state/tiers?program_id=``: the participant's level in each tier of the program."""
        return await self._send(
            "list_tier_states", {"participant_id": participant_id}, None, {"program_id": program_id}
        )

    async def get_tier_state(self, participant_id: str, key: str, program_id: str) -> TierState:
        """``GET .../state/tiers/{key}?program_id=``."""
        path = {"participant_id": participant_id, "key": key}
        return await self._send("get_tier_state", path, None, {"program_id": program_id})

    async def set_tier_state(self, participant_id: str, key: str, program_id: str, body: TierStateSet) -> TierState:
        """``PUT .../state/tiers/{key}?program_id=``: set the level by hand."""
        path = {"participant_id": participant_id, "key": key}
        return await self._send("set_tier_state", path, body, {"program_id": program_id})

    async def delete_tier_state(self, participant_id: str, key: str, program_id: str) -> None:
        """``DELETE .../state/tiers/{key}?program_id=``."""
        path = {"participant_id": participant_id, "key": key}
        await self._send("delete_tier_state", path, None, {"program_id": program_id})

    async def create_rule(self, body: RuleCreate) -> Rule:
        """``POST /v1/rules``."""
        return await self._send("create_rule", {}, body)

    async def list_rules(self, **filters: QueryValue) -> ListOf[Rule]:
        """``GET /v1/rules``: one page (filters: program_id, status, search, sort_by...)."""
        return await self._send("list_rules", {}, None, filters)

    def iter_rules(self, **filters: QueryValue) -> AsyncIterator[Rule]:
        """Every rule matching the filters of :meth:`list_rules`."""
        return self._pages("list_rules", {}, filters)

    async def get_rule(self, rule_id: str) -> Rule:
        """``GET /v1/rules/{rule_id}``."""
        return await self._send("get_rule", {"rule_id": rule_id})

    async def update_rule(self, rule_id: str, body: RulePatch) -> Rule:
        """``PATCH /v1/rules/{rule_id}``: absent fields keep their value."""
        return await self._send("update_rule", {"rule_id": rule_id}, body)

    async def validate_condition(self, condition: str) -> ConditionResult:
        """``POST /v1/rules/validate``: a CEL condition's syntax."""
        return await self._send("validate_condition", {}, {"condition": condition})

    async def simulate_rule(
        self, rule_id: str, event: dict[str, Any], participant_state: MockState | None = None
    ) -> Simulation:
        """``POST /v1/rules/{rule_id}/simulate``: what the rule would do to this event data (nothing is written)."""
        body = {"event": event, "participant_state": participant_state or MockState()}
        return await self._send("simulate_rule", {"rule_id": rule_id}, body)

    async def reset_budget(self, rule_id: str, asset_id: str) -> RuleBudget:
        """``POST /v1/rules/{rule_id}/reset-budget?asset_id=``."""
        return await self._send("reset_budget", {"rule_id": rule_id}, None, {"asset_id": asset_id})

    async def rule_history(self, rule_id: str, **filters: QueryValue) -> ListOf[RuleVersionRecord]:
        """``GET /v1/rules/{rule_id}/history``: one page of versions."""
        return await self._send("rule_history", {"rule_id": rule_id}, None, filters)

    def iter_rule_history(self, rule_id: str, **filters: QueryValue) -> AsyncIterator[RuleVersionRecord]:
        """Every version of the rule."""
        return self._pages("rule_history", {"rule_id": rule_id}, filters)

    async def submit_event(self, body: EventSubmit) -> EventAccepted:
        """``POST /v1/events``: answered once durable; :meth:`wait_for_event` waits for the outcome."""
        return await self._send("submit_event", {}, body)

    async def submit_event_batch(self, events: list[EventSubmit]) -> BatchResult:
        """``POST /v1/events/batch``: each event is accepted or refused on its own."""
        return await self._send("submit_event_batch", {}, {"events": events})

    async def list_events(self, **filters: QueryValue) -> ListOf[EventRecord]:
        """``GET /v1/events``: one page, newest first (filters: program_id, status, participant_id, from_...)."""
        return await self._send("list_events", {}, None, filters)

    def iter_events(self, **filters: QueryValue) -> AsyncIterator[EventRecord]:
        """Every event matching the filters of :meth:`list_events`."""
        return self._pages("list_events", {}, filters)

    async def get_event(self, event_id: str, *, include_skipped: bool = False) -> EventRecord:
        """``GET /v1/events/{event_id}``: status, rule evaluations, journal entry ids."""
        return await self._send("get_event", {"event_id": event_id}, None, {"include_skipped": include_skipped})

    async def retry_event(self, event_id: str) -> EventRetried:
        """``POST /v1/events/{event_id}/retry``: queue a FAILED event again."""
        return await self._send("retry_event", {"event_id": event_id})

    async def list_journal_entries(self, **filters: QueryValue) -> ListOf[JournalEntryRecord]:
        """``GET /v1/journal-entries``: one page, newest first (filters: event_id, participant_id, asset_id...)."""
        return await self._send("list_journal_entries", {}, None, filters)

    def iter_journal_entries(self, **filters: QueryValue) -> AsyncIterator[JournalEntryRecord]:
        """Every journal entry matching the filters of :meth:`list_journal_entries`."""
        return self._pages("list_journal_entries", {}, filters)

    async def get_journal_entry(self, entry_id: str) -> JournalEntryRecord:
        """``GET /v1/journal-entries/{entry_id}``."""
        return await self._send("get_journal_entry", {"entry_id": entry_id})

    async def ledger_summary(self, **filters: QueryValue) -> DataOf[LedgerSummary]:
        """``GET /v1/reports/ledger-summary``."""
        return await self._send("ledger_summary", {}, None, filters)

    async def expiration_schedule(self, **filters: QueryValue) -> DataOf[ExpirationSchedule]:
        """``GET /v1/reports/expiration-schedule``."""
        return await self._send("expiration_schedule", {}, None, filters)

    async def program_activity(self, **filters: QueryValue) -> DataOf[ProgramActivity]:
        """``GET /v1/reports/program-activity``."""
        return await self._send("program_activity", {}, None, filters)

    async def health(self) -> Health:
        """``GET /healthz`` (needs no key)."""
        return await self._send("health", {})

    async def metrics(self) -> str:
        """``GET /metrics``: the Prometheus text."""
        return await self._send("metrics", {})

    async def openapi(self) -> dict[str, Any]:
        """``GET /openapi.json``: the server's OpenAPI document."""
        return await self._send("openapi", {})

    async def docs_page(self) -> str:
        """``GET /docs``: the HTML API reference."""
        return await self._send("docs_page", {})


class _AsyncAutomationMethods(_AsyncTransport):
    """Automations (docs/automations.md)."""

    async def create_automation(self, program_id: str, body: AutomationCreate) -> Automation:
        """``POST /v1/programs/{program_id}/automations``."""
        return await self._send("create_automation", {"program_id": program_id}, body)

    async def list_automations(self, program_id: str, **filters: QueryValue) -> ListOf[Automation]:
        """``GET /v1/programs/{program_id}/automations``: one page, newest first (filters: trigger_type, scope,
        status, source, search)."""
        return await self._send("list_automations", {"program_id": program_id}, None, filters)

    def iter_automations(self, program_id: str, **filters: QueryValue) -> AsyncIterator[Automation]:
        """Every automation of the program matching the filters of :meth:`list_automations`."""
        return self._pages("list_automations", {"program_id": program_id}, filters)

    async def get_automation(self, program_id: str, automation_id: str) -> Automation:
        """``GET .../automations/{automation_id}``: with its fan-out's progress."""
        return await self._send("get_automation", {"program_id": program_id, "automation_id": automation_id})

    async def update_automation(self, program_id: str, automation_id: str, body: AutomationUpdate) -> Automation:
        """``PATCH .../automations/{automation_id}``."""
        path = {"program_id": program_id, "automation_id": automation_id}
        return await self._send("update_automation", path, body)

    async def archive_automation(self, program_id: str, automation_id: str) -> Automation:
        """``DELETE .../automations/{automation_id}``: archived for good."""
        return await self._send("archive_automation", {"program_id": program_id, "automation_id": automation_id})

    async def trigger_automation(self, program_id: str, automation_id: str) -> Automation:
        """``POST .../automations/{automation_id}/trigger``: fire now."""
        return await self._send("trigger_automation", {"program_id": program_id, "automation_id": automation_id})

    async def cancel_automation(self, program_id: str, automation_id: str) -> Automation:
        """``POST .../automations/{automation_id}/cancel``: stop the fan-out at its next batch."""
        return await self._send("cancel_automation", {"program_id": program_id, "automation_id": automation_id})

    async def refresh_subscriptions(self, program_id: str, automation_id: str) -> Automation:
        """``POST .../automations/{automation_id}/refresh-subscriptions``: enrol the participants again (202)."""
        path = {"program_id": program_id, "automation_id": automation_id}
        return await self._send("refresh_subscriptions", path)

    async def list_subscriptions(
        self, program_id: str, automation_id: str, **filters: QueryValue
    ) -> ListOf[Subscription]:
        """``GET .../automations/{automation_id}/subscriptions``: one page (filters: status)."""
        path = {"program_id": program_id, "automation_id": automation_id}
        return await self._send("list_subscriptions", path, None, filters)

    def iter_subscriptions(
        self, program_id: str, automation_id: str, **filters: QueryValue
    ) -> AsyncIterator[Subscription]:
        """Every subscription of a participant_state automation."""
        path = {"program_id": program_id, "automation_id": automation_id}
        return self._pages("list_subscriptions", path, filters)


class _AsyncWebhookMethods(_AsyncTransport):
    """Webhook endpoints and their deliveries (docs/webhooks.md)."""

    async def create_webhook_endpoint(self, body: WebhookEndpointCreate) -> WebhookEndpointWithSecret:
        """``POST /v1/webhook-endpoints``: the answer carries the secret, shown this once."""
        return await self._send("create_webhook_endpoint", {}, body)

    async def list_webhook_endpoints(self, **filters: QueryValue) -> ListOf[WebhookEndpoint]:
        """``GET /v1/webhook-endpoints``: one page, newest first (filters: status)."""
        return await self._send("list_webhook_endpoints", {}, None, filters)

    def iter_webhook_endpoints(self, **filters: QueryValue) -> AsyncIterator[WebhookEndpoint]:
        """Every endpoint matching the filters of :meth:`list_webhook_endpoints`."""
        return self._pages("list_webhook_endpoints", {}, filters)

    async def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """``GET /v1/webhook-endpoints/{endpoint_id}`` (no secret)."""
        return await self._send("get_webhook_endpoint", {"endpoint_id": endpoint_id})

    async def update_webhook_endpoint(self, endpoint_id: str, body: WebhookEndpointUpdate) -> WebhookEndpoint:
        """``PATCH /v1/webhook-endpoints/{endpoint_id}``."""
        return await self._send("update_webhook_endpoint", {"endpoint_id": endpoint_id}, body)

    async def delete_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """``DELETE /v1/webhook-endpoints/{endpoint_id}``: archived; its pending deliveries become FAILED."""
        return await self._send("delete_webhook_endpoint", {"endpoint_id": endpoint_id})

    async def rotate_webhook_secret(self, endpoint_id: str) -> WebhookEndpointWithSecret:
        """``POST .../{endpoint_id}/rotate-secret``: a new secret, shown once; the old one signs during the overlap."""
        return await self._send("rotate_webhook_secret", {"endpoint_id": endpoint_id})

    async def list_webhook_deliveries(self, endpoint_id: str, **filters: QueryValue) -> ListOf[WebhookDelivery]:
        """``GET .../{endpoint_id}/deliveries``: one page, newest first (filters: status)."""
        return await self._send("list_webhook_deliveries", {"endpoint_id": endpoint_id}, None, filters)

    def iter_webhook_deliveries(self, endpoint_id: str, **filters: QueryValue) -> AsyncIterator[WebhookDelivery]:
        """Every delivery of an endpoint matching the filters of :meth:`list_webhook_deliveries`."""
        return self._pages("list_webhook_deliveries", {"endpoint_id": endpoint_id}, filters)

    async def get_webhook_delivery(self, delivery_id: str) -> WebhookDelivery:
        """``GET /v1/webhook-deliveries/{delivery_id}``: with its last response body and error."""
        return await self._send("get_webhook_delivery", {"delivery_id": delivery_id})

    async def retry_webhook_delivery(self, delivery_id: str) -> WebhookDelivery:
        """``POST /v1/webhook-deliveries/{delivery_id}/retry``: a FAILED delivery sent again with a new budget."""
        return await self._send("retry_webhook_delivery", {"delivery_id": delivery_id})


class _AsyncBacktestMethods(_AsyncTransport):
    """Backtests of proposed rule sets (docs/backtest.md)."""

    async def create_backtest(self, program_id: str, body: BacktestCreate) -> Backtest:
        """``POST /v1/programs/{program_id}/backtests``: the job starts (202, RUNNING); poll :meth:`get_backtest`."""
        return await self._send("create_backtest", {"program_id": program_id}, body)

    async def run_backtest(self, program_id: str, body: BacktestCreate) -> Backtest:
        """``POST /v1/programs/{program_id}/backtest``: the job, finished if it took under the server's
        ``backtests.inline_wait_s``, else still RUNNING."""
        return await self._send("run_backtest", {"program_id": program_id}, body)

    async def list_backtests(self, program_id: str, **filters: QueryValue) -> ListOf[Backtest]:
        """``GET /v1/programs/{program_id}/backtests``: one page, newest first."""
        return await self._send("list_backtests", {"program_id": program_id}, None, filters)

    def iter_backtests(self, program_id: str, **filters: QueryValue) -> AsyncIterator[Backtest]:
        """Every backtest of the program the server still keeps."""
        return self._pages("list_backtests", {"program_id": program_id}, filters)

    async def get_backtest(self, program_id: str, backtest_id: str) -> Backtest:
        """``GET .../backtests/{backtest_id}``: status, counts and the report (so far, while RUNNING)."""
        return await self._send("get_backtest", {"program_id": program_id, "backtest_id": backtest_id})

    async def cancel_backtest(self, program_id: str, backtest_id: str) -> Backtest:
        """``POST .../backtests/{backtest_id}/cancel``: stop at the next chunk of events (it ends CANCELLED)."""
        return await self._send("cancel_backtest", {"program_id": program_id, "backtest_id": backtest_id})


class AsyncScripClient(
    _AsyncLedgerMethods, _AsyncRuleMethods, _AsyncAutomationMethods, _AsyncWebhookMethods, _AsyncBacktestMethods
):
    """An asynchronous client of a scrip-actor server (asyncio or trio), one method per route.

    Use it as ``async with AsyncScripClient(base_url, api_key) as client: ...`` (or call :meth:`aclose`).
    Errors are :class:`~scrip_actor.client.ApiError` subclasses; retries follow :class:`RetryPolicy`.
    """

    async def __aenter__(self) -> AsyncScripClient:
        return self


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}
