"""The README's embedded quickstart runs as printed and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_embedded_quickstart_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    quickstart = next(block for block in blocks if "open_engine" in block and "trio.run(main)" in block)
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "COMPLETED 10.00"
    assert lines[1].startswith("SYSTEM SYSTEM_ISSUANCE -10.00") or lines[2].startswith("SYSTEM SYSTEM_ISSUANCE -10.00")
    assert lines[-1] == "True"
