"""Benchmark: our CEL compiler vs cel-python's evaluators vs a hand-written lambda.

Run ``python -m bench.cel`` (add ``--json`` for machine-readable output). For each rule it prints
the median time per evaluation of:

- ``compiled``: `scrip_actor.cel.compile_expression(...).evaluate(variables)`;
- ``celpy``: cel-python's default (interpreting) runner;
- ``celpy_compiled``: cel-python's CompiledRunner. It runs in a *child process*, because
  cel-python keeps one parser singleton whose tree class depends on the first runner kind that
  created it; mixing runner kinds in one process breaks one of them. Its ``has()`` fails
  ("error" in the table);
- ``lambda``: a hand-written Python lambda over the same dicts, the floor.

cel-python gets its activation converted to celtypes once, up front: we time evaluation only
(per-evaluation ``json_to_cel`` would add 20-60 us more, see DESIGN.md section 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from typing import Any

UTC = dt.UTC
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VARIABLES: dict[str, Any] = {
    "event": {
        "type": "purchase",
        "amount": 120.0,
        "sku": "SKU-1001",
        "store": "berlin-01",
        "channel": "web",
        "at": dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        "meta": {"campaign": "spring"},
        "items": [{"sku": "A", "price": 20.0}, {"sku": "B", "price": 80.0}, {"sku": "C", "price": 5.0}],
    },
    "participant": {"tier": "gold", "visits": 12},
    "now": NOW,
}

_SIX_HOURS = dt.timedelta(hours=6)
_TIERS = frozenset({"gold", "platinum"})

#: name -> (CEL text, equivalent hand-written lambda)
RULES: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "type_equals": ("event.type == 'purchase'", lambda v: v["event"]["type"] == "purchase"),
    "amount_threshold": ("event.amount >= 100.0", lambda v: v["event"]["amount"] >= 100.0),
    "tier_in_list": (
        "participant.tier in ['gold', 'platinum']",
        lambda v: v["participant"]["tier"] in _TIERS,
    ),
    "two_clauses": (
        "event.type == 'purchase' && event.amount >= 50.0",
        lambda v: v["event"]["type"] == "purchase" and v["event"]["amount"] >= 50.0,
    ),
    "string_functions": (
        "event.sku.startsWith('SKU-') && event.store.endsWith('-01')",
        lambda v: v["event"]["sku"].startswith("SKU-") and v["event"]["store"].endswith("-01"),
    ),
    "has_then_compare": (
        "has(event.meta.campaign) && event.meta.campaign == 'spring'",
        lambda v: "campaign" in v["event"]["meta"] and v["event"]["meta"]["campaign"] == "spring",
    ),
    "five_clauses": (
        "event.type == 'purchase' && event.amount >= 100.0 && participant.tier in ['gold', 'platinum']"
        " && event.channel != 'refund' && !has(event.coupon)",
        lambda v: (
            v["event"]["type"] == "purchase"
            and v["event"]["amount"] >= 100.0
            and v["participant"]["tier"] in _TIERS
            and v["event"]["channel"] != "refund"
            and "coupon" not in v["event"]
        ),
    ),
    "exists_macro": (
        "event.items.exists(i, i.price > 50.0)",
        lambda v: any(item["price"] > 50.0 for item in v["event"]["items"]),
    ),
    "time_window": (
        "now - event.at < duration('6h')",
        lambda v: v["now"] - v["event"]["at"] < _SIX_HOURS,
    ),
}


def _median_seconds(function: Callable[[], Any], budget_s: float = 0.05, repeats: int = 7) -> float:
    """Median seconds per call over `repeats` timing runs of about `budget_s` each."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    number = max(1, int(number * budget_s / 0.2))
    return statistics.median(t / number for t in timer.repeat(repeat=repeats, number=number))


def _celpy_times(runner: str) -> dict[str, float | None]:
    """Median seconds per evaluation under one cel-python runner kind (None: it errors)."""
    import celpy
    from celpy import celtypes

    runner_class = celpy.CompiledRunner if runner == "compiled" else celpy.InterpretedRunner
    environment = celpy.Environment(runner_class=runner_class)
    activation = {
        "event": celpy.json_to_cel({k: v for k, v in VARIABLES["event"].items() if k != "at"}),
        "participant": celpy.json_to_cel(VARIABLES["participant"]),
        "now": celtypes.TimestampType(NOW),
    }
    activation["event"][celtypes.StringType("at")] = celtypes.TimestampType(VARIABLES["event"]["at"])
    times: dict[str, float | None] = {}
    for name, (text, _) in RULES.items():
        try:
            program = environment.program(environment.compile(text))
            program.evaluate(activation)
        except Exception:  # has() under CompiledRunner, for one
            times[name] = None
            continue
        times[name] = _median_seconds(lambda p=program: p.evaluate(activation), budget_s=0.03, repeats=5)
    return times


def _child_celpy(runner: str) -> dict[str, float | None]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.cel", f"--celpy-worker={runner}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float | None] = json.loads(output)
    return result


def measure() -> dict[str, Any]:
    """Time every rule under every evaluator; returns a JSON-ready dict (times in microseconds)."""
    from scrip_actor.cel import compile_expression

    interpreted = _child_celpy("interpreted")
    compiled_runner = _child_celpy("compiled")
    rows = []
    for name, (text, hand_written) in RULES.items():
        expression = compile_expression(text)
        assert expression.evaluate(VARIABLES) == hand_written(VARIABLES), name
        ours = _median_seconds(lambda e=expression: e.evaluate(VARIABLES))
        floor = _median_seconds(lambda f=hand_written: f(VARIABLES))
        celpy_s = interpreted[name]
        celpy_compiled_s = compiled_runner[name]
        rows.append(
            {
                "rule": name,
                "text": text,
                "compiled_us": ours * 1e6,
                "celpy_us": None if celpy_s is None else celpy_s * 1e6,
                "celpy_compiled_us": None if celpy_compiled_s is None else celpy_compiled_s * 1e6,
                "lambda_us": floor * 1e6,
                "celpy_over_compiled": None if celpy_s is None else celpy_s / ours,
                "compiled_over_lambda": ours / floor,
            }
        )
    return {"python": platform.python_version(), "machine": platform.machine(), "rules": rows}


def _cell(value: float | None, digits: int = 2) -> str:
    return "error" if value is None else f"{value:.{digits}f}"


def _print_table(report: dict[str, Any]) -> None:
    print(f"CEL evaluation, median us per evaluation (Python {report['python']}, {report['machine']})")
    header = f"{'rule':<18} {'compiled':>9} {'celpy':>9} {'celpy-CR':>9} {'lambda':>8} {'celpy/ours':>11} {'ours/lambda':>12}"
    print(header)
    print("-" * len(header))
    for row in report["rules"]:
        print(
            f"{row['rule']:<18} {_cell(row['compiled_us'], 3):>9} {_cell(row['celpy_us'], 1):>9}"
            f" {_cell(row['celpy_compiled_us'], 1):>9} {_cell(row['lambda_us'], 3):>8}"
            f" {_cell(row['celpy_over_compiled'], 0):>10}x {_cell(row['compiled_over_lambda'], 2):>11}x"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--celpy-worker", choices=["interpreted", "compiled"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.celpy_worker:
        print(json.dumps(_celpy_times(arguments.celpy_worker)))
        return
    report = measure()
    if arguments.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)


if __name__ == "__main__":
    main()
