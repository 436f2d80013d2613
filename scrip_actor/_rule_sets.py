"""Which version of a program's rules applies to an event: the one in force at the event's inbox position.

A rule change records the inbox position it applies from (``RuleVersion.applies_from_sequence``: the first event
admitted after the change). Live, the engine hands each message the program's compiled rules as they stand when
the message is delivered, so an event already queued when a rule changes keeps the rules it was admitted under.
After a restart the queued events are delivered again; this module rebuilds, from the stored history, the rules
in force at each of their positions, so a replay evaluates every event exactly as the first run did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scrip_actor.model import Rule, RuleVersion

__all__ = ["HistoricalRuleSets"]


class HistoricalRuleSets:
    """Rule snapshots by position, for the events re-delivered at recovery.

    Args:
        versions: every stored rule version (any order).
        compile_rules: turns a program's ACTIVE rules (sorted by order) into what the step runs.
    """

    def __init__(self, versions: Iterable[RuleVersion], compile_rules: Callable[[list[Rule]], list]) -> None:
        self._by_program: dict[str, dict[str, list[RuleVersion]]] = {}
        for version in versions:
            rules = self._by_program.setdefault(version.snapshot.program_id, {})
            rules.setdefault(version.rule_id, []).append(version)
        for rules in self._by_program.values():
            for history in rules.values():
                history.sort(key=lambda v: v.version)
        self._last_change = {
            program_id: max(v.applies_from_sequence for history in rules.values() for v in history)
            for program_id, rules in self._by_program.items()
        }
        self._compile_rules = compile_rules
        self._memo: dict[tuple[str, int], list] = {}

    def is_current(self, program_id: str, position: int) -> bool:
        """True when no rule of the program changed after ``position``: the live rule set applies."""
        return position >= self._last_change.get(program_id, 0)

    def at(self, program_id: str, position: int) -> list:
        """The program's rules in force for an event at inbox ``position``, compiled (memoised per change point)."""
        rules = self._by_program.get(program_id, {})
        in_force: list[Rule] = []
        boundary = 0
        for history in rules.values():
            snapshot = None
            for version in history:
                if version.applies_from_sequence <= position:
                    snapshot = version.snapshot
                    boundary = max(boundary, version.applies_from_sequence)
            if snapshot is not None and snapshot.status == "ACTIVE":
                in_force.append(snapshot)
        key = (program_id, boundary)
        compiled = self._memo.get(key)
        if compiled is None:
            in_force.sort(key=lambda rule: (rule.order, rule.created_at, rule.id))
            compiled = self._memo[key] = self._compile_rules(in_force)
        return compiled
