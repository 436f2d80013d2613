"""Dry-run one rule against an event and mock participant state: what would each action do? Writes nothing.

The engine's own pieces do the work (``compile_rule``, ``evaluate``, ``cel_event_data``), so a simulation agrees
with real processing on what matches; only the effects are described instead of applied. Amount and value
expressions are resolved here the same way processing resolves them.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from msgspec import Struct

from scrip_actor.amounts import add_counter, check_counter, format_minor
from scrip_actor.errors import ScripError, ValidationFailed
from scrip_actor.http.schemas import MockState
from scrip_actor.ledger import ActionFailed
from scrip_actor.model import (
    Action,
    Asset,
    BroadcastAction,
    CounterAction,
    CreditAction,
    DebitAction,
    ForfeitAction,
    HoldAction,
    ReleaseAction,
    Rule,
    ScheduleEventAction,
    SetAttributeAction,
    SetTierAction,
    TagAction,
    UntagAction,
    VoidHoldAction,
)
from scrip_actor.rules import (
    CompiledAction,
    attribute_text,
    compile_rule,
    evaluate,
    resolve_amount,
    resolve_counter_delta,
)

__all__ = ["ActionResult", "RuleSummary", "Simulation", "SimulationOutcome", "simulate"]


class RuleSummary(Struct, kw_only=True):
    """The simulated rule, briefly."""

    id: str
    name: str
    condition: str
    order: int
    stop_after_match: bool


class ActionResult(Struct, kw_only=True, omit_defaults=True):
    """What one action would do; which fields appear depends on the action type (reference §4.6)."""

    description: str
    amount: str | None = None
    asset_symbol: str | None = None
    current_value: str | None = None
    projected_value: str | None = None
    value: str | None = None
    current_tags: list[str] | None = None
    would_add: bool | None = None
    would_remove: bool | None = None
    would_change: bool | None = None
    error: str | None = None


class ActionOutcome(Struct, kw_only=True):
    """One action and its simulated result."""

    action: Action
    result: ActionResult


class SimulationOutcome(Struct, kw_only=True):
    """Whether the condition held and, if so, each action's result."""

    matched: bool
    status: Literal["evaluated", "condition_failed"]
    reason: str | None = None
    results: list[ActionOutcome] = []


class Simulation(Struct, kw_only=True):
    """``POST /v1/rules/{id}/simulate`` answer."""

    rule: RuleSummary
    evaluation: SimulationOutcome


def simulate(
    rule: Rule, assets: dict[str, Asset], event: dict[str, Any], state: MockState, now: datetime
) -> Simulation:
    """Evaluate ``rule`` for ``event`` (data as CEL sees it: ``Engine.event_data_for_cel``) as if the participant
    had ``state``, at time ``now``.

    Raises:
        ValidationFailed: the rule no longer compiles (e.g. an asset it names is gone).
    """
    compiled = compile_rule(rule, assets)
    counters = {key: _counter_value(key, value) for key, value in state.counters.items()}
    participant = {
        "id": "",
        "external_id": "",
        "status": "ACTIVE",
        "tags": sorted(t.lower() for t in state.tags),
        "counters": counters,
        "attributes": dict(state.attributes),
        "program_ids": [rule.program_id],
    }
    variables = {"event": event, "participant": participant, "now": now}
    [record], matched = evaluate([compiled], variables, now)
    summary = RuleSummary(
        id=rule.id, name=rule.name, condition=rule.condition, order=rule.order, stop_after_match=rule.stop_after_match
    )
    if record.reason is not None and record.reason.startswith("CONDITION_"):
        return Simulation(
            rule=summary, evaluation=SimulationOutcome(matched=False, status="condition_failed", reason=record.reason)
        )
    results = (
        [ActionOutcome(action=action.action, result=_describe(action, variables, state)) for action in compiled.actions]
        if matched
        else []
    )
    return Simulation(
        rule=summary,
        evaluation=SimulationOutcome(matched=bool(matched), status="evaluated", reason=record.reason, results=results),
    )


