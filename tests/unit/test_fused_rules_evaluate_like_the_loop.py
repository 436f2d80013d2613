"""A rule list fused into one generated function evaluates exactly like the loop in ``evaluate``: the same
records in the same order, the same matched rules — errors, non-boolean results, time windows, cost budgets and
``stop_after_match`` chains included — and a list changed in place is fused again, never misread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor._event_records import evaluation_codes
from scrip_actor.model import Rule, TagAction
from scrip_actor.rules import CompiledRule, compile_rule, evaluate, event_variables, fused_evaluate

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONDITIONS = [
    "true",
    "false",
    "event.amount > 10.0",
    "event.missing > 1.0",  # an error: no such key
    "event.amount",  # not a boolean
    "'vip' in participant.tags",
    "event.items.all(x, x > 0.0) && event.items.size() > 2",
    "event.name.startsWith('a')",
]
_rule_specs = st.lists(
    st.tuples(
        st.sampled_from(CONDITIONS),
        st.booleans(),  # stop_after_match
        st.sampled_from([None, -1, 1]),  # active_from: none, in the past, in the future (days)
        st.sampled_from([None, -1, 1]),  # active_to
    ),
    max_size=8,
)


def _rules(specs: list[tuple[str, bool, int | None, int | None]]) -> list[CompiledRule]:
    def at(days: int | None) -> datetime | None:
        return None if days is None else T0 + timedelta(days=days)

    rules = [
        Rule(
            id=f"r{n}",
            program_id="p",
            name=f"r{n}",
            condition=condition,
            actions=[TagAction(tag="t")],
            order=n,
            stop_after_match=stop,
            active_from=at(start),
            active_to=at(end),
            created_at=T0,
            updated_at=T0,
        )  # fmt: skip
        for n, (condition, stop, start, end) in enumerate(specs)
    ]
    return [compile_rule(rule, {}) for rule in rules]


def _variables(data: dict[str, Any], cost_max: int) -> dict[Any, Any]:
    participant = {"id": "x", "external_id": "x", "status": "ACTIVE", "tags": ["vip"], "counters": {},
                   "attributes": {}, "program_ids": []}  # fmt: skip
    return event_variables(data, participant, T0, cost_max)


@settings(max_examples=300, deadline=None)
@given(
    specs=_rule_specs,
    amount=st.floats(0, 20),
    items=st.lists(st.floats(-1, 1), max_size=4),
    cost_max=st.sampled_from([3, 20, 20_000]),
)
def test_the_fused_function_gives_what_the_loop_gives(
    specs: list[tuple[str, bool, int | None, int | None]], amount: float, items: list[float], cost_max: int
) -> None:
    rules = _rules(specs)
    data = {"amount": amount, "items": items, "name": "alice"}
    expected = evaluate(rules, _variables(data, cost_max), T0)
    got = fused_evaluate(rules, _variables(data, cost_max), T0)
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    assert (got[2], got[3]) == evaluation_codes(expected[0])  # the letters the stored outcome would have had


def test_a_list_changed_in_place_is_fused_again() -> None:
    rules = _rules([("true", False, None, None)])
    data = {"amount": 1.0, "items": [], "name": "b"}
    assert [e.status for e in fused_evaluate(rules, _variables(data, 20_000), T0)[0]] == ["MATCHED"]
    rules[0] = _rules([("false", False, None, None)])[0]
    assert [e.status for e in fused_evaluate(rules, _variables(data, 20_000), T0)[0]] == ["NOT_MATCHED"]
    rules.append(_rules([("true", True, None, None)])[0])
    assert [e.status for e in fused_evaluate(rules, _variables(data, 20_000), T0)[0]] == ["NOT_MATCHED", "MATCHED"]
