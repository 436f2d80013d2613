"""Compiled rules: a CEL condition and action templates, turned into ledger operations for one event.

Pure domain code. :func:`compile_rule` validates a rule against its program's assets once (at create/update);
:func:`evaluate` decides which rules match an event, against the state as it stood when processing began;
:func:`apply_actions` performs a matched rule's actions inside a :class:`~scrip_actor.ledger.LedgerTx`, raising
:class:`~scrip_actor.ledger.ActionFailed` (which fails the whole event) with a message naming rule and action.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from scrip_actor import balance_ops, values
from scrip_actor.amounts import (
    AMOUNT_MINOR_MAX,
    SCALE_MAX,
    add_checked_counters,
    add_counter,
    from_number,
    is_decimal_literal,
    parse_decimal,
    to_minor,
)
from scrip_actor.cel import (
    COST_KEY,
    CelCompileError,
    CelCostExceeded,
    CelEvaluationError,
    CostBudget,
    compile_expression,
)
from scrip_actor.counters import window_from
from scrip_actor.durations import parse_duration, parse_time_or_duration
from scrip_actor.errors import ScripError, ValidationFailed
from scrip_actor.ledger import (
    ActionFailed,
    FollowUp,
    LedgerTx,
    ParticipantState,
    RemoteTarget,
    WalletShort,
    credit_remote,
)
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
    RuleEvaluation,
    ScheduleEventAction,
    SetAttributeAction,
    SetTierAction,
    TagAction,
    UntagAction,
    VoidHoldAction,
)

__all__ = [
    "CompiledAction",
    "CompiledRule",
    "apply_actions",
    "attribute_text",
    "cel_event_data",
    "compile_condition",
    "compile_rule",
    "evaluate",
    "event_variables",
    "fused_evaluate",
    "resolve_amount",
    "resolve_counter_delta",
]

# Refused for a participant that is not ACTIVE (the hosted API's table; VOID_HOLD, TAG... stay allowed).
_FINANCIAL = (CreditAction, DebitAction, CounterAction, HoldAction, ReleaseAction, ForfeitAction)
_HOLD_KINDS = (HoldAction, ReleaseAction, ForfeitAction, VoidHoldAction)
# Resolves an external id named by an action's target to a participant state (creating it if the program allows).
# In partitioned mode a target that lives on another partition resolves to a RemoteTarget (only a CREDIT reaches it).
TargetResolver = Callable[[str], ParticipantState | RemoteTarget]

# CompiledAction.kind: one small int per action type (the money kinds first, so ``kind <= _DEBIT`` selects them).
# The hold kinds last, so ``kind >= _HOLD`` selects them.
_CREDIT, _DEBIT, _TAG, _UNTAG, _COUNTER, _SET_ATTRIBUTE, _HOLD, _RELEASE, _FORFEIT, _VOID_HOLD = range(10)
_SET_TIER = 10  # after the hold kinds: checked before ``kind >= _HOLD``
_FOLLOW_UP = 11  # SCHEDULE_EVENT and BROADCAST: data for the publisher, also checked before ``kind >= _HOLD``
_KINDS: dict[type, int] = {
    CreditAction: _CREDIT,
    DebitAction: _DEBIT,
    TagAction: _TAG,
    UntagAction: _UNTAG,
    CounterAction: _COUNTER,
    SetAttributeAction: _SET_ATTRIBUTE,
    HoldAction: _HOLD,
    ReleaseAction: _RELEASE,
    ForfeitAction: _FORFEIT,
    VoidHoldAction: _VOID_HOLD,
    SetTierAction: _SET_TIER,
    ScheduleEventAction: _FOLLOW_UP,
    BroadcastAction: _FOLLOW_UP,
}


# Compiles CEL text into an object with ``evaluate(variables)``; the engine may swap it (benchmark baseline).
ExpressionCompiler = Callable[[str], Any]


def compile_condition(text: str, field: str = "condition", compiler: ExpressionCompiler = compile_expression) -> Any:
    """Compile a CEL expression or raise a ValidationFailed that gives the error's line and column."""
    try:
        return compiler(text)
    except CelCompileError as error:
        raise ValidationFailed(
            f"{field} is not valid CEL: {error.message} (line {error.line}, column {error.column})",
            {
                "fields": [
                    {
                        "field": field,
                        "reason": "invalid_cel",
                        "message": error.message,
                        "line": error.line,
                        "column": error.column,
                    }
                ]
            },
        ) from None


class _Value:
    """A static decimal or a compiled CEL expression producing a number."""

    __slots__ = ("expression", "static")

    def __init__(self, text: str, field: str, compiler: ExpressionCompiler) -> None:
        self.static: Decimal | None = None
        self.expression: Any = None
        if is_decimal_literal(text):
            self.static = parse_decimal(text, field)
        else:
            self.expression = compile_condition(text, field, compiler)

    def resolve(self, variables: dict[str, Any], field: str) -> Decimal:
        if self.static is not None:
            return self.static
        try:
            result = self.expression.evaluate(variables)
        except CelEvaluationError as error:
            raise ActionFailed(f"{field} expression failed: {error}") from None
        try:
            return from_number(result, field)
        except ScripError as error:
            raise ActionFailed(error.message) from None


