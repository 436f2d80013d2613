"""Benchmark: the three ledger reports on a store with a million journal entries, against a naive journal scan.

Run ``python -m bench.reports`` (1M entries; ``--entries N`` to choose; ``--json``). What it does:

1. Builds the store once, through the real event path (``submit_batch``, the ledger, the writer), under
   ``--data-dir`` (default ``/tmp/scrip-bench-reports-<entries>``); a store already there is reused, so the
   minutes of building are paid once. One program, a SIMPLE asset PTS and a LOT asset MILES; every event credits
   both (two entries), MILES lots expiring 30-120 days after the event; one event in ten also spends PTS (a third
   entry). Event timestamps are spread uniformly over 90 days, so an hour holds about 0.05% of the journal.
2. Reopens the store in a fresh process (timing the open, which loads the running totals) and times each report:
   the first call after the open ("cold"), then ``--calls`` more (p50 and max). Windows are cut inside hours, so
   each period report also reads its two edge hours from the journal.
3. For scale, times one naive answer to the ledger summary: decode every journal entry and classify it.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from bench._common import Progress, bench_config, tune_gc
from scrip_actor import (
    AssetCreate,
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    Overloaded,
    ProgramCreate,
    RuleCreate,
    open_engine,
)
from scrip_actor.amounts import format_minor

START = datetime(2030, 1, 1, tzinfo=UTC)  # after "now", so no lot has expired yet
SPREAD_S = 90 * 86_400
PARTICIPANTS = 50_000
_EXPIRY_DAYS = (30, 60, 90, 120)  # MILES lots expire this many days after their event, by the event's tier


def _events(program_id: str, count: int, chunk: int) -> Iterator[list[EventSubmit]]:
    generator = random.Random(13)
    for first in range(0, count, chunk):
        batch = []
        for number in range(first, min(count, first + chunk)):
            moment = START + timedelta(seconds=generator.randrange(SPREAD_S), microseconds=generator.randrange(10**6))
            data: dict[str, Any] = {
                "points": generator.randrange(1, 500),
                "tier": generator.randrange(len(_EXPIRY_DAYS)),
            }
            if number % 10 == 9:
                data["spend"] = 1
            batch.append(
                EventSubmit(
                    program_id=program_id,
                    external_id=f"m{generator.randrange(PARTICIPANTS):06d}",
                    idempotency_key=f"e{number}",
                    event_data=data,
                    event_timestamp=moment,
                )
            )
        yield batch


async def _set_up(engine: Engine) -> str:
    program = await engine.create_program(ProgramCreate(name="Reports"))
    assets = {}
    for symbol, mode, scale in (("PTS", "SIMPLE", 2), ("MILES", "LOT", 0)):
        created = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name=symbol,
                symbol=symbol,
                inventory_mode=mode,  # type: ignore[arg-type]
                issuance_policy="UNLIMITED",
                scale=scale,
            )  # fmt: skip
        )
        assets[symbol] = created.id
    earn = [CreditAction(asset_id=assets["PTS"], amount="event.points")]
    await engine.create_rule(RuleCreate(program_id=program.id, name="earn", condition="true", actions=earn))
    for tier, days in enumerate(_EXPIRY_DAYS):
        miles = [CreditAction(asset_id=assets["MILES"], amount="event.points", expires_at=f"{days * 24}h")]
        condition = f"event.tier == {tier}"
        await engine.create_rule(
            RuleCreate(program_id=program.id, name=f"miles{tier}", condition=condition, actions=miles)
        )
    spend = [DebitAction(asset_id=assets["PTS"], amount="event.spend")]
    await engine.create_rule(
        RuleCreate(program_id=program.id, name="spend", condition="has(event.spend)", actions=spend)
    )
    return program.id


async def build(data_dir: Path, entries: int, sync: bool) -> dict[str, Any]:
    """Write the store: about ``entries`` journal entries (2.1 per event)."""
    events = int(entries / 2.1)
    started_s = time.perf_counter()
    async with open_engine(config=bench_config(data_dir, sync=sync)) as engine:
        program_id = await _set_up(engine)
        tune_gc()
        chunks = _events(program_id, events, 1000)

        async def submitter() -> None:
            for chunk in chunks:
                while chunk:
                    results = await engine.submit_batch(chunk)
                    chunk = [c for c, r in zip(chunk, results, strict=True) if isinstance(r, Overloaded)]
                    if chunk:
                        await trio.sleep(0.001)

        async with Progress("events", events, lambda: _processed(engine)):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(submitter)
            await engine.wait_idle()
        journal = engine.statistics().journal_sequence
    return {"events": events, "journal_entries": journal, "build_s": round(time.perf_counter() - started_s, 1)}


def _processed(engine: Engine) -> int:
    figures = engine.statistics()
    return figures.events_completed + figures.events_failed


async def _time(call: Callable[[], Awaitable[Any]], calls: int) -> dict[str, float]:
    started = time.perf_counter()
    await call()
    cold_ms = (time.perf_counter() - started) * 1000
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "cold_ms": round(cold_ms, 2),
        "p50_ms": round(statistics.median(samples), 2),
        "max_ms": round(max(samples), 2),
    }


async def measure(data_dir: Path, calls: int) -> dict[str, Any]:
    """Open the store and time every report (run in a fresh process)."""
    started = time.perf_counter()
    async with open_engine(config=bench_config(data_dir)) as engine:
        open_s = time.perf_counter() - started
        reports = engine.reports
        start, end = START + timedelta(days=20, minutes=17, seconds=3), START + timedelta(days=50, minutes=41)
        first, last = date(2030, 3, 1), date(2030, 5, 31)
        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "ledger_summary": lambda: reports.ledger_summary(),
            "ledger_summary_period": lambda: reports.ledger_summary(start=start, end=end),
            "expiration_schedule_day": lambda: reports.expiration_schedule(start=first, end=last, granularity="day"),
            "expiration_schedule_month": lambda: reports.expiration_schedule(start=first, end=last),
            "program_activity": lambda: reports.program_activity(),
            "program_activity_period": lambda: reports.program_activity(start=start, end=end),
        }
        timings = {name: await _time(call, calls) for name, call in cases.items()}
        summary = await reports.ledger_summary(start=start, end=end)
        totals = engine._world.reports  # the sizes that bound a report's cost
        sizes = {"hour_rows": len(totals.hours), "expiry_cells": len(totals.expiry)}
        naive_s, naive = _naive_summary(engine)
        lifetime = {row.asset_id: row for row in await reports.ledger_summary()}
        for asset_id, net_minor in naive.items():  # the totals answer what the scan says
            scale = engine._world.assets[asset_id].scale
            assert lifetime[asset_id].current_balance == format_minor(net_minor, scale), (asset_id, net_minor)
    return {"open_s": round(open_s, 2), "reports": timings, "naive_summary_s": round(naive_s, 1), **sizes,
            "summary": [row.current_balance for row in summary]}  # fmt: skip


def _naive_summary(engine: Engine) -> tuple[float, dict[str, int]]:
    """What a report costs without the totals: decode and classify every entry (one pass); the net per asset."""
    from scrip_actor._records import decode_entry
    from scrip_actor.report_totals import ISSUED, OTHER, classify

    started = time.perf_counter()
    totals: dict[str, int] = {}
    for _, raw in engine._store.scan("journal"):
        for asset_id, (column, amount) in classify(decode_entry(raw)).items():
            totals[asset_id] = totals.get(asset_id, 0) + (amount if column in (ISSUED, OTHER) else -amount)
    return time.perf_counter() - started, totals


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="journal entries to build (about)")
    parser.add_argument("--data-dir", help="the store (default /tmp/scrip-bench-reports-<entries>; reused if there)")
    parser.add_argument("--calls", type=int, default=20, help="warm calls per report")
    parser.add_argument("--no-sync", action="store_true", help="no fsync while building")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument("--measure-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_worker:
        result = trio.run(measure, Path(args.measure_worker), args.calls)
        print(json.dumps(result))
        return result
    data_dir = Path(args.data_dir or f"/tmp/scrip-bench-reports-{args.entries}")
    built: dict[str, Any] = {"reused": True}
    if not (data_dir / "ledger.lmdb").exists():
        built = trio.run(build, data_dir, args.entries, not args.no_sync)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--measure-worker", str(data_dir), "--calls", str(args.calls)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    summary = {"machine": f"{platform.processor() or platform.machine()}, {_cores()} cores, Python "
               f"{platform.python_version()}", "data_dir": str(data_dir), **built, **measured}  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
    return summary


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
