"""The README's Python quickstart runs as printed, in its own process, against a real server, and prints what it
promises."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.client.conftest import running_server

REPO = Path(__file__).resolve().parents[2]
# This checkout's package, whichever one the interpreter has installed.
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[str]:
    """A server with the README's key, ``dev-key``."""
    async with running_server(tmp_path / "data", key="dev-key") as running:
        yield running.base_url


async def test_python_quickstart_runs(dev_server: str, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    quickstart = next(block for block in blocks if "ScripClient(" in block)
    assert "http://127.0.0.1:8080" in quickstart
    script = tmp_path / "python_quickstart.py"
    script.write_text(quickstart.replace("http://127.0.0.1:8080", dev_server))
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(script)], capture_stdout=True, capture_stderr=True, check=False, env=_ENV
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["COMPLETED 10.00"]
