"""``scrip backtest`` on a data directory: read-only, so it runs while the engine that owns the directory is open
(another process, as beside ``scrip serve``), prints a progress bar on stderr and the report on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import trio

from scrip_actor import CreditAction, open_engine
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send
from tests.integration.test_backtest_of_unchanged_rules_reproduces_the_live_journal import START


async def _scrip(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "scrip_actor", "backtest", *args], capture_stdout=True, capture_stderr=True, check=False
    )


async def test_the_cli_backtests_a_data_dir_the_engine_has_open(tmp_path: Path) -> None:
    clock = ManualClock(START)
    data_dir = tmp_path / "data"
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="3")], name="three")
        for external_id in ("a", "b", "c"):
            clock.advance(timedelta(hours=1))
            await send(engine, program, external_id, {})
        window = ["--from", START.isoformat(), "--to", (START + timedelta(days=1)).isoformat()]
        common = ["--data-dir", str(data_dir), "--program", program.id, *window]
        current = await _scrip(*common, "--json")
        assert current.returncode == 0, current.stderr
        report = json.loads(current.stdout)
        assert report["status"] == "COMPLETED"
        assert report["totals"] == report["actual"] == [{"asset_id": asset.id, "credited": "9.00", "debited": "0.00"}]
        assert b"[" + b"#" * 30 + b"]" in current.stderr  # the progress bar, full at the end
        rules_file = tmp_path / "rules.json"
        proposed = [{"name": "five", "condition": "true", "actions": [{"type": "CREDIT", "asset_id": asset.id, "amount": "5"}]}]  # fmt: skip
        rules_file.write_text(json.dumps(proposed))
        table = await _scrip(*common, "--rules", str(rules_file))
        assert table.returncode == 0, table.stderr
        assert b"15.00" in table.stdout
        assert b"removed" in table.stdout
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps([{**proposed[0], "condition": "event."}]))
        refused = await _scrip(*common, "--rules", str(bad))
        assert refused.returncode != 0
        assert b"rules[0].condition" in refused.stderr
        unknown = await _scrip("--data-dir", str(data_dir), "--program", "nope", *window)
        assert unknown.returncode != 0
        assert b"not_found" in unknown.stderr