class CompiledAction:
    """One action, validated and with its expressions compiled."""

    __slots__ = (
        "action",
        "amount",
        "asset",
        "checked_delta",
        "expires",
        "financial",
        "index",
        "invalid",
        "key",
        "kind",
        "label",
        "matures",
        "reference",
        "reset_after",
        "static_minor",
        "tag",
        "target",
        "value",
        "value_expression",
    )

    def __init__(
        self,
        action: Action,
        index: int,
        rule_name: str,
        assets: dict[str, Asset],
        program_id: str,
        compiler: ExpressionCompiler = compile_expression,
        strict: bool = True,
    ) -> None:
        self.action = action
        self.index = index
        self.label = f"rule {rule_name!r} action #{index + 1} ({_type_of(action)})"
        field = f"actions[{index}]"
        self.asset: Asset | None = None
        self.amount: _Value | None = None
        self.value: _Value | None = None
        self.value_expression: Any = None
        self.expires: timedelta | datetime | None = None
        self.matures: timedelta | datetime | None = None
        self.target: Any = None
        self.reference: Any = None  # a compiled CEL expression giving a reference_id (holds, provisional credits)
        self.static_minor: int | None = None  # a static amount, checked once against ``self.asset``
        self.tag: str | None = None  # TAG / UNTAG: canonical (values.tag)
        self.key: str | None = None  # COUNTER / SET_ATTRIBUTE: canonical (values.key)
        self.invalid: str | None = None  # lenient compile of a stored value today's bounds refuse: fails when run
        # What _apply_one dispatches on, decided here once instead of by isinstance chains for every event.
        self.kind = _KINDS[type(action)]
        self.financial = isinstance(action, _FINANCIAL)  # refused for a participant that is not ACTIVE
        self.checked_delta: Decimal | None = None  # COUNTER: a static delta that passed the API's bounds
        self.reset_after: timedelta | None = None  # COUNTER: the reset window it gives its counter
        if action.target is not None and action.target.external_id is not None:
            self.target = compile_condition(action.target.external_id, f"{field}.target.external_id", compiler)
        if getattr(action, "reference_id", None) is not None:
            self.reference = compile_condition(action.reference_id, f"{field}.reference_id", compiler)  # type: ignore[union-attr]
        if isinstance(action, (CreditAction, DebitAction, *_HOLD_KINDS)):
            self._compile_money(action, field, assets, program_id, compiler, strict)
        elif isinstance(action, TagAction | UntagAction):
            self.tag = self._canonical(values.tag, action.tag, f"{field}.tag", strict)
        elif isinstance(action, CounterAction):
            self.key = self._canonical(values.key, action.key, f"{field}.key", strict)
            self.value = _Value(action.value, f"{field}.value", compiler)
            if action.reset_after is not None:
                try:
                    self.reset_after = parse_duration(action.reset_after)
                except ValueError as error:
                    raise ValidationFailed.field(f"{field}.reset_after", "invalid", str(error)) from None
            if self.value.static is not None:  # the same bounds as the API's PUT of a counter
                try:
                    self.checked_delta = values.counter_value(self.value.static, f"{field}.value")
                except ValidationFailed:
                    if strict:
                        raise
                    # Lenient (a stored rule): add_counter refuses it again, failing each event with the reason.
        elif isinstance(action, ScheduleEventAction | BroadcastAction):
            self.reset_after = _follow_up_delay(action, field)  # the delay (a follow-up has no counter)
        elif isinstance(action, SetAttributeAction):
            self.key = self._canonical(values.key, action.key, f"{field}.key", strict)
            if (action.value is None) == (action.value_expression is None):
                raise ValidationFailed.field(
                    f"{field}.value", "invalid", "give exactly one of value or value_expression"
                )
            if action.value_expression is not None:
                self.value_expression = compile_condition(
                    action.value_expression, f"{field}.value_expression", compiler
                )

    def _canonical(self, check: Callable[[str, str], str], raw: str, field: str, strict: bool) -> str:
        """``check(raw)``; leniently (a rule stored under older bounds, being recovered), a refusal does not stop
        the engine from opening: the action keeps its raw value and fails each event it runs for, with the reason."""
        try:
            return check(raw, field)
        except ValidationFailed as error:
            if strict:
                raise
            self.invalid = error.message
            return raw

    def _compile_money(
        self,
        action: Action,
        field: str,
        assets: dict[str, Asset],
        program_id: str,
        compiler: ExpressionCompiler,
        strict: bool,
    ) -> None:
        asset = assets.get(action.asset_id)
        if asset is None:
            raise ValidationFailed.field(f"{field}.asset_id", "not_found", f"asset {action.asset_id!r} does not exist")
        if strict and program_id not in asset.program_ids:
            raise ValidationFailed.field(
                f"{field}.asset_id", "not_linked", f"asset {asset.symbol} is not linked to this program"
            )
        self.asset = asset
        if isinstance(action, (*_HOLD_KINDS, CreditAction)):
            _check_hold_fields(action, asset, field)
        if getattr(action, "amount", None) is None:
            return  # a hold kind without an amount: everything its selection holds
        self.amount = _Value(action.amount, f"{field}.amount", compiler)  # type: ignore[union-attr]
        if self.amount.static is not None:
            try:
                self.static_minor = _check_amount(self.amount.static, asset, f"{field}.amount")
            except ValidationFailed:
                if strict:
                    raise
                # Checked again when the action runs, which then fails the event with the reason.
        if isinstance(action, CreditAction):
            for name in ("expires_at", "matures_at"):
                text = getattr(action, name)
                if text is None:
                    continue
                if asset.inventory_mode != "LOT":
                    raise ValidationFailed.field(
                        f"{field}.{name}", "invalid", f"{name} needs a LOT asset; {asset.symbol} is SIMPLE"
                    )
                try:
                    parsed = parse_time_or_duration(text)
                except ValueError as error:
                    raise ValidationFailed.field(f"{field}.{name}", "invalid", str(error)) from None
                setattr(self, "expires" if name == "expires_at" else "matures", parsed)


