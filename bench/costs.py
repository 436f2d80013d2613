"""Benchmark: CPU cost per event of each stage of the hot path, on the ``bench.embedded`` workload.

Run ``python -m bench.costs`` (``--events N`` per round, ``--rounds R``, ``--json``). It sets up the engine as
``bench.embedded`` does (10 mixed rules, a SIMPLE and a funded LOT asset; 5,000 participants), then, per round:

1. **admission**: ``N`` events through the engine's synchronous admission, with delivery to the actors held back;
2. **step**: those ``N`` events through the actor step (rules, ledger, store ops), one after another;
3. **fill**: the resulting records put into one LMDB write transaction, which is then aborted (so the store is
   left as it was and the real writer commits the same records afterwards).

Each stage is timed with ``time.thread_time()`` (CPU of this thread only), which other load on a shared machine
disturbs much less than wall time; the median over the rounds is reported in µs per event, with the store ops
and bytes each event produced. This drives private engine methods on purpose: it is a profiling harness for the
stages the public API runs together, not an API example.
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

from bench._common import bench_config, tune_gc
from bench.embedded import create_program, create_rules, create_tier, make_events, sign_up
from scrip_actor import open_engine

PARTICIPANTS = 5_000


async def measure(events: int, rounds: int, budgets: bool = False) -> dict[str, Any]:
    """Median µs per event of admission, step and fill over ``rounds`` rounds of ``events`` events (``budgets``:
    two of the rules budgeted, as ``bench.embedded --budgets``)."""
    with tempfile.TemporaryDirectory(prefix="scrip-costs-") as scratch:
        config = bench_config(Path(scratch) / "store", sync=False)
        async with open_engine(config=config) as engine:
            program_id, pts_id, cash_id = await create_program(engine)
            await sign_up(engine, program_id, PARTICIPANTS)
            await create_rules(engine, program_id, pts_id, cash_id, budgets=budgets)
            if budgets:  # the --mechanics variant: the tier definition too
                await create_tier(engine, program_id)
            tune_gc()
            rows = [await _one_round(engine, program_id, events, number) for number in range(rounds)]
    keys = rows[0].keys()
    return {
        "budgets": budgets,
        "events_per_round": events,
        "rounds": rounds,
        **{key: round(statistics.median(row[key] for row in rows), 2) for key in keys},
        "per_round": rows,
    }


async def _one_round(engine: Any, program_id: str, events: int, round_number: int) -> dict[str, float]:
    requests = make_events(program_id, PARTICIPANTS, events, seed=round_number, key_prefix=f"costs{round_number}")
    held: list[tuple[str, Any]] = []
    registry = engine._registry
    deliver = registry.deliver
    registry.deliver = lambda key, message: held.append((key, message))
    writer = engine._writer
    first_record = len(writer._pending)
    try:
        started = time.thread_time()
        for request in requests:
            engine._accept(request)
        admitted = time.thread_time()
        for key, message in held:
            engine._step(key, message)
        stepped = time.thread_time()
    finally:
        registry.deliver = deliver
    records = [ops for ops, _ in writer._pending[first_record:]]
    store = engine._store
    txn = store.begin_write()
    try:
        filled_from = time.thread_time()
        store.fill(txn, records)
        filled = time.thread_time()
    finally:
        txn.abort()
    ops = sum(len(record) for record in records)
    data_bytes = sum(len(key) + len(value or b"") for record in records for _, key, value in record)
    await engine.wait_idle()
    return {
        "admission_us": (admitted - started) / events * 1e6,
        "step_us": (stepped - admitted) / events * 1e6,
        "fill_us": (filled - filled_from) / events * 1e6,
        "store_ops_per_event": ops / events,
        "store_bytes_per_event": data_bytes / events,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events per round (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--mechanics",
        "--budgets",
        dest="budgets",
        action="store_true",
        help="bench.embedded --mechanics: budgets and a tier",
    )
    args = parser.parse_args(argv)
    result = trio.run(measure, args.events, args.rounds, args.budgets)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"per event (median of {args.rounds} rounds of {args.events}): admission {result['admission_us']:.1f} µs, "
            f"step {result['step_us']:.1f} µs, fill {result['fill_us']:.1f} µs; "
            f"{result['store_ops_per_event']:.1f} store ops, {result['store_bytes_per_event']:.0f} bytes"
        )
    return result


if __name__ == "__main__":
    main()
