"""The catalog: programs, assets and rules — what a program is and what its rules do — and their versions.

These are the slow-changing nouns an event is judged against. All of them live in memory for the engine's life
(a program has at most ``rules_per_program_max`` rules; there are few programs and assets), loaded at recovery and
written through to the store, so the step reads them without I/O.

The one derived structure is ``compiled``: per program, its ACTIVE rules compiled (CEL and actions) and sorted by
order — exactly what the step runs. The catalog keeps it in step with every change that can alter it (a rule
created or changed, an asset changed), and swaps it in with no await in between, so no event ever runs against
rules compiled for assets that are not (yet, or any longer) the engine's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from scrip_actor._rule_sets import HistoricalRuleSets
from scrip_actor.amounts import format_minor, parse_decimal, to_minor
from scrip_actor.budgets import checked_budgets
from scrip_actor.config import Limits
from scrip_actor.durations import utc
from scrip_actor.engine._ordering import mentions, page_sorted
from scrip_actor.engine._queries import decode_key_cursor, encode_key_cursor, page_in_memory, page_size
from scrip_actor.engine._validation import new_id, positive_minor, validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.ledger import World
from scrip_actor.model import (
    Asset,
    AssetCreate,
    AssetUpdate,
    Page,
    Program,
    ProgramCreate,
    ProgramUpdate,
    Rule,
    RuleCreate,
    RuleUpdate,
    RuleVersion,
)
from scrip_actor.rules import CompiledRule, compile_condition, compile_rule
from scrip_actor.store import Op, Store, Writer, be32, encode


class Catalog:
    """Programs, assets and rules in memory, written through to the store; each change returns once durable.

    Args:
        store: read for what memory does not hold (asset symbols ever used, rule version history).
        writer: where changes are appended; a change returns once its record is durable.
        world: the ledger's shared state; its ``assets`` are the catalog's assets (the step reads them there).
        limits: the input bounds (rules per program, actions per rule, condition length, page size).
        clock: wall-clock source for ``created_at``/``updated_at``.
        cel_backend: which CEL compiler the running rules use (``config.engine.cel_backend``).
        inbox_sequence: the last inbox position handed out; a rule change applies from the next one, so an event
            already queued keeps the rules it was admitted under (``_rule_sets``).
    """

    def __init__(
        self,
        *,
        store: Store,
        writer: Writer,
        world: World,
        limits: Limits,
        clock: Callable[[], datetime],
        cel_backend: str,
        inbox_sequence: Callable[[], int],
    ) -> None:
        self._store = store
        self._writer = writer
        self._world = world
        self._limits = limits
        self._clock = clock
        self._inbox_sequence = inbox_sequence
        self.cel_compiler = expression_compiler(cel_backend)
        self.programs: dict[str, Program] = {}
        self.rules: dict[str, Rule] = {}
        self.compiled: dict[str, list[CompiledRule]] = {}  # program id -> active rules by order
        self.on_rule_stored: Callable[[Rule], list[Op]] | None = None  # the budgets' records of a stored rule

    async def _durable(self, ops: list[Op]) -> None:
        await self._writer.wait_durable(self._writer.append(ops))

    # --- lookups and the compiled rules ------------------------------------------------------------------------

    def load(self) -> None:
        """Read programs, assets and rules back from the store (on open) and compile each program's rules."""
        for _, raw in self._store.scan("programs"):
            program = msgspec.json.decode(raw, type=Program)
            self.programs[program.id] = program
        for _, raw in self._store.scan("assets"):
            asset = msgspec.json.decode(raw, type=Asset)
            self._world.assets[asset.id] = asset
        for _, raw in self._store.scan("rules"):
            rule = msgspec.json.decode(raw, type=Rule)
            self.rules[rule.id] = rule
        for program_id in self.programs:
            self.recompile(program_id)

    def program(self, program_id: str) -> Program:
        """One program; NotFound if there is none."""
        program = self.programs.get(program_id)
        if program is None:
            raise NotFound("program", program_id)
        return program

    def asset(self, asset_id: str) -> Asset:
        """One asset; NotFound if there is none."""
        asset = self._world.assets.get(asset_id)
        if asset is None:
            raise NotFound("asset", asset_id)
        return asset

    def rule(self, rule_id: str) -> Rule:
        """One rule; NotFound if there is none."""
        rule = self.rules.get(rule_id)
        if rule is None:
            raise NotFound("rule", rule_id)
        return rule

    def recompile(self, program_id: str) -> None:
        """Compile the program's ACTIVE rules afresh against today's assets."""
        self.compiled[program_id] = self.compiled_rules(program_id, self._world.assets)

    def rule_history_sets(self) -> HistoricalRuleSets:
        """Every stored rule version, to find the rules in force at a re-delivered event's position."""
        versions = (msgspec.json.decode(raw, type=RuleVersion) for _, raw in self._store.scan("rule_versions"))
        assets = self._world.assets
        return HistoricalRuleSets(
            versions, lambda rules: [compile_rule(rule, assets, self.cel_compiler, strict=False) for rule in rules]
        )

    def compiled_rules(self, program_id: str, assets: dict[str, Asset]) -> list[CompiledRule]:
        """A program's ACTIVE rules, compiled, by order.

        Stored rules compile leniently: one whose asset changed since it was checked (archived, unlinked, a lower
        max_transaction_amount) still runs, and its action fails the event with the reason, rather than the rule
        silently vanishing or the asset change being refused.
        """
        active = sorted(
            (rule for rule in self.rules.values() if rule.program_id == program_id and rule.status == "ACTIVE"),
            key=lambda rule: rule.order,
        )
        return [compile_rule(rule, assets, self.cel_compiler, strict=False) for rule in active]

    # --- programs ----------------------------------------------------------------------------------------------

    async def create_program(self, request: ProgramCreate) -> Program:
        """Create a program (status ACTIVE)."""
        request = validated(request)
        now = self._clock()
        program = Program(
            id=new_id(),
            name=request.name,
            description=request.description,
            on_unknown_participant=request.on_unknown_participant,
            created_at=now,
            updated_at=now,
        )
        self.programs[program.id] = program
        self.compiled[program.id] = []
        await self._durable([("programs", program.id.encode(), encode(program))])
        return program

    def list_programs(
        self,
        *,
        include_archived: bool,
        status: str | None,
        limit: int,
        cursor: str | None,
        search: str | None = None,
        sort_by: str = "created_at",
        sort_dir: str | None = None,
    ) -> Page:
        """Programs, newest first (``sort_by`` created_at or name, ``sort_dir``); archived ones only when asked
        for; ``search``: a case-insensitive part of the name."""
        programs = [
            p
            for p in self.programs.values()
            if (include_archived or p.status != "ARCHIVED" or status == "ARCHIVED")
            and (status is None or p.status == status)
            and mentions(search, (p.name,))
        ]
        limit = page_size(limit, self._limits)
        return page_sorted(programs, sort_by=sort_by, sort_dir=sort_dir, limit=limit, cursor=cursor)

    async def update_program(self, program_id: str, request: ProgramUpdate) -> Program:
        """Change a program's name, description, policy or status."""
        request = validated(request)
        program = self.program(program_id)
        changes = {
            name: getattr(request, name) for name in request.__struct_fields__ if getattr(request, name) is not None
        }
        if not changes:
            raise ValidationFailed("give at least one field to change")
        updated = msgspec.structs.replace(program, **changes, updated_at=self._clock())
        self.programs[program_id] = updated
        await self._durable([("programs", program_id.encode(), encode(updated))])
        return updated

    # --- assets ------------------------------------------------------------------------------------------------

    async def create_asset(self, request: AssetCreate) -> Asset:
        """Create an asset and link it to ``program_id``. Symbols are unique (case-insensitive)."""
        request = validated(request)
        self.program(request.program_id)
        symbol_key = request.symbol.upper().encode()
        if self._store.get_raw("asset_symbols", symbol_key) is not None or any(
            a.symbol.upper() == request.symbol.upper() for a in self._world.assets.values()
        ):
            raise Conflict(f"an asset with symbol {request.symbol!r} already exists", {"field": "symbol"})
        if request.max_transaction_amount is not None:
            positive_minor(request.max_transaction_amount, request.scale, "max_transaction_amount")
        now = self._clock()
        asset = Asset(
            id=new_id(),
            name=request.name,
            symbol=request.symbol,
            inventory_mode=request.inventory_mode,
            issuance_policy=request.issuance_policy,
            scale=request.scale,
            max_transaction_amount=_normalized(request.max_transaction_amount, request.scale),
            program_ids=[request.program_id],
            created_at=now,
            updated_at=now,
        )
        self._world.assets[asset.id] = asset
        await self._durable(
            [("assets", asset.id.encode(), encode(asset)), ("asset_symbols", symbol_key, asset.id.encode())]
        )
        return asset

    def list_assets(
        self, *, program_id: str | None, status: str | None, limit: int, cursor: str | None, search: str | None = None
    ) -> Page:
        """Assets, newest first, optionally those linked to a program; ``search``: part of the symbol or name."""
        assets = [
            a
            for a in self._world.assets.values()
            if (program_id is None or program_id in a.program_ids)
            and (status is None or a.status == status)
            and mentions(search, (a.symbol, a.name))
        ]
        return page_in_memory(assets, limit=page_size(limit, self._limits), cursor=cursor)

    async def update_asset(self, asset_id: str, request: AssetUpdate) -> Asset:
        """Change name, status (ARCHIVED is one-way) or max_transaction_amount."""
        request = validated(request)
        asset = self.asset(asset_id)
        changes: dict[str, Any] = {}
        if request.name is not None:
            changes["name"] = request.name
        if request.status is not None:
            if asset.status == "ARCHIVED" and request.status != "ARCHIVED":
                raise Conflict("an archived asset cannot be re-activated")
            changes["status"] = request.status
        if request.clear_max_transaction_amount:
            changes["max_transaction_amount"] = None
        elif request.max_transaction_amount is not None:
            positive_minor(request.max_transaction_amount, asset.scale, "max_transaction_amount")
            changes["max_transaction_amount"] = _normalized(request.max_transaction_amount, asset.scale)
        if not changes:
            raise ValidationFailed("give at least one field to change")
        updated = msgspec.structs.replace(asset, **changes, updated_at=self._clock())
        self._replace_asset(updated)
        await self._durable([("assets", asset_id.encode(), encode(updated))])
        return updated

    async def link_asset(self, program_id: str, asset_id: str) -> Asset:
        """Link an existing asset to another program. Linking twice is a Conflict."""
        self.program(program_id)
        asset = self.asset(asset_id)
        if program_id in asset.program_ids:
            raise Conflict(f"asset {asset.symbol} is already linked to program {program_id}")
        updated = msgspec.structs.replace(asset, program_ids=[*asset.program_ids, program_id], updated_at=self._clock())
        self._replace_asset(updated)
        await self._durable([("assets", asset_id.encode(), encode(updated))])
        return updated

    def _replace_asset(self, asset: Asset) -> None:
        """Swap in a changed asset and the rules compiled against it, both or neither (no await in between)."""
        assets = {**self._world.assets, asset.id: asset}
        compiled = {program_id: self.compiled_rules(program_id, assets) for program_id in self.programs}
        self._world.assets[asset.id] = asset
        self.compiled.update(compiled)

    # --- rules -------------------------------------------------------------------------------------------------

    async def create_rule(self, request: RuleCreate) -> Rule:
        """Create a rule, validated and compiled now; it applies from the next event admitted."""
        request = validated(request)
        program = self.program(request.program_id)
        if program.status == "ARCHIVED":
            raise Conflict("rules of an archived program cannot be created or changed")
        siblings = [r for r in self.rules.values() if r.program_id == program.id and r.status != "ARCHIVED"]
        if len(siblings) >= self._limits.rules_per_program_max:
            raise ValidationFailed(f"a program has at most {self._limits.rules_per_program_max} rules")
        self._check_actions_count(len(request.actions))
        order = request.order if request.order is not None else max((r.order for r in siblings), default=0) + 10
        now = self._clock()
        rule = Rule(
            id=new_id(),
            program_id=program.id,
            name=request.name,
            description=request.description,
            condition=request.condition,
            actions=list(request.actions),
            order=order,
            stop_after_match=request.stop_after_match,
            active_from=utc_or_none(request.active_from, "active_from"),
            active_to=utc_or_none(request.active_to, "active_to"),
            status=request.status,
            version=1,
            created_at=now,
            updated_at=now,
            budgets=checked_budgets(list(request.budgets), program.id, self._world.assets),
        )
        self._check_rule(rule)
        version = RuleVersion(
            rule_id=rule.id,
            version=1,
            change_type="created",
            changes=[],
            changed_at=now,
            snapshot=rule,
            applies_from_sequence=self._inbox_sequence() + 1,
        )
        return await self._store_rule(rule, version)

    def _check_actions_count(self, count: int) -> None:
        if count > self._limits.actions_per_rule_max:
            raise ValidationFailed.field(
                "actions", "too_many", f"a rule has at most {self._limits.actions_per_rule_max} actions"
            )

    def _check_rule(self, rule: Rule, *, strict: bool = True) -> None:
        """Validate a rule; ``strict`` also holds its actions to the assets as they are now (see compile_rule)."""
        if len(rule.condition) > self._limits.condition_length_max:
            raise ValidationFailed.field(
                "condition", "too_long", f"condition is at most {self._limits.condition_length_max} characters"
            )
        if rule.active_from is not None and rule.active_to is not None and rule.active_to <= rule.active_from:
            raise ValidationFailed.field("active_to", "invalid", "active_to must be after active_from")
        compile_rule(rule, self._world.assets, strict=strict)
        if rule.status == "ACTIVE":
            for other in self.rules.values():
                if (
                    other.id != rule.id
                    and other.program_id == rule.program_id
                    and other.status == "ACTIVE"
                    and other.order == rule.order
                ):
                    raise Conflict(
                        f"order {rule.order} is taken by active rule {other.name!r}",
                        {"field": "order", "rule_id": other.id},
                    )

    async def _store_rule(self, rule: Rule, version: RuleVersion) -> Rule:
        self.rules[rule.id] = rule
        self.recompile(rule.program_id)
        # The rule's budget records (engine/_budgets) go in the same record as the rule.
        budget_ops = self.on_rule_stored(rule) if self.on_rule_stored is not None else []
        await self._durable(
            [
                ("rules", rule.id.encode(), encode(rule)),
                ("rule_versions", rule.id.encode() + be32(version.version), encode(version)),
                *budget_ops,
            ]
        )
        return rule

    async def update_rule(self, rule_id: str, request: RuleUpdate) -> Rule:
        """Change a rule; a new version is written to its history. Archived rules cannot change."""
        request = validated(request)
        rule = self.rule(rule_id)
        if rule.status == "ARCHIVED":
            raise Conflict("an archived rule cannot be modified")
        if self.program(rule.program_id).status == "ARCHIVED":
            raise Conflict("rules of an archived program cannot be changed")
        changes: dict[str, Any] = {}
        for name in ("name", "description", "condition", "actions", "order", "stop_after_match", "status"):
            value = getattr(request, name)
            if value is not None:
                changes[name] = list(value) if name == "actions" else value
        for name in ("active_from", "active_to"):
            if getattr(request, f"clear_{name}"):
                changes[name] = None
            elif getattr(request, name) is not None:
                changes[name] = utc_or_none(getattr(request, name), name)
        if request.budgets is not None:  # replaces them all; [] removes them
            changes["budgets"] = checked_budgets(list(request.budgets), rule.program_id, self._world.assets)
        if not changes:
            raise ValidationFailed("give at least one field to change")
        if "actions" in changes:
            self._check_actions_count(len(changes["actions"]))
        now = self._clock()
        updated = msgspec.structs.replace(rule, **changes, version=rule.version + 1, updated_at=now)
        # Changing what a rule does re-checks it fully; renaming, reordering or suspending it must stay possible
        # even when an asset changed under it since.
        self._check_rule(updated, strict="condition" in changes or "actions" in changes)
        change_type = (
            {"ARCHIVED": "archived", "SUSPENDED": "suspended", "ACTIVE": "activated"}.get(
                changes.get("status", ""), "updated"
            )
            if changes.get("status") != rule.status
            else "updated"
        )
        version = RuleVersion(
            rule_id=rule.id,
            version=updated.version,
            change_type=change_type,  # type: ignore[arg-type]
            changes=sorted(changes),
            changed_at=now,
            snapshot=updated,
            applies_from_sequence=self._inbox_sequence() + 1,
        )
        return await self._store_rule(updated, version)

    def list_rules(
        self,
        *,
        program_id: str | None,
        status: str | None,
        include_archived: bool,
        limit: int,
        cursor: str | None,
        search: str | None = None,
        sort_by: str = "order",
        sort_dir: str | None = None,
    ) -> Page:
        """Rules ordered by ``order`` (then creation), or ``sort_by`` created_at or name, ``sort_dir``;
        ``search``: a case-insensitive part of the name or description."""
        rules = [
            r
            for r in self.rules.values()
            if (program_id is None or r.program_id == program_id)
            and (status is None or r.status == status)
            and (include_archived or r.status != "ARCHIVED" or status == "ARCHIVED")
            and mentions(search, (r.name, r.description))
        ]
        limit = page_size(limit, self._limits)
        return page_sorted(rules, sort_by=sort_by, sort_dir=sort_dir, limit=limit, cursor=cursor)

    def rule_history(
        self,
        rule_id: str,
        *,
        limit: int,
        cursor: str | None,
        change_type: str | None = None,
        changed_from: datetime | None = None,
        changed_to: datetime | None = None,
    ) -> Page:
        """A rule's versions, newest first; ``change_type`` and ``changed_from``/``changed_to`` (from inclusive,
        to exclusive) filter them."""
        self.rule(rule_id)
        versions = [
            version
            for version in (
                msgspec.json.decode(raw, type=RuleVersion)
                for _, raw in self._store.scan("rule_versions", rule_id.encode(), reverse=True)
            )
            if (change_type is None or version.change_type == change_type)
            and (changed_from is None or version.changed_at >= changed_from)
            and (changed_to is None or version.changed_at < changed_to)
        ]
        if cursor:
            (before,) = decode_key_cursor(cursor, tuple[int])
            versions = [v for v in versions if v.version < before]
        limit = page_size(limit, self._limits)
        page, more = versions[:limit], len(versions) > limit
        return Page(data=page, has_more=more, next_cursor=encode_key_cursor((page[-1].version,)) if more else None)

    @staticmethod
    def validate_condition(condition: str) -> dict[str, Any]:
        """Check a CEL condition's syntax: ``{valid, message, details}``."""
        try:
            compile_condition(condition)
        except ValidationFailed as error:
            return {"valid": False, "message": error.message, "details": error.details}
        return {"valid": True, "message": "condition is valid", "details": {}}


def expression_compiler(backend: str) -> Any:
    """The CEL compiler the running rules use: ours, or cel-python as a benchmark baseline."""
    if backend == "celpy":
        from scrip_actor.cel.celpy_backend import compile_expression_celpy

        return compile_expression_celpy
    from scrip_actor.cel import compile_expression

    return compile_expression


def _normalized(amount: str | None, scale: int) -> str | None:
    return None if amount is None else format_minor(to_minor(parse_decimal(amount), scale), scale)


def utc_or_none(moment: datetime | None, field: str) -> datetime | None:
    """``moment`` in UTC (None stays None); a naive or out-of-range time is a 400 on ``field``."""
    if moment is None:
        return None
    try:
        return utc(moment)
    except (ValueError, OverflowError) as error:
        raise ValidationFailed.field(field, "invalid", str(error)) from None