def _describe(compiled: CompiledAction, variables: dict[str, Any], state: MockState) -> ActionResult:
    """One action's would-be effect, or its error, without touching any state."""
    action = compiled.action
    target = "participant" if action.target is None or action.target.external_id is None else "target participant"
    try:
        if isinstance(action, CreditAction | DebitAction):
            assert compiled.asset is not None
            amount = format_minor(resolve_amount(compiled, compiled.asset, variables), compiled.asset.scale)
            verb = "Credit" if isinstance(action, CreditAction) else "Debit"
            return ActionResult(
                amount=amount,
                asset_symbol=compiled.asset.symbol,
                description=f"{verb} {amount} {compiled.asset.symbol} to {target}",
            )
        if isinstance(action, CounterAction):
            delta = resolve_counter_delta(compiled, variables)
            current = _mock_counter(state.counters.get(action.key, 0))
            projected = add_counter(current, delta)  # the bounds and exactness processing applies
            return ActionResult(
                current_value=str(current),
                value=str(delta),
                projected_value=str(projected),
                description=f"Add {delta} to counter {action.key!r} of {target}",
            )
        if isinstance(action, TagAction | UntagAction):
            return _describe_tag(action, state, target)
        if isinstance(action, HoldAction | ReleaseAction | ForfeitAction | VoidHoldAction):
            return _describe_hold_kind(compiled, action, variables, target)
        if isinstance(action, ScheduleEventAction):  # the hosted §4.6: a description only
            delay = f" after {action.delay}" if action.delay else ""
            return ActionResult(description=f"Schedule event {action.event_name!r} for {target}{delay}")
        if isinstance(action, BroadcastAction):
            return ActionResult(
                description=f"Broadcast event {action.event_name!r} to every participant of the program"
            )
        if isinstance(action, SetTierAction):  # resolved against the tier definitions only when processed
            return ActionResult(
                value=action.level, description=f"Set tier {action.tier!r} of {target} to {action.level!r}"
            )
        assert isinstance(action, SetAttributeAction)
        value = attribute_text(compiled, variables)
        current_value = state.attributes.get(action.key)
        return ActionResult(
            current_value=current_value,
            value=value,
            would_change=current_value != value,
            description=f"Set attribute {action.key!r} of {target} to {value!r}",
        )
    except (ActionFailed, ScripError) as error:
        message = error.message if isinstance(error, ScripError) else str(error)
        return ActionResult(description=f"{compiled.label} would fail", error=message)


def _describe_hold_kind(
    compiled: CompiledAction,
    action: HoldAction | ReleaseAction | ForfeitAction | VoidHoldAction,
    variables: dict[str, Any],
    target: str,
) -> ActionResult:
    """HOLD, RELEASE, FORFEIT: amount, asset and a description (the hosted API's §4.6); VOID_HOLD: a description
    only (the amount is whatever the authorization holds, which a simulation does not look up)."""
    asset = compiled.asset
    assert asset is not None
    verb = {HoldAction: "Hold", ReleaseAction: "Release", ForfeitAction: "Forfeit", VoidHoldAction: "Void hold"}[
        type(action)
    ]
    if isinstance(action, VoidHoldAction) or compiled.amount is None:
        whole = "the provisional lots" if isinstance(action, VoidHoldAction) else "all"
        return ActionResult(asset_symbol=asset.symbol, description=f"{verb} {whole} {asset.symbol} of {target}")
    amount = format_minor(resolve_amount(compiled, asset, variables), asset.scale)
    return ActionResult(
        amount=amount, asset_symbol=asset.symbol, description=f"{verb} {amount} {asset.symbol} of {target}"
    )


def _mock_counter(value: Any) -> Decimal:
    """A mock counter as the decimal a stored counter would be (bounded like one)."""
    try:
        return check_counter(Decimal(str(value)), "participant_state.counters")
    except InvalidOperation:
        raise ValidationFailed.field("participant_state.counters", "invalid", "counters are numbers") from None


def _describe_tag(action: TagAction | UntagAction, state: MockState, target: str) -> ActionResult:
    current = sorted(tag.lower() for tag in state.tags)
    tag = action.tag.lower()
    if isinstance(action, TagAction):
        return ActionResult(current_tags=current, would_add=tag not in current, description=f"Tag {target} {tag!r}")
    return ActionResult(current_tags=current, would_remove=tag in current, description=f"Untag {target} {tag!r}")


def _counter_value(key: str, value: float | int | str) -> float:
    """A mock counter as CEL sees it (a double); text must be a finite decimal number, else a 400."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed.field(
            f"participant_state.counters.{key}", "invalid", f"counter {key!r} must be a finite number, got {value!r}"
        )
    return number
