"""Benchmark: how long a filtered event list takes on a large store, and that it does not grow with the store.

Run ``python -m bench.list_events`` (1M events; ``--quick`` for 100k; ``--events N``; ``--json``).

1. Fills a temporary store (fsync off: only the read side is measured) with ``--events`` events for
   ``--participants`` participants, bench.embedded's program and assets, and two rules: ``event.amount >= 100`` credits
   (so that rule's index holds about a third of the events) and ``event.amount == 7`` debits more than anyone has
   (so about a third of the events FAIL). One participant, ``rare``, gets only 3 events, at the very start.
2. Times each list call a user would make (first page, limit 50) ``--repeats`` times and prints the median and the
   worst, in milliseconds: by ``external_id`` (the rare participant: its events are the oldest, so a scan would
   read the whole store), by ``rule_id``, ``status=FAILED``, unfiltered, and a filter no index serves
   (``program_id`` of another program: bounded by the per-call work limit, it returns a short page and a cursor).

The same script runs against an older checkout (its own ``list_events``), which is how docs/benchmarks.md
compares before and after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench._common import Progress, bench_config, tune_gc
from bench.embedded import create_program
from scrip_actor import (
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    RuleCreate,
    open_engine,
)

_AMOUNTS = (5, 7, 150)


async def _fill(engine: Engine, events: int, participants: int, batch: int) -> tuple[str, str]:
    program_id, asset_id, _ = await create_program(engine)  # bench.embedded's program and assets
    earn = await engine.create_rule(
        RuleCreate(
            program_id=program_id,
            name="earn",
            condition="event.amount >= 100",
            actions=[CreditAction(asset_id=asset_id, amount="1")],
        )
    )
    await engine.create_rule(
        RuleCreate(
            program_id=program_id,
            name="overspend",
            condition="event.amount == 7",
            actions=[DebitAction(asset_id=asset_id, amount="1000000")],
        )
    )
    rare = [
        EventSubmit(program_id=program_id, external_id="rare", idempotency_key=f"rare{n}", event_data={"amount": 5})
        for n in range(3)
    ]
    await engine.submit_batch(rare)
    filled = [0]
    async with Progress("filling", events, lambda: filled[0]):
        for start in range(0, events, batch):
            requests = [
                EventSubmit(
                    program_id=program_id,
                    external_id=f"member-{n % participants:07d}",
                    idempotency_key=f"k{n}",
                    event_data={"amount": _AMOUNTS[n % 3]},
                )
                for n in range(start, min(events, start + batch))
            ]
            while True:
                results = await engine.submit_batch(requests)
                refused = [r for r, result in zip(requests, results, strict=True) if isinstance(result, Exception)]
                if not refused:
                    break
                requests = refused
                await engine.wait_idle()
            filled[0] = min(events, start + batch)
        await engine.wait_idle()
    return program_id, earn.id


async def _time_ms(engine: Engine, repeats: int, **filters: Any) -> dict[str, Any]:
    samples_ms = []
    page = None
    for _ in range(repeats):
        started = time.perf_counter()
        page = await engine.list_events(limit=50, **filters)
        samples_ms.append((time.perf_counter() - started) * 1000)
    assert page is not None
    return {
        "median_ms": round(statistics.median(samples_ms), 2),
        "max_ms": round(max(samples_ms), 2),
        "returned": len(page.data),
        "has_more": page.has_more,
    }


async def run(events: int, participants: int, repeats: int, data_dir: Path) -> dict[str, Any]:
    config = bench_config(data_dir, sync=False)
    async with open_engine(config=config) as engine:
        _, rule_id = await _fill(engine, events, participants, batch=1000)
        queries: dict[str, dict[str, Any]] = {
            "external_id (3 oldest events)": {"external_id": "rare"},
            "rule_id (1/3 of events)": {"rule_id": rule_id},
            "status=FAILED (1/3 of events)": {"status": "FAILED"},
            "unfiltered": {},
            "program_id, no match (unindexed)": {"program_id": "other-program"},
        }
        results = {name: await _time_ms(engine, repeats, **filters) for name, filters in queries.items()}
    return {"events": events, "participants": participants, "repeats": repeats, "queries": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100k events")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    events = 100_000 if args.quick else args.events
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="scrip-list-") as tmp:
        report = trio.run(run, events, args.participants, args.repeats, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['events']:,} events, {report['participants']:,} participants; first page, limit 50")
    for name, result in report["queries"].items():
        print(
            f"  {name:36s} median {result['median_ms']:8.2f} ms  max {result['max_ms']:8.2f} ms  "
            f"({result['returned']} returned, has_more={result['has_more']})"
        )


if __name__ == "__main__":
    main()