def _check_hold_fields(action: Action, asset: Asset, field: str) -> None:
    """What the hold kinds and a provisional credit need of their asset and fields (a 400 when the rule is made)."""
    lot = asset.inventory_mode == "LOT"
    if isinstance(action, CreditAction):
        if action.bucket == "HELD" and (not lot or action.reference_id is None or action.matures_at is not None):
            raise ValidationFailed.field(
                f"{field}.bucket",
                "invalid",
                "a CREDIT to HELD is a provisional credit: it needs a LOT asset and a reference_id, and no matures_at",
            )
        if action.reference_id is not None and not lot:
            raise ValidationFailed.field(
                f"{field}.reference_id", "invalid", "reference_id on a CREDIT needs a LOT asset"
            )
    elif isinstance(action, VoidHoldAction) and not lot:
        raise ValidationFailed.field(
            f"{field}.asset_id", "invalid", f"VOID_HOLD needs a LOT asset; {asset.symbol} is SIMPLE"
        )


def _type_of(action: Action) -> str:
    return {
        CreditAction: "CREDIT",
        DebitAction: "DEBIT",
        TagAction: "TAG",
        UntagAction: "UNTAG",
        CounterAction: "COUNTER",
        SetAttributeAction: "SET_ATTRIBUTE",
        HoldAction: "HOLD",
        ReleaseAction: "RELEASE",
        ForfeitAction: "FORFEIT",
        VoidHoldAction: "VOID_HOLD",
        SetTierAction: "SET_TIER",
        ScheduleEventAction: "SCHEDULE_EVENT",
        BroadcastAction: "BROADCAST",
    }[type(action)]


FOLLOW_UP_DELAY_MAX = timedelta(days=3660)  # ten years: a later follow-up is a mistake, not a plan


def _follow_up_delay(action: ScheduleEventAction | BroadcastAction, field: str) -> timedelta | None:
    """A SCHEDULE_EVENT's delay (a duration, 0 to ten years); BROADCAST has none. The payload must be JSON."""
    if isinstance(action, BroadcastAction) or action.delay is None:
        return None
    try:
        delay = parse_duration(action.delay)
    except ValueError as error:
        raise ValidationFailed.field(f"{field}.delay", "invalid", str(error)) from None
    if not timedelta(0) <= delay <= FOLLOW_UP_DELAY_MAX:
        raise ValidationFailed.field(f"{field}.delay", "invalid", "delay must be between 0 and 87840h (ten years)")
    return delay


def _check_amount(amount: Decimal, asset: Asset, field: str) -> int:
    """Positive, within the asset's scale and its max_transaction_amount; returns minor units."""
    if amount <= 0:
        raise ValidationFailed.field(field, "invalid", f"{field} must be positive, got {amount}")
    minor = to_minor(amount, asset.scale, field)
    if asset.max_transaction_amount is not None:
        cap = to_minor(parse_decimal(asset.max_transaction_amount), asset.scale)
        if minor > cap:
            raise ValidationFailed.field(
                field,
                "above_max",
                f"{field} {amount} is above the asset's max_transaction_amount {asset.max_transaction_amount}",
            )
    return minor


