"""``/v1/rules``: CEL conditions and their actions; validate and simulate without writing anything."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import UNSET

from scrip_actor.errors import NotFound
from scrip_actor.http.hosted import RuleVersionRecord, rule_version_record
from scrip_actor.http.routing import Call, Endpoint, listing
from scrip_actor.http.schemas import (
    ConditionCheck,
    ConditionResult,
    HistoryQuery,
    ListOf,
    ResetBudgetQuery,
    RulePatch,
    RuleQuery,
    SimulateRequest,
)
from scrip_actor.http.simulate import Simulation, simulate
from scrip_actor.model import Asset, Rule, RuleBudget, RuleCreate, RuleUpdate

__all__ = ["ENDPOINTS", "rule_update"]


async def create_rule(call: Call) -> Rule:
    """Create a rule; the condition and actions are compiled now (400 with line and column for bad CEL)."""
    return await call.engine.create_rule(call.body)


async def list_rules(call: Call) -> ListOf[Any]:
    """Rules in evaluation order (``order`` ascending)."""
    query: RuleQuery = call.query
    return listing(
        await call.engine.list_rules(
            program_id=query.program_id,
            status=query.status,
            include_archived=query.include_archived,
            search=query.search,
            sort_by=query.sort_by,
            sort_dir=query.sort_dir,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_rule(call: Call) -> Rule:
    """One rule, current version."""
    return await call.engine.get_rule(call.path["rule_id"])


def rule_update(patch: RulePatch) -> RuleUpdate:
    """The engine request for an HTTP patch: ``active_from``/``active_to: null`` become ``clear_*=True``."""
    kept = {
        name: getattr(patch, name)
        for name in patch.__struct_fields__
        if name not in ("active_from", "active_to") and getattr(patch, name) is not UNSET
    }
    return RuleUpdate(
        **kept,
        active_from=None if patch.active_from is UNSET else patch.active_from,
        active_to=None if patch.active_to is UNSET else patch.active_to,
        clear_active_from=patch.active_from is None,
        clear_active_to=patch.active_to is None,
    )


async def update_rule(call: Call) -> Rule:
    """Change a rule; a new version goes into its history. An order already taken is a 409."""
    return await call.engine.update_rule(call.path["rule_id"], rule_update(call.body))


async def validate_condition(call: Call) -> ConditionResult:
    """Check a condition's CEL syntax; never an error status, the answer says ``valid``."""
    body: ConditionCheck = call.body
    result = call.engine.validate_condition(body.condition)
    return ConditionResult(
        valid=result["valid"], message=result["message"], note=_VALIDATE_NOTE, details=result["details"]
    )


# The hosted answer's note: what a valid answer does not promise.
_VALIDATE_NOTE = (
    "syntax only: fields the condition reads are not checked against real events, and a condition that reads a "
    "missing field is false at run time (guard it with has())"
)


async def simulate_rule(call: Call) -> Simulation:
    """Evaluate one rule against an event and mock participant state; writes nothing."""
    body: SimulateRequest = call.body
    rule = call.engine.rule(call.path["rule_id"])
    assets: dict[str, Asset] = {}
    for action in rule.actions:
        asset_id = getattr(action, "asset_id", None)
        if asset_id is not None and asset_id not in assets:
            with contextlib.suppress(NotFound):  # compile_rule then names the missing asset in its 400
                assets[asset_id] = await call.engine.get_asset(asset_id)
    now = body.event_timestamp or datetime.now(UTC)
    event = call.engine.event_data_for_cel(body.event, "event")  # the limits of a real event apply
    return simulate(rule, assets, event, body.participant_state, now)


async def reset_budget(call: Call) -> RuleBudget:
    """Reset one budget of a rule by hand: consumed 0, a new period from now; answered once durable."""
    query: ResetBudgetQuery = call.query
    return await call.engine.reset_rule_budget(call.path["rule_id"], query.asset_id)


async def rule_history(call: Call) -> ListOf[RuleVersionRecord]:
    """A rule's versions, newest first; each carries the full snapshot after the change and its ``id``, the
    ``rule_history_id`` of the evaluations made against that version."""
    query: HistoryQuery = call.query
    page = await call.engine.rule_history(
        call.path["rule_id"],
        limit=query.limit,
        cursor=query.cursor,
        change_type=query.change_type,
        changed_from=query.changed_from,
        changed_to=query.changed_to,
    )
    return listing(msgspec.structs.replace(page, data=[rule_version_record(version) for version in page.data]))


_ONE = "/v1/rules/{rule_id}"

ENDPOINTS = [
    Endpoint("POST", "/v1/rules", create_rule, "Create a rule", "Rules", body=RuleCreate, response=Rule, status=201),
    Endpoint("GET", "/v1/rules", list_rules, "List rules (by order)", "Rules", query=RuleQuery, response=ListOf[Rule]),
    Endpoint("GET", _ONE, get_rule, "Get a rule", "Rules", response=Rule),
    Endpoint("PATCH", _ONE, update_rule, "Update a rule", "Rules", body=RulePatch, response=Rule),
    Endpoint(
        "POST",
        "/v1/rules/validate",
        validate_condition,
        "Check a CEL condition's syntax",
        "Rules",
        body=ConditionCheck,
        response=ConditionResult,
    ),
    Endpoint(
        "POST",
        _ONE + "/simulate",
        simulate_rule,
        "Simulate a rule (writes nothing)",
        "Rules",
        body=SimulateRequest,
        response=Simulation,
    ),
    Endpoint(
        "POST",
        _ONE + "/reset-budget",
        reset_budget,
        "Reset one of a rule's budgets",
        "Rules",
        query=ResetBudgetQuery,
        response=RuleBudget,
    ),
    Endpoint(
        "GET",
        _ONE + "/history",
        rule_history,
        "A rule's change history",
        "Rules",
        query=HistoryQuery,
        response=ListOf[RuleVersionRecord],
    ),
]
