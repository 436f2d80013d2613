"""A backtest run in a child process, so that live traffic does not share the engine's thread (or its GIL) with it.

Measured (docs/benchmarks.md "Backtest beside live traffic"): a replay on the engine's own trio thread, however
finely sliced, adds its slice to every loop turn an event needs, several per event; a child process only competes
for a CPU core. The child is ``python -m scrip_actor.engine._backtest_worker``: it opens the store read-only (as
``scrip backtest`` and ``scrip verify`` do, no lock, no writes; LMDB readers in another process never block the
writer), runs the same :class:`~scrip_actor.engine._backtests.Backtests` stage in task mode, and writes the job as
one JSON line every :data:`~scrip_actor.engine._backtest_offline.PROGRESS_INTERVAL_S` and a last line when it ends.
The parent keeps the job's id and creation time and takes everything else from the child's lines.

A cancel, the parent's time bound or the engine closing kill the child (it holds nothing but read transactions).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import trio

import scrip_actor
from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.config import Config

__all__ = ["WorkerRequest", "WorkerStopped", "run_in_process"]

LINE_BYTES_MAX = 64 * 1024 * 1024  # one job line at most: the report is bounded (a sample of 20 events)
STDERR_TAIL_BYTES = 4096  # what is kept of the child's stderr


class WorkerRequest(msgspec.Struct, kw_only=True):
    """What the child reads on stdin: the settings (with the data directory), the program and the request."""

    config: Config
    program_id: str
    request: BacktestCreate


_job_decoder = msgspec.json.Decoder(Backtest)


class WorkerStopped(Exception):
    """The child ended without its last job line; the message is its exit status and the last line of stderr."""


async def run_in_process(
    config: Config, program_id: str, request: BacktestCreate, progress: Callable[[Backtest], None]
) -> Backtest:
    """Run the backtest in a child process; ``progress`` sees each job line; the last one is returned.

    Raises:
        WorkerStopped: the child ended without a last line (its stderr, shortened, says why).
    """
    stdin = msgspec.json.encode(WorkerRequest(config=config, program_id=program_id, request=request))
    command = [sys.executable, "-m", "scrip_actor.engine._backtest_worker"]
    # The child imports the very package this process runs (a checkout beside an installed copy, say).
    root = str(Path(scrip_actor.__file__).resolve().parent.parent)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    assert process.stdin is not None
    assert process.stdout is not None
    errors = bytearray()  # the tail of the child's stderr, for the reason it stopped
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, process.stderr, errors)  # a full stderr pipe would stall the child
            await process.stdin.send_all(stdin)
            await process.stdin.aclose()
            last = await _read_jobs(process.stdout, progress)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
    if last is None or last.status == "RUNNING":
        reason = bytes(errors).decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise WorkerStopped(f"the backtest worker stopped (exit {process.returncode}): {reason[0]}")
    return last


async def _read_jobs(stdout: trio.abc.ReceiveStream, progress: Callable[[Backtest], None]) -> Backtest | None:
    """Decode the child's job lines as they come; the last one (None: there was none)."""
    last: Backtest | None = None
    pending = b""
    while True:
        chunk = await stdout.receive_some(1 << 16)
        if not chunk:
            return last
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line:
                last = _job_decoder.decode(line)
                progress(last)
        if len(pending) > LINE_BYTES_MAX:
            raise WorkerStopped("the backtest worker wrote a line over its bound")


async def _drain(stderr: trio.abc.ReceiveStream | None, tail: bytearray) -> None:
    """Read the child's stderr to its end, keeping the last :data:`STDERR_TAIL_BYTES`."""
    if stderr is None:
        return
    while chunk := await stderr.receive_some(1 << 14):
        tail.extend(chunk)
        del tail[:-STDERR_TAIL_BYTES]
