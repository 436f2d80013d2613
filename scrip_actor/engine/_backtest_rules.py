"""A backtest's proposed rule set, checked as ``POST /v1/rules`` checks a rule, then compiled as the engine does.

The proposed set is the program's whole rule set for the backtest: an item with ``rule_id`` replaces that rule
(changed), an item without one is new, and a current rule the set does not name is removed. Each item passes the
checks a stored rule passes (sizes, the CEL condition, its actions against the assets as they are now, the active
window, budgets, one ACTIVE rule per order); a failure is a 400 whose field is prefixed ``rules[i].``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from scrip_actor.backtest_model import ProposedRule
from scrip_actor.budgets import checked_budgets
from scrip_actor.config import Limits
from scrip_actor.engine._catalog import Catalog, utc_or_none
from scrip_actor.errors import ValidationFailed
from scrip_actor.model import Asset, Program, Rule
from scrip_actor.rules import CompiledRule, compile_rule

__all__ = ["current_rules", "proposed_rules"]

RuleNames = dict[str, tuple[str, str]]  # rule id -> (name, change: unchanged / changed / new)


def current_rules(catalog: Catalog, program: Program) -> tuple[list[CompiledRule], RuleNames]:
    """The program's rules as they run now (``"rules": null``)."""
    compiled = list(catalog.compiled.get(program.id, []))
    return compiled, {item.rule.id: (item.rule.name, "unchanged") for item in compiled}


def proposed_rules(
    catalog: Catalog,
    program: Program,
    proposed: list[ProposedRule],
    limits: Limits,
    assets: dict[str, Asset],
    at: datetime,
) -> tuple[list[CompiledRule], RuleNames]:
    """The proposed set checked and compiled (ACTIVE rules by order), and every rule's name and change."""
    if len(proposed) > limits.rules_per_program_max:
        raise ValidationFailed.field("rules", "too_many", f"a program has at most {limits.rules_per_program_max} rules")
    rules: list[Rule] = []
    names: RuleNames = {}
    for index, body in enumerate(proposed):
        with _prefixed(f"rules[{index}]"):
            rule, change = _checked(catalog, program, body, index, limits, assets, at)
        if rule.id in names:
            raise ValidationFailed.field(f"rules[{index}].rule_id", "duplicate", f"rule {rule.id} is proposed twice")
        names[rule.id] = (rule.name, change)
        rules.append(rule)
    taken: dict[int, str] = {}
    for index, rule in enumerate(rules):
        if rule.status != "ACTIVE":
            continue
        if rule.order in taken:
            raise ValidationFailed.field(
                f"rules[{index}].order",
                "duplicate",
                f"order {rule.order} is taken by proposed rule {taken[rule.order]!r}",
            )
        taken[rule.order] = rule.name
    active = sorted((rule for rule in rules if rule.status == "ACTIVE"), key=lambda r: (r.order, r.created_at, r.id))
    return [compile_rule(rule, assets, catalog.cel_compiler) for rule in active], names


def _checked(
    catalog: Catalog,
    program: Program,
    body: ProposedRule,
    index: int,
    limits: Limits,
    assets: dict[str, Asset],
    at: datetime,
) -> tuple[Rule, str]:
    existing = catalog.rules.get(body.rule_id) if body.rule_id is not None else None
    if body.rule_id is not None and (existing is None or existing.program_id != program.id):
        raise ValidationFailed.field("rule_id", "not_found", f"program {program.id} has no rule {body.rule_id}")
    if len(body.actions) > limits.actions_per_rule_max:
        raise ValidationFailed.field("actions", "too_many", f"a rule has at most {limits.actions_per_rule_max} actions")
    if len(body.condition) > limits.condition_length_max:
        raise ValidationFailed.field(
            "condition", "too_long", f"condition is at most {limits.condition_length_max} characters"
        )
    active_from = utc_or_none(body.active_from, "active_from")
    active_to = utc_or_none(body.active_to, "active_to")
    if active_from is not None and active_to is not None and active_to <= active_from:
        raise ValidationFailed.field("active_to", "invalid", "active_to must be after active_from")
    default_order = existing.order if existing is not None else 10 * (index + 1)
    rule = Rule(
        id=existing.id if existing is not None else f"proposed-{index + 1}",
        program_id=program.id,
        name=body.name,
        description=body.description,
        condition=body.condition,
        actions=list(body.actions),
        order=body.order if body.order is not None else default_order,
        stop_after_match=body.stop_after_match,
        active_from=active_from,
        active_to=active_to,
        status=body.status,
        version=existing.version + 1 if existing is not None else 1,
        created_at=existing.created_at if existing is not None else at,
        updated_at=at,
        budgets=checked_budgets(list(body.budgets), program.id, assets),
    )
    compile_rule(rule, assets, catalog.cel_compiler)  # strict: the actions against the assets as they are now
    if existing is None:
        return rule, "new"
    if _same_rule(existing, rule):
        return existing, "unchanged"  # the live rule itself, its version included
    return rule, "changed"


_COMPARED_FIELDS = (
    "name",
    "description",
    "condition",
    "actions",
    "order",
    "stop_after_match",
    "active_from",
    "active_to",
    "status",
    "budgets",
)


def _same_rule(existing: Rule, proposed: Rule) -> bool:
    """Whether a proposed item only restates the live rule (a set sent back whole is mostly such items)."""
    return all(getattr(existing, name) == getattr(proposed, name) for name in _COMPARED_FIELDS)


@contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    """Re-raise a ValidationFailed with its fields named under ``prefix`` (``rules[2].condition``)."""
    try:
        yield
    except ValidationFailed as error:
        details: dict[str, Any] = dict(error.details or {})
        fields = details.get("fields")
        if isinstance(fields, list) and fields:
            details["fields"] = [{**item, "field": f"{prefix}.{item.get('field', '')}"} for item in fields]
        else:
            details["fields"] = [{"field": prefix, "reason": "invalid", "message": error.message}]
        raise type(error)(f"{prefix}: {error.message}", details) from None
