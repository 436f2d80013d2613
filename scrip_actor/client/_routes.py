"""Every server route the client calls, declared once: method, path template, answer type, and retry safety.

Keyed by the client's method name. ``tests/client/test_every_route_has_a_client_method.py`` compares this table with
the server's own route table (``scrip_actor.http.app.all_endpoints``), so a route added to the server without a
client method fails the build. The answer types are the server's own msgspec Structs.

``retry_safe`` says whether repeating the request after it may have reached the server is harmless: reads, PUT and
DELETE (they set a state), pure computations (validate, simulate), the participant upsert, and event submissions
(their key is required); ``keyed`` routes are repeatable too, because the client fills in their idempotency key
when the caller gives none. Every other write (creating a program, funding a wallet, any PATCH...) is retried
only when it provably never reached the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrip_actor.automations import Automation, Subscription
from scrip_actor.backtest_model import Backtest
from scrip_actor.http.hosted import ActivityItem, EventRecord, JournalEntryRecord, ParticipantItem, RuleVersionRecord
from scrip_actor.http.schemas import (
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
    TagItem,
    TagList,
)
from scrip_actor.http.simulate import Simulation
from scrip_actor.model import (
    AdjustResult,
    Asset,
    Balance,
    BalanceOperationResult,
    Lot,
    Participant,
    Program,
    Redemption,
    Reversal,
    Reward,
    Rule,
    RuleBudget,
    StateChange,
    TransferResult,
    WalletBalance,
    WalletOperationResult,
)
from scrip_actor.report_model import ExpirationSchedule, LedgerSummary, ProgramActivity
from scrip_actor.tiers import TierDefinition, TierState
from scrip_actor.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEndpointWithSecret

__all__ = ["ROUTES", "Route"]


@dataclass(frozen=True, slots=True)
class Route:
    """One route as the client sees it.

    Attributes:
        method: the HTTP method.
        path: the server's path template, ``{name}`` for parameters.
        response: the msgspec type the answer decodes into; ``str`` for text answers, None for 204.
        retry_safe: repeating it after it may have reached the server changes nothing (see the module docstring).
        keyed: the body has an ``idempotency_key`` the client fills in when it is None (so it is repeatable too).
    """

    method: str
    path: str
    response: Any
    retry_safe: bool = False
    keyed: bool = False

    @property
    def repeatable(self) -> bool:
        """Whether the client may send it again after it may have reached the server: a keyed write always
        carries its key (the client adds one), so a repeat is answered with the original."""
        return self.retry_safe or self.keyed


def _get(path: str, response: Any) -> Route:
    return Route("GET", path, response, retry_safe=True)


_PROGRAM = "/v1/programs/{program_id}"
_WALLET = _PROGRAM + "/assets/{asset_id}"
_PARTICIPANT = "/v1/participants/{participant_id}"
_STATE = _PARTICIPANT + "/state"
_TIER = _PROGRAM + "/tiers/{key}"
_RULE = "/v1/rules/{rule_id}"
_AUTOMATION = _PROGRAM + "/automations/{automation_id}"
_BACKTEST = _PROGRAM + "/backtests/{backtest_id}"
_ENDPOINT = "/v1/webhook-endpoints/{endpoint_id}"
_DELIVERY = "/v1/webhook-deliveries/{delivery_id}"

ROUTES: dict[str, Route] = {
    # system
    "health": Route("GET", "/healthz", Health, retry_safe=True),
    "metrics": Route("GET", "/metrics", str, retry_safe=True),
    "openapi": Route("GET", "/openapi.json", dict[str, Any], retry_safe=True),
    "docs_page": Route("GET", "/docs", str, retry_safe=True),
    # programs and their wallets
    "create_program": Route("POST", "/v1/programs", Program),
    "list_programs": _get("/v1/programs", ListOf[Program]),
    "get_program": _get(_PROGRAM, Program),
    "update_program": Route("PATCH", _PROGRAM, Program),
    "fund_wallet": Route("POST", _WALLET + "/fund", WalletOperationResult),
    "burn_wallet": Route("POST", _WALLET + "/burn", WalletOperationResult),
    "program_balance": _get(_PROGRAM + "/balance", ListOf[WalletBalance]),
    "link_asset": Route("POST", _PROGRAM + "/assets", Asset),
    "list_program_assets": _get(_PROGRAM + "/assets", ListOf[Asset]),
    # assets
    "create_asset": Route("POST", "/v1/assets", Asset),
    "list_assets": _get("/v1/assets", ListOf[Asset]),
    "get_asset": _get("/v1/assets/{asset_id}", Asset),
    "update_asset": Route("PATCH", "/v1/assets/{asset_id}", Asset),
    # participants
    "upsert_participant": Route("POST", "/v1/participants", Participant, retry_safe=True),
    "list_participants": _get("/v1/participants", ListOf[ParticipantItem]),
    "get_participant": _get(_PARTICIPANT, Participant),
    "update_participant": Route("PATCH", _PARTICIPANT, Participant),
    "set_participant_status": Route("PATCH", _PARTICIPANT + "/status", Participant),
    "participant_balances": _get(_PARTICIPANT + "/balances", ListOf[Balance]),
    "activity_history": _get(_PARTICIPANT + "/activity/history", ListOf[ActivityItem]),
    "participant_events": _get(_PARTICIPANT + "/events", ListOf[EventRecord]),
    "participant_lots": _get(_PARTICIPANT + "/balances/lots", ListOf[Lot]),
    "state_history": _get(_PARTICIPANT + "/activity/state-history", ListOf[StateChange]),
    # balance operations
    "adjust_balance": Route("POST", _PARTICIPANT + "/balances/adjust", AdjustResult, keyed=True),
    "hold_balance": Route("POST", _PARTICIPANT + "/balances/hold", BalanceOperationResult, keyed=True),
    "release_balance": Route("POST", _PARTICIPANT + "/balances/release", BalanceOperationResult, keyed=True),
    "forfeit_balance": Route("POST", _PARTICIPANT + "/balances/forfeit", BalanceOperationResult, keyed=True),
    "void_hold_balance": Route("POST", _PARTICIPANT + "/balances/void-hold", BalanceOperationResult, keyed=True),
    "transfer": Route("POST", "/v1/transfers", TransferResult, keyed=True),
    # rewards and redemptions
    "create_reward": Route("POST", _PROGRAM + "/rewards", Reward),
    "list_rewards": _get(_PROGRAM + "/rewards", ListOf[Reward]),
    "get_reward": _get(_PROGRAM + "/rewards/{reward_id}", Reward),
    "update_reward": Route("PATCH", _PROGRAM + "/rewards/{reward_id}", Reward),
    "redeem_item": Route("POST", _PARTICIPANT + "/redemptions/items", Redemption, keyed=True),
    "redeem": Route("POST", _PARTICIPANT + "/redemptions", Redemption, keyed=True),
    "list_redemptions": _get(_PARTICIPANT + "/redemptions", ListOf[Redemption]),
    "get_redemption": _get("/v1/redemptions/{redemption_id}", Redemption),
    "reverse_redemption": Route("POST", "/v1/redemptions/{redemption_id}/reverse", Reversal, keyed=True),
    "list_reversals": _get("/v1/redemptions/{redemption_id}/reversals", ListOf[Reversal]),
    # participant state
    "list_tags": _get(_STATE + "/tags", DataOf[TagItem]),
    "replace_tags": Route("PUT", _STATE + "/tags", TagList, retry_safe=True),
    "add_tag": Route("PUT", _STATE + "/tags/{tag}", TagItem, retry_safe=True),
    "remove_tag": Route("DELETE", _STATE + "/tags/{tag}", None, retry_safe=True),
    "list_attributes": _get(_STATE + "/attributes", DataOf[AttributeItem]),
    "merge_attributes": Route("PATCH", _STATE + "/attributes", AttributeMap),
    "set_attribute": Route("PUT", _STATE + "/attributes/{key}", AttributeItem, retry_safe=True),
    "delete_attribute": Route("DELETE", _STATE + "/attributes/{key}", None, retry_safe=True),
    "list_counters": _get(_STATE + "/counters", DataOf[CounterItem]),
    "get_counter": _get(_STATE + "/counters/{key}", CounterItem),
    "set_counter": Route("PUT", _STATE + "/counters/{key}", CounterItem, retry_safe=True),
    "delete_counter": Route("DELETE", _STATE + "/counters/{key}", None, retry_safe=True),
    # tiers
    "create_tier": Route("POST", _PROGRAM + "/tiers", TierDefinition),
    "list_tiers": _get(_PROGRAM + "/tiers", ListOf[TierDefinition]),
    "get_tier": _get(_TIER, TierDefinition),
    "update_tier": Route("PATCH", _TIER, TierDefinition),
    "archive_tier": Route("POST", _TIER + "/archive", TierDefinition),
    "list_tier_states": _get(_STATE + "/tiers", DataOf[TierState]),
    "get_tier_state": _get(_STATE + "/tiers/{key}", TierState),
    "set_tier_state": Route("PUT", _STATE + "/tiers/{key}", TierState, retry_safe=True),
    "delete_tier_state": Route("DELETE", _STATE + "/tiers/{key}", None, retry_safe=True),
    # automations
    "create_automation": Route("POST", _PROGRAM + "/automations", Automation),
    "list_automations": _get(_PROGRAM + "/automations", ListOf[Automation]),
    "get_automation": _get(_AUTOMATION, Automation),
    "update_automation": Route("PATCH", _AUTOMATION, Automation),
    "archive_automation": Route("DELETE", _AUTOMATION, Automation, retry_safe=True),
    "trigger_automation": Route("POST", _AUTOMATION + "/trigger", Automation),
    "cancel_automation": Route("POST", _AUTOMATION + "/cancel", Automation),
    # Enrolling again is what a refresh does: a second one changes nothing the first did not.
    "refresh_subscriptions": Route("POST", _AUTOMATION + "/refresh-subscriptions", Automation, retry_safe=True),
    "list_subscriptions": _get(_AUTOMATION + "/subscriptions", ListOf[Subscription]),
    # backtests: a second start is a second job, so neither POST is repeatable; a second cancel is a 409
    "create_backtest": Route("POST", _PROGRAM + "/backtests", Backtest),
    "run_backtest": Route("POST", _PROGRAM + "/backtest", Backtest),
    "list_backtests": _get(_PROGRAM + "/backtests", ListOf[Backtest]),
    "get_backtest": _get(_BACKTEST, Backtest),
    "cancel_backtest": Route("POST", _BACKTEST + "/cancel", Backtest),
    # rules
    "create_rule": Route("POST", "/v1/rules", Rule),
    "list_rules": _get("/v1/rules", ListOf[Rule]),
    "get_rule": _get(_RULE, Rule),
    "update_rule": Route("PATCH", _RULE, Rule),
    "validate_condition": Route("POST", "/v1/rules/validate", ConditionResult, retry_safe=True),
    "simulate_rule": Route("POST", _RULE + "/simulate", Simulation, retry_safe=True),
    "reset_budget": Route("POST", _RULE + "/reset-budget", RuleBudget),
    "rule_history": _get(_RULE + "/history", ListOf[RuleVersionRecord]),
    # events and the journal
    # An event's idempotency key is required, so a repeated submission is always answered with the original.
    "submit_event": Route("POST", "/v1/events", EventAccepted, retry_safe=True),
    "submit_event_batch": Route("POST", "/v1/events/batch", BatchResult, retry_safe=True),
    "list_events": _get("/v1/events", ListOf[EventRecord]),
    "get_event": _get("/v1/events/{event_id}", EventRecord),
    "retry_event": Route("POST", "/v1/events/{event_id}/retry", EventRetried),
    "list_journal_entries": _get("/v1/journal-entries", ListOf[JournalEntryRecord]),
    "get_journal_entry": _get("/v1/journal-entries/{entry_id}", JournalEntryRecord),
    # reports
    "ledger_summary": _get("/v1/reports/ledger-summary", DataOf[LedgerSummary]),
    "expiration_schedule": _get("/v1/reports/expiration-schedule", DataOf[ExpirationSchedule]),
    "program_activity": _get("/v1/reports/program-activity", DataOf[ProgramActivity]),
    # webhooks
    "create_webhook_endpoint": Route("POST", "/v1/webhook-endpoints", WebhookEndpointWithSecret),
    "list_webhook_endpoints": _get("/v1/webhook-endpoints", ListOf[WebhookEndpoint]),
    "get_webhook_endpoint": _get(_ENDPOINT, WebhookEndpoint),
    "update_webhook_endpoint": Route("PATCH", _ENDPOINT, WebhookEndpoint),
    "delete_webhook_endpoint": Route("DELETE", _ENDPOINT, WebhookEndpoint, retry_safe=True),
    "rotate_webhook_secret": Route("POST", _ENDPOINT + "/rotate-secret", WebhookEndpointWithSecret),
    "list_webhook_deliveries": _get(_ENDPOINT + "/deliveries", ListOf[WebhookDelivery]),
    "get_webhook_delivery": _get(_DELIVERY, WebhookDelivery),
    # A second retry of the same delivery is a 404 (it is no longer FAILED): not repeatable.
    "retry_webhook_delivery": Route("POST", _DELIVERY + "/retry", WebhookDelivery),
}
