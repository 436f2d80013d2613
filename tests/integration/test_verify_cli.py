"""Acceptance 7: ``scrip verify --data-dir DIR`` passes on a good store and pinpoints tampering."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lmdb
import msgspec

from scrip_actor import CreditAction, open_engine
from scrip_actor.ledger import ParticipantRecord
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send

REPO = Path(__file__).resolve().parents[2]


def _verify_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrip_actor", "verify", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _make_store(data_dir: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(data_dir), clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="2.50")])
        for _ in range(3):
            await send(engine, program, "alice", {})


def _edit(data_dir: Path, db_name: bytes, change: object) -> None:
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=32, subdir=True)
    try:
        db = env.open_db(db_name)
        with env.begin(write=True, db=db) as txn:
            key, value = next(iter(txn.cursor()))
            record = msgspec.json.decode(value)
            change(record)  # type: ignore[operator]
            txn.put(key, msgspec.json.encode(record))
    finally:
        env.close()


def _edit_participant(data_dir: Path, change: Callable[[ParticipantRecord], None]) -> None:
    """Change the first participant record as stored (a typed array: schema 5)."""
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=32, subdir=True)
    try:
        db = env.open_db(b"participants")
        with env.begin(write=True, db=db) as txn:
            key, value = next(iter(txn.cursor()))
            record = msgspec.json.decode(value, type=ParticipantRecord)
            change(record)
            txn.put(key, msgspec.json.encode(record))
    finally:
        env.close()


async def test_verify_passes_then_catches_a_tampered_balance(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "data"
    await _make_store(data_dir, clock)
    good = _verify_cli(data_dir)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "verify OK: 3 journal entries" in good.stdout

    _edit_participant(data_dir, lambda record: next(iter(record.balances.values())).__setitem__(0, 999))
    bad = _verify_cli(data_dir)
    assert bad.returncode == 1
    assert "AVAILABLE: cached 999, journal says 750" in bad.stdout


async def test_verify_catches_a_rewritten_journal_entry(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "data"
    await _make_store(data_dir, clock)
    _edit(data_dir, b"journal", lambda record: record.__setitem__("description", "nothing to see"))
    bad = _verify_cli(data_dir)
    assert bad.returncode == 1
    assert "journal entry #1" in bad.stdout
    assert "entry_hash does not match" in bad.stdout


def test_verify_without_a_store_says_so(tmp_path: Path) -> None:
    missing = _verify_cli(tmp_path / "nothing")
    assert missing.returncode == 2
    assert "no store" in missing.stderr