class CompiledRule:
    """A rule ready to run: its record, compiled condition and actions, and its common evaluation records.

    The MATCHED, NOT_MATCHED and OUTSIDE_TIME_WINDOW records of one rule version are the same every time, so
    they are built once and shared by every event (RuleEvaluation is frozen).
    """

    __slots__ = ("_stopped", "actions", "condition", "matched", "not_matched", "outside_window", "rule")

    def __init__(self, rule: Rule, condition: Any, actions: list[CompiledAction]) -> None:
        self.rule = rule
        self.condition = condition
        self.actions = actions
        self.matched = self._record("MATCHED")
        self.not_matched = self._record("NOT_MATCHED")
        self.outside_window = self._record("SKIPPED", "OUTSIDE_TIME_WINDOW")
        self._stopped: dict[str, RuleEvaluation] = {}

    def _record(self, status: Any, reason: str | None = None, stopped_by: str | None = None) -> RuleEvaluation:
        rule = self.rule
        return RuleEvaluation(
            rule_id=rule.id,
            rule_name=rule.name,
            rule_version=rule.version,
            status=status,
            reason=reason,
            stopped_by_rule_id=stopped_by,
        )

    def skipped(self, reason: str) -> RuleEvaluation:
        """A SKIPPED record with its reason (errors differ per event, so this one is built each time)."""
        return self._record("SKIPPED", reason)

    def stopped_by(self, rule_id: str) -> RuleEvaluation:
        """The STOPPED record naming the rule that stopped this one (at most one per earlier rule: cached)."""
        record = self._stopped.get(rule_id)
        if record is None:
            record = self._stopped[rule_id] = self._record("STOPPED", "STOPPED_BY_PRIOR_RULE", rule_id)
        return record


def compile_rule(
    rule: Rule, assets: dict[str, Asset], compiler: ExpressionCompiler = compile_expression, *, strict: bool = True
) -> CompiledRule:
    """Validate and compile a rule. Raises ValidationFailed with the field and, for CEL, the position.

    ``strict=False`` compiles a rule that was valid when stored but whose asset changed since (archived, unlinked,
    a lower ``max_transaction_amount``): it still runs, and the action fails the event with the reason, instead of
    the rule vanishing or an asset change being refused. Its CEL must still compile.
    """
    condition = compile_condition(rule.condition, "condition", compiler)
    actions = [
        CompiledAction(action, index, rule.name, assets, rule.program_id, compiler, strict)
        for index, action in enumerate(rule.actions)
    ]
    return CompiledRule(rule, condition, actions)


