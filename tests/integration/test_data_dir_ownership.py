"""One data directory, one owner: a second engine or ``scrip serve`` on it is refused, and ``verify`` beside a live
writer checks one committed state.

Two writers on one store used to both start and overwrite each other's events and journal (acknowledged events
vanished, a PREFUNDED wallet paid out twice its funding).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from scrip_actor import CreditAction, open_engine
from scrip_actor.errors import DataDirInUse, ExitCode
from scrip_actor.verify import verify
from tests.conftest import ManualClock, small_config
from tests.helpers import available, program_with_asset, rule, send

REPO = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 60.0


async def test_a_second_engine_on_one_data_dir_is_refused_and_the_first_is_unaffected(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as first:
        program, asset = await program_with_asset(first)
        await rule(first, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
        await send(first, program, "alice", {})
        with pytest.raises(DataDirInUse, match="already open in this process"):
            async with open_engine(config=config, clock=clock):
                raise AssertionError("a second engine opened the same data directory")
        # verify() in this process would open a second LMDB environment on the file: refused too.
        with pytest.raises(DataDirInUse, match="Engine.verify"):
            verify(str(tmp_path / "data"), config)
        await send(first, program, "alice", {})
        assert await available(first, "alice", asset) == "2.00"
        report = await first.verify()
        assert report.ok, report.problems
        assert report.journal_entries == 2
    # Closed: the directory is free again.
    async with open_engine(config=config, clock=clock) as again:
        assert await available(again, "alice", asset) == "2.00"


def _scrip(*args: str) -> list[str]:
    return [sys.executable, "-m", "scrip_actor", *args]


class _Server:
    """A real ``scrip serve`` on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            _scrip("serve", "--data-dir", str(data_dir), "--port", "0"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        stdout = self.process.stdout
        self._reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
        self._reader.start()
        try:
            line = lines.get(timeout=_START_TIMEOUT_S)
        except queue.Empty:
            self.kill()
            raise AssertionError("scrip serve did not start listening") from None
        assert "listening on http://127.0.0.1:" in line, line
        self.port = int(line.rsplit(":", 1)[1])

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=10) as response:
            return bool(response.status == 200)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self._wait()

    def kill(self) -> int:
        self.process.kill()
        return self._wait()

    def _wait(self) -> int:
        returncode = self.process.wait(timeout=60)
        self._reader.join(timeout=10)  # it ends at end of file
        assert self.process.stdout is not None
        self.process.stdout.close()
        return returncode


def test_a_second_scrip_serve_is_refused_in_one_line_and_the_first_keeps_serving(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = _Server(data_dir)
    try:
        assert first.healthy()
        assert (data_dir / "scrip.lock").read_text().strip() == str(first.process.pid)
        second = subprocess.run(
            _scrip("serve", "--data-dir", str(data_dir), "--port", "0"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == ExitCode.DATA_DIR_IN_USE == 4, second.stderr
        assert second.stderr == f"scrip: data directory {data_dir} is in use by process {first.process.pid}\n"
        assert first.healthy()
    finally:
        assert first.stop() == 0
    # A clean exit releases the lock ...
    after_clean_exit = _Server(data_dir)
    assert after_clean_exit.healthy()
    assert after_clean_exit.kill() == -signal.SIGKILL
    # ... and so does SIGKILL (the kernel drops a flock with its holder): nothing stale to clean up by hand.
    after_kill = _Server(data_dir)
    try:
        assert after_kill.healthy()
    finally:
        assert after_kill.stop() == 0


def test_verify_beside_a_live_writer_checks_one_committed_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The crash worker submits events without pause (bursts of 20, fsync on), as a busy server would.
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_worker", str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert worker.stdout is not None
        acks = 0
        for line in worker.stdout:
            acks += line.startswith("ACK")
            if acks >= 100:
                break
        assert acks >= 100, "the worker stopped early"
        snapshots = []
        for _ in range(3):
            result = subprocess.run(
                _scrip("verify", "--data-dir", str(data_dir)),
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "verify OK" in result.stdout
            snapshots.append(int(result.stdout.rsplit("LMDB transaction ", 1)[1]))
            for _ in range(20):  # let the writer commit more in between
                worker.stdout.readline()
        assert snapshots == sorted(snapshots) and snapshots[0] < snapshots[-1], snapshots
        assert worker.poll() is None, "verify disturbed the writer"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
