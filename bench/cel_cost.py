"""Benchmark: the worst CEL work one event can cause under the cost budget (docs/limits.md, "CEL evaluation cost").

Run ``python -m bench.cel_cost`` (``--json`` for machines, ``--units N`` for another budget). For each hostile
condition over a 60 KB event it prints the wall time until the budget stops it (median of ``--repeat`` runs) and
the units it charged; then the uncharged floor: 1,000 rules (``limits.rules_per_program_max``) of up to 32 nodes
(``STATIC_FREE_NODES_MAX``) doing the most expensive free work, all sharing one budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from typing import Any

from scrip_actor.cel import COST_KEY, CelCostExceeded, CelEvaluationError, CostBudget, compile_expression
from scrip_actor.config import Limits

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
EVENT: dict[str, Any] = {
    "s": "ab" * 30_000,
    "t": "ab" * 30_000,
    "s256": "ab" * 128,
    "l": [float(i) for i in range(20_000)],
    "sl": [str(i) for i in range(8_000)],
    "nested": [[float(i) for i in range(10_000)]],
    "nested2": [[float(i) for i in range(10_000)]],
    "digits": "1" * 60_000,
    "d": "1h" * 100,
    "ts": "2024-05-01T12:00:00.123456+02:00",
    "m": {"a": 1.0},
}
HOSTILE = {
    "nested map concatenating 60 KB": "[1,2,3].map(a, [1,2,3].map(b, event.s + event.s + event.s)).size() > 0",
    "string doubling x20": "[event.s]" + ".map(a, a + a)" * 20 + ".size() == 1",
    "three nested ranges": "event.l.map(a, event.l.map(b, event.l.map(c, a))).size() > 0",
    "all(all(true))": "event.l.all(a, event.l.all(b, true))",
    "list building": "event.l.map(x, event.l + event.l).size() > 0",
    "matches 60 KB in a loop": "event.l.exists(x, event.s.matches('(a|b|c)*x$'))",
    "matches 256 chars in a loop": "event.l.exists(x, event.s256.matches('(a|b)*c(d|e)*f(g|h)+[a-z]{3,9}x$'))",
    "deep equality in a loop": "event.l.exists(x, event.nested == event.nested2 && false)",
    "in list of strings": "event.sl.exists(x, x in event.sl && false)",
    "sets over every pair": "sets.intersects(event.l, event.l.map(x, -x - 1.0))",
    "120 scans of 60 KB": " || ".join(f"event.s.contains('zz{i}')" for i in range(120)),
    "int() of 60 KB in a loop": "event.l.exists(x, int(event.digits) == 1)",
    "absorbed errors": "event.l.exists(x, x.foo)",
    "absorbed errors in ||": "event.l.exists(x, event.m[string(x)] == 1.0 || event.m.b == 1.0)",
    "duration() parsing": "event.l.exists(x, duration(event.d) < duration('1s'))",
    "time zones": "event.l.exists(x, timestamp(event.ts).getHours('America/New_York') == 99)",
    "round()": "event.l.exists(x, round(x * 1.0001, 3) < 0.0)",
    "filter inside map": "event.l.map(x, event.l.filter(y, y > x)).size() > 0",
}
#: Free work (no charge): 32 nodes of a 256-character contains, or a top-level error, per rule.
FREE_RULES = {
    "1,000 rules of 7 free contains": " || ".join(f"event.s256.contains('zz{i}')" for i in range(7)),
    "1,000 rules failing": "event.m.missing == 1.0",
}


def _time_one(text: str, units: int, repeat: int) -> dict[str, Any]:
    expression = compile_expression(text)
    times_ms: list[float] = []
    budget = CostBudget(units)
    outcome = "?"
    for _ in range(repeat):
        budget = CostBudget(units)
        started = time.perf_counter()
        try:
            outcome = repr(expression.evaluate({"event": EVENT, "now": NOW, COST_KEY: budget}))
        except CelCostExceeded:
            outcome = "cost exceeded"
        except CelEvaluationError as error:
            outcome = f"error: {error.message}"
        times_ms.append((time.perf_counter() - started) * 1e3)
    return {"ms": statistics.median(times_ms), "units": budget.units_used, "outcome": outcome}


def _time_rules(text: str, units: int, repeat: int, rules: int) -> dict[str, Any]:
    expressions = [compile_expression(text) for _ in range(rules)]
    times_ms: list[float] = []
    budget = CostBudget(units)
    for _ in range(repeat):
        budget = CostBudget(units)
        variables = {"event": EVENT, "now": NOW, COST_KEY: budget}
        started = time.perf_counter()
        for expression in expressions:
            try:  # noqa: SIM105 - the shape of rules.evaluate, not contextlib's slower one
                expression.evaluate(variables)
            except CelEvaluationError:
                pass
        times_ms.append((time.perf_counter() - started) * 1e3)
    return {"ms": statistics.median(times_ms), "units": budget.units_used, "outcome": f"{rules} rules"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=Limits().cel_cost_per_event_max, help="the budget per event")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    results = {name: _time_one(text, arguments.units, arguments.repeat) for name, text in HOSTILE.items()}
    rules = Limits().rules_per_program_max
    for name, text in FREE_RULES.items():
        results[name] = _time_rules(text, arguments.units, arguments.repeat, rules)
    worst = max(results, key=lambda name: results[name]["ms"])
    if arguments.json:
        print(json.dumps({"units": arguments.units, "results": results, "worst": worst}))
        return
    print(f"budget: {arguments.units} units per event; median of {arguments.repeat}")
    for name, result in results.items():
        print(f"  {name:34} {result['ms']:7.2f} ms  {result['units']:>9} units  {result['outcome']}")
    print(f"worst: {worst}, {results[worst]['ms']:.2f} ms")


if __name__ == "__main__":
    main()