def cel_event_data(value: Any) -> Any:
    """Event data as CEL sees it: JSON numbers are doubles (``105`` behaves like ``105.0``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: cel_event_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cel_event_data(item) for item in value]
    return value


def event_variables(event_data: Any, participant: Any, now: datetime, cel_cost_max: int) -> dict[Any, Any]:
    """The CEL variables of one event, with the cost budget that all its conditions and action expressions share.

    One budget per event, not per expression: 1,000 rules cannot each spend a whole budget (docs/limits.md).
    """
    return {"event": event_data, "participant": participant, "now": now, COST_KEY: CostBudget(cel_cost_max)}


def evaluate(
    rules: list[CompiledRule], variables: dict[str, Any], now: datetime
) -> tuple[list[RuleEvaluation], list[CompiledRule]]:
    """Run the conditions of active ``rules`` (sorted by order) and say which matched.

    A condition that errors skips its rule with the reason; it never fails the event. One that runs out of the
    event's CEL cost budget is skipped with ``CONDITION_COST_EXCEEDED``.
    """
    evaluations: list[RuleEvaluation] = []
    matched: list[CompiledRule] = []
    stopped_by: CompiledRule | None = None
    for compiled in rules:
        rule = compiled.rule
        if stopped_by is not None:
            evaluations.append(compiled.stopped_by(stopped_by.rule.id))
            continue
        if (rule.active_from is not None and now < rule.active_from) or (
            rule.active_to is not None and now >= rule.active_to
        ):
            evaluations.append(compiled.outside_window)
            continue
        try:
            result = compiled.condition.evaluate(variables)
        except CelCostExceeded as error:
            evaluations.append(compiled.skipped(f"CONDITION_COST_EXCEEDED: {error}"))
            continue
        except CelEvaluationError as error:
            evaluations.append(compiled.skipped(f"CONDITION_ERROR: {error}"))
            continue
        if result is True:
            evaluations.append(compiled.matched)
            matched.append(compiled)
            if rule.stop_after_match:
                stopped_by = compiled
        elif result is False:
            evaluations.append(compiled.not_matched)
        else:
            evaluations.append(compiled.skipped(f"CONDITION_NOT_BOOLEAN: returned {type(result).__name__}"))
    return evaluations, matched


def fused_evaluate(
    rules: list[CompiledRule], variables: dict[str, Any], now: datetime
) -> tuple[list[RuleEvaluation], list[CompiledRule], str, list[tuple[int, str]]]:
    """:func:`evaluate`, by one generated function per rule list: the same results, without the loop.

    Returns evaluate's two lists and, for the stored outcome (scrip_actor._event_records), one letter per rule —
    ``M`` matched, ``N`` not, ``O`` outside its window, ``S`` skipped, ``T`` stopped — with the skipped rules'
    ``(index, reason)``, written as the code goes instead of re-read from the records afterwards.

    The engine's rule lists live as long as the rules do (a program's compiled rules, replaced whole on a change),
    so each is turned once into straight-line Python that calls every condition in order and appends the shared
    evaluation records, with a rule's time window tested only if it has one and ``stop_after_match`` compiled in
    (DESIGN.md §3.1: ~10 µs per event on the lean prototype). The function is cached by the list's identity and
    checked against the rules it was built from, so a list changed in place is fused again, never misread.
    """
    cached = _fused.get(id(rules))
    if cached is None or cached[0] != tuple(rules):
        if len(_fused) >= _FUSED_MAX:
            _fused.clear()
        cached = _fused[id(rules)] = (tuple(rules), _fuse(rules))
    return cached[1](variables, now)  # type: ignore[no-any-return]


_fused: dict[int, tuple[tuple[CompiledRule, ...], Callable[[dict[str, Any], datetime], Any]]] = {}  # by id(list)
_FUSED_MAX = 4096


def _fuse(rules: list[CompiledRule]) -> Callable[[dict[str, Any], datetime], Any]:
    """Generate the straight-line evaluator of ``rules`` (only compiler-built names reach ``exec``)."""
    namespace: dict[str, Any] = {"_CostExceeded": CelCostExceeded, "_EvalError": CelEvaluationError, "_stop": _stop}
    lines = [
        "def evaluate_rules(v, now):",
        "    evaluations = []",
        "    matched = []",
        "    codes = []",
        "    reasons = []",
        "    add = evaluations.append",
        "    code = codes.append",
    ]
    for index, compiled in enumerate(rules):
        rule = compiled.rule
        namespace.update(
            {
                f"c{index}": compiled,
                f"cond{index}": compiled.condition.evaluate,
                f"yes{index}": compiled.matched,
                f"no{index}": compiled.not_matched,
                f"out{index}": compiled.outside_window,
                f"af{index}": rule.active_from,
                f"at{index}": rule.active_to,
            }
        )
        stop = [f"        return _stop(evaluations, matched, codes, reasons, _rules, {index})"]
        body = [
            "try:",
            f"    r = cond{index}(v)",
            "except _CostExceeded as error:",
            '    reason = f"CONDITION_COST_EXCEEDED: {error}"',
            f"    add(c{index}.skipped(reason))",
            '    code("S")',
            f"    reasons.append(({index}, reason))",
            "except _EvalError as error:",
            '    reason = f"CONDITION_ERROR: {error}"',
            f"    add(c{index}.skipped(reason))",
            '    code("S")',
            f"    reasons.append(({index}, reason))",
            "else:",
            "    if r is True:",
            f"        add(yes{index})",
            '        code("M")',
            f"        matched.append(c{index})",
            *(stop if rule.stop_after_match else []),
            "    elif r is False:",
            f"        add(no{index})",
            '        code("N")',
            "    else:",
            '        reason = "CONDITION_NOT_BOOLEAN: returned " + type(r).__name__',
            f"        add(c{index}.skipped(reason))",
            '        code("S")',
            f"        reasons.append(({index}, reason))",
        ]
        window = []
        if rule.active_from is not None:
            window.append(f"now < af{index}")
        if rule.active_to is not None:
            window.append(f"now >= at{index}")
        if window:
            lines += [f"    if {' or '.join(window)}:", f"        add(out{index})", '        code("O")', "    else:"]
            lines += ["        " + line for line in body]
        else:
            lines += ["    " + line for line in body]
    lines.append('    return evaluations, matched, "".join(codes), reasons')
    namespace["_rules"] = list(rules)  # its own copy: the cache key is checked, the code must not drift
    exec(compile("\n".join(lines) + "\n", "<rules:fused>", "exec"), namespace)
    evaluate_rules: Callable[[dict[str, Any], datetime], Any] = namespace["evaluate_rules"]
    return evaluate_rules


def _stop(
    evaluations: list[RuleEvaluation],
    matched: list[CompiledRule],
    codes: list[str],
    reasons: list[tuple[int, str]],
    rules: list[CompiledRule],
    index: int,
) -> tuple[list[RuleEvaluation], list[CompiledRule], str, list[tuple[int, str]]]:
    """After rule ``index`` matched with ``stop_after_match``: every later rule is STOPPED by it, as in evaluate."""
    stopper_id = rules[index].rule.id
    later = rules[index + 1 :]
    evaluations.extend(compiled.stopped_by(stopper_id) for compiled in later)
    codes.append("T" * len(later))
    return evaluations, matched, "".join(codes), reasons


def apply_actions(
    tx: LedgerTx,
    compiled: CompiledRule,
    participant: ParticipantState,
    variables: dict[str, Any],
    resolve_target: TargetResolver,
    assets: dict[str, Asset],
) -> None:
    """Apply one matched rule's actions in order inside ``tx``.

    Raises:
        ActionFailed: with a message naming the rule and the action; the caller drops ``tx``.
    """
    for action in compiled.actions:
        try:
            _apply_one(tx, compiled.rule, action, participant, variables, resolve_target, assets)
        except WalletShort as error:  # kept a WalletShort: partitioned mode may hold the step instead
            raise error.reworded(f"{action.label} failed: {error}") from None
        except ActionFailed as error:
            raise ActionFailed(f"{action.label} failed: {error}") from None
        except ScripError as error:
            raise ActionFailed(f"{action.label} failed: {error.message}") from None


def _apply_one(
    tx: LedgerTx,
    rule: Rule,
    compiled: CompiledAction,
    participant: ParticipantState,
    variables: dict[str, Any],
    resolve_target: TargetResolver,
    assets: dict[str, Asset],
) -> None:
    if compiled.invalid is not None:
        raise ActionFailed(compiled.invalid)
    if compiled.target is None:
        state = tx.edit(participant)  # the working copy made by an earlier action, or a new one
    else:
        target = resolve_target(_target_external_id(compiled, variables))
        if isinstance(target, RemoteTarget):
            _apply_remote(tx, rule, compiled, target, variables, assets)
            return
        state = tx.edit(target)
    if compiled.financial and state.status != "ACTIVE":
        raise ActionFailed(f"participant {state.external_id!r} is {state.status}")
    kind = compiled.kind
    if kind <= _DEBIT:
        _apply_money(tx, rule, compiled, state, variables, assets)
        return  # balances and lots are not part of the CEL view: it stays valid
    if kind == _SET_TIER:
        # Resolved after the rules against the program's tier definitions (scrip_actor.tier_effects): an
        # archived tier is skipped there, an unknown one fails the event. Allowed whatever the status.
        action = compiled.action
        assert isinstance(action, SetTierAction)
        tx.tier_sets.append((state.id, action.tier, action.level, rule.id))
        return
    if kind == _FOLLOW_UP:  # allowed whatever the status; the publisher makes it an automation (no await here)
        _note_follow_up(tx, rule, compiled, state)
        return
    if kind >= _HOLD:
        _apply_hold_kind(tx, rule, compiled, state, variables, assets)
        return
    if kind == _TAG:
        tag = compiled.tag
        assert tag is not None
        if tag in state.tags:
            return  # idempotent: nothing changed, nothing to record
        state.tags.add(tag)
        tx.note_state(state.id, "tag", tag, "add", None, tag, rule_id=rule.id)
    elif kind == _UNTAG:
        tag = compiled.tag
        assert tag is not None
        if tag not in state.tags:
            return
        state.tags.discard(tag)
        tx.note_state(state.id, "tag", tag, "remove", tag, None, rule_id=rule.id)
    elif kind == _COUNTER:
        _apply_counter(tx, rule, compiled, state, variables)
        state.counters_changed()
        return
    else:
        assert kind == _SET_ATTRIBUTE
        key = compiled.key
        assert key is not None
        old_value, new_value = state.attributes.get(key), attribute_text(compiled, variables)
        if old_value == new_value:
            return
        state.attributes[key] = new_value
        tx.note_state(state.id, "attribute", key, "set", old_value, new_value, rule_id=rule.id)
    state.invalidate()


def _target_external_id(compiled: CompiledAction, variables: dict[str, Any]) -> str:
    try:
        external_id = compiled.target.evaluate(variables)
    except CelEvaluationError as error:
        raise ActionFailed(f"target expression failed: {error}") from None
    if not isinstance(external_id, str) or not external_id:
        raise ActionFailed("target expression must give a non-empty string external_id")
    return external_id


def _note_follow_up(tx: LedgerTx, rule: Rule, compiled: CompiledAction, state: ParticipantState) -> None:
    """SCHEDULE_EVENT / BROADCAST: recorded as data in the transaction, for the publisher (docs/automations.md)."""
    action = compiled.action
    assert isinstance(action, ScheduleEventAction | BroadcastAction)
    delay = compiled.reset_after.total_seconds() if compiled.reset_after is not None else 0.0
    tx.follow_ups.append(
        FollowUp(
            participant_id=state.id,
            event_name=action.event_name,
            payload=action.payload,
            delay_s=delay,
            broadcast=isinstance(action, BroadcastAction),
            rule_id=rule.id,
        )
    )


def _apply_counter(
    tx: LedgerTx, rule: Rule, compiled: CompiledAction, state: ParticipantState, variables: dict[str, Any]
) -> None:
    key = compiled.key
    assert key is not None
    if state.counter_windows or compiled.reset_after is not None:
        current = _windowed_counter(tx, rule, compiled, state, key)
    else:
        current = state.counters.get(key)
    try:
        if compiled.checked_delta is not None:
            updated = add_checked_counters(_ZERO if current is None else current, compiled.checked_delta)
        else:
            updated = add_counter(_ZERO if current is None else current, resolve_counter_delta(compiled, variables))
    except ScripError as error:
        raise ActionFailed(f"counter {compiled.action.key!r}: {error.message}") from None  # type: ignore[union-attr]
    state.counters[key] = updated
    if updated != current:
        tx.note_state(state.id, "counter", key, "set", current, updated, rule_id=rule.id)


_ZERO = Decimal(0)


def _windowed_counter(
    tx: LedgerTx, rule: Rule, compiled: CompiledAction, state: ParticipantState, key: str
) -> Decimal | None:
    """The counter's value to add to at the event's time: reset to 0 (noted as ``auto_reset``) once its window has
    passed; the action's ``reset_after`` gives it a window from now if it had none, or a new length if it had one."""
    current = state.counters.get(key)
    window = state.counter_windows.get(key)
    if compiled.reset_after is not None and (window is None or window.reset_after != compiled.reset_after):
        start = tx.now if window is None else window.started_at
        window = window_from(compiled.reset_after, start)
    if window is None:
        return current
    moved = window.current(tx.now)
    state.counter_windows[key] = moved
    if moved is not window and current is not None and current != _ZERO:
        tx.note_state(state.id, "counter", key, "auto_reset", current, _ZERO, rule_id=rule.id)
        state.counters[key] = _ZERO
        return _ZERO
    return current


