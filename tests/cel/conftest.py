"""Shared state for the CEL tests: the conformance tally printed at the end of the session."""

from __future__ import annotations

from typing import Any

#: file stem -> {"pass": n, "skip": n, "fail": n, "error at compile time": n}
CONFORMANCE_COUNTS: dict[str, dict[str, int]] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print conformance pass/skip/fail counts per spec file (only if the suite ran)."""
    if not CONFORMANCE_COUNTS:
        return
    write = terminalreporter.write_line
    write("")
    write("CEL conformance (cel-spec textproto files): pass / skip / fail")
    totals = {"pass": 0, "skip": 0, "fail": 0}
    for name in sorted(CONFORMANCE_COUNTS):
        counts = CONFORMANCE_COUNTS[name]
        for key in totals:
            totals[key] += counts[key]
        extra = counts.get("error at compile time", 0)
        note = f"  ({extra} expected errors raised at compile time)" if extra else ""
        write(f"  {name:<16} {counts['pass']:>4} / {counts['skip']:>4} / {counts['fail']:>4}{note}")
    write(f"  {'TOTAL':<16} {totals['pass']:>4} / {totals['skip']:>4} / {totals['fail']:>4}")
