"""Benchmark: live client latency alone and while a backtest replays a program's history, and the replay's pace.

``python -m bench.backtest_latency --events 50000`` (``--json`` for machines). What it does:

1. Opens an engine on a temporary directory, fsync on (``--no-sync`` for an A/B run), one program with three
   rules (credit a share of the amount, a counter, a bonus on big purchases) and ``--events`` recorded purchases
   from ``--participants`` participants, submitted in batches.
2. Baseline: ``--clients`` tasks each submit one event at a time (awaiting durability) for ``--baseline-s``; the
   latency of each submit → processed is recorded (``Engine.on_event_processed``), as in bench.automation_fanout.
3. Starts a backtest of the whole history with a changed rule set (``engine.backtests.start``: the job runs as a
   task that yields every 32 events) and keeps the same client load running until it finishes; reports the client
   p50/p99 during it, the backtest's events/s, and whether it COMPLETED.

The backtest never writes (docs/backtest.md), so what it costs live traffic is CPU time on the one trio thread
between two of its yields.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import trio

from bench._common import bench_config, peak_rss_mb, percentile_ms
from bench.automation_fanout import _measure
from scrip_actor import AssetCreate, CounterAction, CreditAction, EventSubmit, ProgramCreate, RuleCreate, open_engine
from scrip_actor.backtest_model import BacktestCreate, ProposedRule
from scrip_actor.config import BacktestSettings

__all__ = ["main"]


async def _program(engine: Any) -> tuple[Any, Any]:
    program = await engine.create_program(ProgramCreate(name="backtest"))
    asset = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol="PTS",
            inventory_mode="SIMPLE",
            issuance_policy="UNLIMITED",
            scale=2,
        )  # type: ignore[arg-type]
    )
    rules = [
        ("share", "event.type == 'purchase'", [CreditAction(asset_id=asset.id, amount="event.amount * 0.05")]),
        ("visits", "event.type == 'purchase'", [CounterAction(key="visits", value="1")]),
        ("big", "event.type == 'purchase' && event.amount >= 100.0", [CreditAction(asset_id=asset.id, amount="5")]),
    ]
    for name, condition, actions in rules:
        await engine.create_rule(RuleCreate(program_id=program.id, name=name, condition=condition, actions=actions))
    return program, asset


async def _history(engine: Any, program_id: str, events: int, participants: int) -> None:
    for start in range(0, events, 1000):
        batch = [
            EventSubmit(
                program_id=program_id,
                external_id=f"p{n % participants:06}",
                idempotency_key=f"h-{n}",
                event_data={"type": "purchase", "amount": float(n % 250)},
            )
            for n in range(start, min(events, start + 1000))
        ]
        await engine.submit_batch(batch)
        await engine.wait_idle()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        config = bench_config(Path(directory), sync=not args.no_sync)
        slicing = BacktestSettings(isolation=args.isolation, slice_ms=args.slice_ms, pause_ms=args.pause_ms)
        async with open_engine(config=msgspec.structs.replace(config, backtests=slicing)) as engine:
            begin = datetime.now(UTC) - timedelta(seconds=1)
            program, asset = await _program(engine)
            setup_s = time.perf_counter()
            await _history(engine, program.id, args.events, args.participants)
            setup_s = time.perf_counter() - setup_s
            end = datetime.now(UTC)
            await trio.sleep(0.01)  # the clients' events are received after the window

            async def for_a_while() -> None:
                await trio.sleep(args.baseline_s)

            baseline = await _measure(engine, program.id, args.clients, for_a_while, "b")
            proposed = [
                ProposedRule(
                    name="share",
                    condition="event.type == 'purchase'",
                    actions=[CreditAction(asset_id=asset.id, amount="event.amount * 0.07")],
                ),
                ProposedRule(
                    name="big", condition="event.amount >= 80.0", actions=[CreditAction(asset_id=asset.id, amount="8")]
                ),
            ]
            # The window ends before the clients' events, so the replay covers the recorded history only.
            job = await engine.backtests.start(program.id, BacktestCreate(rules=proposed, from_=begin, to=end))
            replay_s = time.perf_counter()

            async def until_done() -> None:
                await engine.backtests.wait(program.id, job.id)

            during = await _measure(engine, program.id, args.clients, until_done, "d")
            replay_s = time.perf_counter() - replay_s
            done = engine.backtests.get(program.id, job.id)
            await engine.wait_idle()
    return {
        "events": args.events,
        "setup_s": round(setup_s, 1),
        "backtest_status": done.status,
        "backtest_events_replayed": done.events_replayed,
        "backtest_s": round(replay_s, 2),
        "backtest_events_per_s": round(done.events_replayed / replay_s) if replay_s else None,
        "client_baseline_p50_ms": percentile_ms(baseline, 0.5),
        "client_baseline_p99_ms": percentile_ms(baseline, 0.99),
        "client_during_p50_ms": percentile_ms(during, 0.5),
        "client_during_p99_ms": percentile_ms(during, 0.99),
        "client_events_during": len(during),
        "peak_rss_mb": round(peak_rss_mb()),
        "isolation": args.isolation,
        "slice_ms": args.slice_ms,
        "pause_ms": args.pause_ms,
        "sync": not args.no_sync,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--participants", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-s", type=float, default=3.0)
    parser.add_argument("--isolation", choices=["process", "task"], default=BacktestSettings().isolation)
    parser.add_argument("--slice-ms", type=float, default=BacktestSettings().slice_ms)
    parser.add_argument("--pause-ms", type=float, default=BacktestSettings().pause_ms)
    parser.add_argument("--no-sync", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = trio.run(run, args)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()), file=sys.stdout)
    return result


if __name__ == "__main__":
    main()