def attribute_text(compiled: CompiledAction, variables: dict[str, Any]) -> str:
    """The text a SET_ATTRIBUTE action would store. Raises ActionFailed when its expression fails."""
    action = compiled.action
    assert isinstance(action, SetAttributeAction)
    if compiled.value_expression is None:
        assert action.value is not None
        return action.value
    try:
        value = compiled.value_expression.evaluate(variables)
    except CelEvaluationError as error:
        raise ActionFailed(f"value expression failed: {error}") from None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise ActionFailed(f"value expression must give a string or number, got {type(value).__name__}")
    try:
        return values.attribute_value(text)  # the bound the API holds attribute values to
    except ScripError as error:
        raise ActionFailed(f"value expression: {error.message}") from None


def _apply_hold_kind(
    tx: LedgerTx,
    rule: Rule,
    compiled: CompiledAction,
    state: ParticipantState,
    variables: dict[str, Any],
    assets: dict[str, Asset],
) -> None:
    """HOLD, RELEASE, FORFEIT or VOID_HOLD from a rule: the operator's operation (balance_ops), with the rule's id
    on its entry. A refusal (nothing to hold, unknown reference...) fails the action, and so the event."""
    action = compiled.action
    asset = _usable_asset(rule, action.asset_id, assets)  # type: ignore[union-attr]
    amount = None if compiled.amount is None else resolve_amount(compiled, asset, variables)
    reference = _reference(compiled, variables)
    description = action.description  # type: ignore[union-attr]
    kind = compiled.kind
    if kind == _HOLD:
        balance_ops.hold(
            tx,
            state,
            asset,
            amount_minor=amount,
            selection=balance_ops.EVERYTHING,
            reference_id=reference,
            description=description,
            rule_id=rule.id,
        )
    elif kind == _VOID_HOLD:
        assert reference is not None
        balance_ops.void_hold(tx, state, asset, reference_id=reference, description=description, rule_id=rule.id)
    elif kind == _RELEASE:
        selection = balance_ops.LotSelection(reference_id=reference)
        balance_ops.release(
            tx, state, asset, amount_minor=amount, selection=selection, description=description, rule_id=rule.id
        )
    else:
        assert kind == _FORFEIT
        balance_ops.forfeit(
            tx,
            state,
            asset,
            bucket=action.bucket,  # type: ignore[union-attr]
            amount_minor=amount,
            selection=balance_ops.LotSelection(reference_id=reference),
            description=description,
            rule_id=rule.id,
        )


