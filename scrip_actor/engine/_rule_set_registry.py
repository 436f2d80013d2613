"""Numbered rule sets: which rules (ids, versions, names, by order) an event's evaluations refer to.

An outcome stores one letter per rule instead of ten records with ids and names (scrip_actor._event_records); the
letters mean something only next to the list of rules they were evaluated against. That list changes only when
a program's rules or assets change, so each distinct one is stored once under a small number, in the same record
as the first outcome that uses it (so it is durable whenever that outcome is), and looked up in memory after.
"""

from __future__ import annotations

import msgspec

from scrip_actor._event_records import RuleSetMembers
from scrip_actor.rules import CompiledRule
from scrip_actor.store import Op, Store, be32, encode, unbe32

__all__ = ["RuleSetRegistry"]

# How many compiled lists are remembered by identity (each recompile makes one; a cache, so it may forget).
_LISTS_REMEMBERED_MAX = 4096


class RuleSetRegistry:
    """Rule set numbers, from the ``rule_sets`` database and assigned as new sets are first used."""

    def __init__(self) -> None:
        self.members: dict[int, RuleSetMembers] = {}
        self._numbers: dict[tuple[tuple[str, int], ...], int] = {}
        # id(list) -> (the list, its number): the hot path's lookup, no tuple built per event. The list is held
        # so that its id cannot be reused by another list while it is remembered.
        self._by_list: dict[int, tuple[list[CompiledRule], int]] = {}

    def load(self, store: Store) -> None:
        """Read every stored rule set (at open)."""
        for key, raw in store.scan("rule_sets"):
            number = unbe32(key)
            members = [tuple(member) for member in msgspec.json.decode(raw, type=list[tuple[str, int, str]])]
            self._remember(number, members)  # type: ignore[arg-type]

    def number_of(self, rules: list[CompiledRule]) -> tuple[int, Op | None]:
        """The number of the set ``rules`` form (0: empty), and the op that stores it if it is new."""
        if not rules:
            return 0, None
        known = self._by_list.get(id(rules))
        if known is not None and known[0] is rules:
            return known[1], None
        members: RuleSetMembers = [(compiled.rule.id, compiled.rule.version, compiled.rule.name) for compiled in rules]
        key = tuple((rule_id, version) for rule_id, version, _ in members)
        number = self._numbers.get(key)
        op: Op | None = None
        if number is None:
            number = len(self.members) + 1
            self._remember(number, members)
            op = ("rule_sets", be32(number), encode(members))
        if len(self._by_list) >= _LISTS_REMEMBERED_MAX:
            self._by_list.clear()
        self._by_list[id(rules)] = (rules, number)
        return number, op

    def _remember(self, number: int, members: RuleSetMembers) -> None:
        assert number not in self.members, f"rule set {number} is stored twice"
        assert number == len(self.members) + 1, "rule sets are numbered 1, 2, 3... without gaps"
        self.members[number] = members
        self._numbers[tuple((rule_id, version) for rule_id, version, _ in members)] = number
