"""``python -m scrip_actor.engine._backtest_worker``: one backtest in a child process of the server (docs/backtest.md).

Reads a :class:`~scrip_actor.engine._backtest_process.WorkerRequest` as JSON on stdin, runs the backtest on the
store opened read-only (``scrip_actor.engine.backtest_data_dir``) and writes the job as one JSON line on stdout
every fraction of a second and once more when it ends. Not a command for people: ``scrip backtest`` is that.
"""

from __future__ import annotations

import os
import sys

import msgspec
import trio

from scrip_actor.backtest_model import Backtest
from scrip_actor.engine._backtest_offline import backtest_data_dir
from scrip_actor.engine._backtest_process import WorkerRequest
from scrip_actor.errors import ScripError

__all__ = ["main"]

WORKER_NICE = 10  # measured: halves the client p99 during a backtest on two busy cores (docs/benchmarks.md)
_encoder = msgspec.json.Encoder()


def _line(job: Backtest) -> None:
    sys.stdout.buffer.write(_encoder.encode(job) + b"\n")
    sys.stdout.buffer.flush()


def main() -> int:
    """Run the request on stdin; 0 once the last line is written, 2 for a refusal (on stderr)."""
    work = msgspec.json.decode(sys.stdin.buffer.read(), type=WorkerRequest)
    os.nice(WORKER_NICE)  # below the server: on a busy machine live traffic gets the CPU first
    config = work.config
    try:
        trio.run(backtest_data_dir, config.storage.data_dir, config, work.program_id, work.request, _line)
    except ScripError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