def _reference(compiled: CompiledAction, variables: dict[str, Any]) -> str | None:
    """The action's reference_id, evaluated: non-empty text of at most 255 characters, or the action fails."""
    if compiled.reference is None:
        return None
    try:
        reference = compiled.reference.evaluate(variables)
    except CelEvaluationError as error:
        raise ActionFailed(f"reference_id expression failed: {error}") from None
    if not isinstance(reference, str) or not 1 <= len(reference) <= _REFERENCE_LENGTH_MAX:
        raise ActionFailed(f"reference_id must give text of 1-{_REFERENCE_LENGTH_MAX} characters")
    return reference


_REFERENCE_LENGTH_MAX = 255  # as model.ReferenceId


def _usable_asset(rule: Rule, asset_id: str, assets: dict[str, Asset]) -> Asset:
    asset = assets.get(asset_id)
    if asset is None or asset.status != "ACTIVE":
        raise ActionFailed(f"asset {asset_id!r} is not active")
    if rule.program_id not in asset.program_ids:
        raise ActionFailed(f"asset {asset.symbol} is not linked to the program")
    return asset


def _apply_money(
    tx: LedgerTx,
    rule: Rule,
    compiled: CompiledAction,
    state: ParticipantState,
    variables: dict[str, Any],
    assets: dict[str, Asset],
) -> None:
    action = compiled.action
    assert isinstance(action, CreditAction | DebitAction)
    assert compiled.amount is not None
    asset = assets.get(action.asset_id)  # _usable_asset, inline: this is the hot path
    if asset is None or asset.status != "ACTIVE":
        raise ActionFailed(f"asset {action.asset_id!r} is not active")
    if rule.program_id not in asset.program_ids:
        raise ActionFailed(f"asset {asset.symbol} is not linked to the program")
    amount_minor = resolve_amount(compiled, asset, variables)
    if isinstance(action, DebitAction):
        tx.debit(
            state,
            asset,
            amount_minor,
            allow_negative=action.allow_negative,
            rule_id=rule.id,
            description=action.description,
        )
        return
    expires_at = _moment(compiled.expires, tx.now)
    if compiled.reference is not None:  # a provisional credit (to HELD), or the settle of one (to AVAILABLE)
        balance_ops.referenced_credit(
            tx,
            state,
            asset,
            amount_minor,
            program_id=rule.program_id,
            rule_id=rule.id,
            reference_id=_reference(compiled, variables),  # type: ignore[arg-type]
            held=action.bucket == "HELD",
            expires_at=expires_at,
            description=action.description,
        )
        return
    tx.credit(
        state,
        asset,
        amount_minor,
        program_id=rule.program_id,
        rule_id=rule.id,
        description=action.description,
        expires_at=expires_at,
        matures_at=_moment(compiled.matures, tx.now),
    )


