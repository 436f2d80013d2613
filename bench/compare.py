"""Benchmark: the working tree against an older revision, interleaved in one run, as ratios.

Run ``python -m bench.compare REV`` (e.g. ``HEAD~3`` or a commit id). What it does:

1. Checks REV out into a temporary git worktree (``git worktree add --detach``), removed again at the end.
2. Runs ``python -m bench.embedded --quick --json --baseline none`` alternately in that worktree and in this
   working tree, ``--rounds`` times each (old, new, old, new, ...), each run in its own process whose working
   directory is the tree being measured, so each imports its own ``scrip_actor`` (and its own bench).
3. Prints, per round and as the median with its spread (min–max of the per-round ratios), new ÷ old for the
   batch and submit throughputs. Interleaving is the point: these machines are shared and noisy, so only runs
   made side by side are comparable; a ratio's spread says how far to trust it.

``--json`` prints machine-readable results; arguments after ``--`` go to bench.embedded (e.g. ``-- --no-sync``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_METRICS = ("batch_events_per_s", "submit_events_per_s")


def _run_embedded(tree: Path, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.embedded", "--quick", "--json", "--baseline", "none", *extra]
    completed = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False, timeout=900)
    if completed.returncode != 0:
        raise SystemExit(f"bench.embedded failed in {tree}:\n{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _ratios(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for metric in _METRICS:
        pairs = [(o.get(metric), n.get(metric)) for o, n in zip(old, new, strict=True)]
        ratios = [n / o for o, n in pairs if o and n]
        summary[metric] = {
            "old": [o for o, _ in pairs],
            "new": [n for _, n in pairs],
            "ratio_per_round": [round(r, 3) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_min": round(min(ratios), 3) if ratios else None,
            "ratio_max": round(max(ratios), 3) if ratios else None,
        }
    return summary


def compare(revision: str, rounds: int, extra: list[str]) -> dict[str, Any]:
    """Run the interleaved rounds and return the per-metric ratios (new ÷ old)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise SystemExit(f"bench.compare: {revision!r} is not a revision of this repository")
    sha = commit.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="scrip-compare-") as tmp:
        worktree = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), sha], cwd=REPO, check=True, capture_output=True
        )
        try:
            old: list[dict[str, Any]] = []
            new: list[dict[str, Any]] = []
            for round_number in range(1, rounds + 1):
                print(f"round {round_number}/{rounds}: {revision} ...", file=sys.stderr, flush=True)
                old.append(_run_embedded(worktree, extra))
                print(f"round {round_number}/{rounds}: working tree ...", file=sys.stderr, flush=True)
                new.append(_run_embedded(REPO, extra))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)
    return {"revision": revision, "commit": sha, "rounds": rounds, "metrics": _ratios(old, new)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="the older revision to compare against (e.g. HEAD~1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved old/new pairs (default 3)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("extra", nargs="*", help="after --: arguments for bench.embedded")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    report = compare(args.revision, args.rounds, args.extra)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"working tree ÷ {args.revision} ({report['commit'][:10]}), {args.rounds} interleaved rounds")
    for metric, figures in report["metrics"].items():
        old = ", ".join(f"{v:,.0f}" for v in figures["old"] if v)
        new = ", ".join(f"{v:,.0f}" for v in figures["new"] if v)
        print(
            f"  {metric:22s} ratio {figures['ratio_median']} (min {figures['ratio_min']}, max {figures['ratio_max']})"
            f"   old [{old}]  new [{new}]"
        )


if __name__ == "__main__":
    main()