def _apply_remote(
    tx: LedgerTx,
    rule: Rule,
    compiled: CompiledAction,
    target: RemoteTarget,
    variables: dict[str, Any],
    assets: dict[str, Asset],
) -> None:
    """An action whose target lives on another partition (partitioned mode): a plain CREDIT is posted into that
    partition's transit account and sent on (ledger.credit_remote); the destination checks the participant's
    status and creates it if the program allows. Any other action fails the event: it cannot be applied here,
    and applying it later elsewhere could not fail the event that caused it (docs/partitioned.md)."""
    action = compiled.action
    if compiled.kind != _CREDIT or compiled.reference is not None:
        raise ActionFailed(
            f"participant {target.external_id!r} lives on partition {target.partition}: only a CREDIT without a "
            f"reference_id reaches a participant of another partition"
        )
    assert isinstance(action, CreditAction)
    asset = _usable_asset(rule, action.asset_id, assets)
    credit_remote(
        tx,
        target,
        asset,
        resolve_amount(compiled, asset, variables),
        program_id=rule.program_id,
        rule_id=rule.id,
        description=action.description,
        expires_at=_moment(compiled.expires, tx.now),
        matures_at=_moment(compiled.matures, tx.now),
    )


def resolve_amount(compiled: CompiledAction, asset: Asset, variables: dict[str, Any]) -> int:
    """A CREDIT or DEBIT action's amount in minor units, checked: positive, within scale and max_transaction_amount.

    Raises:
        ActionFailed: the expression failed or the amount is not acceptable (the message says why).
    """
    assert compiled.amount is not None
    if compiled.static_minor is not None and asset is compiled.asset:
        return compiled.static_minor  # checked at compile time against this very asset record
    value = compiled.amount
    if value.expression is None:
        amount = value.resolve(variables, "amount")
    else:
        try:
            result = value.expression.evaluate(variables)
        except CelEvaluationError as error:
            raise ActionFailed(f"amount expression failed: {error}") from None
        minor = _plain_positive_minor(result, asset)
        if minor is not None:
            return minor
        amount = _from_result(result)
    try:
        return _check_amount(amount, asset, "amount")
    except ScripError as error:
        raise ActionFailed(error.message) from None


def _plain_positive_minor(result: object, asset: Asset) -> int | None:
    """The minor units of a CEL amount that is a plain, positive double within the asset's scale and bounds (the
    common case: ``round(event.amount * 0.05, 2)``), read from its shortest repr as :func:`from_number` does;
    None for anything else, which takes the exact Decimal path (and its precise error messages)."""
    if type(result) is not float or not result > 0.0:
        return None
    text = repr(result)
    if "e" in text or "n" in text:  # exponent forms, inf and nan: the exact path
        return None
    whole, _, fraction = text.partition(".")
    scale = asset.scale
    if len(fraction) > scale:
        return None
    minor = int(whole + fraction) * _POWERS_OF_TEN[scale - len(fraction)]
    if minor > AMOUNT_MINOR_MAX or (asset.max_transaction_amount is not None and minor > _cap_minor(asset)):
        return None
    return minor


_POWERS_OF_TEN = [10**power for power in range(SCALE_MAX + 1)]


def _cap_minor(asset: Asset) -> int:
    """An asset's max_transaction_amount in minor units (cached: the asset record is immutable)."""
    assert asset.max_transaction_amount is not None
    key = (asset.max_transaction_amount, asset.scale)
    cap = _caps.get(key)
    if cap is None:
        if len(_caps) >= 1024:
            _caps.clear()
        cap = _caps[key] = to_minor(parse_decimal(asset.max_transaction_amount), asset.scale)
    return cap


_caps: dict[tuple[str, int], int] = {}


def _from_result(result: object) -> Decimal:
    try:
        return from_number(result, "amount")
    except ScripError as error:
        raise ActionFailed(error.message) from None


def resolve_counter_delta(compiled: CompiledAction, variables: dict[str, Any]) -> Decimal:
    """What a COUNTER action adds. Raises ActionFailed when its expression fails or is not finite."""
    assert compiled.value is not None
    delta = compiled.value.resolve(variables, "value")
    if not delta.is_finite():
        raise ActionFailed("counter value is not finite")
    return delta


def _moment(spec: timedelta | datetime | None, now: datetime) -> datetime | None:
    if spec is None:
        return None
    if isinstance(spec, timedelta):
        try:
            return now + spec
        except OverflowError:
            raise ActionFailed(f"the event time plus {spec} is beyond the year 9999") from None
    return spec
