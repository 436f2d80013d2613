"""A store that cannot be opened as it is gets one line and its own exit status from ``scrip serve`` and
``scrip verify``, never a traceback or a SIGBUS; ``verify`` never calls a store of another schema OK.

These used to end in a traceback (a data directory that is a file, an old schema), a SIGBUS (a truncated data.mdb,
mapped and read past its end), or a server that started and failed its first commit (a map smaller than the data).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lmdb
import msgspec
import pytest

from scrip_actor import open_engine
from scrip_actor.errors import ExitCode
from scrip_actor.http.server import EXIT_COMMIT_FAILED
from scrip_actor.store import SCHEMA_VERSION
from tests.conftest import small_config
from tests.helpers import program_with_asset
from tests.integration.lmdb_pages import end_of_a_page_in_use

REPO = Path(__file__).resolve().parents[2]
_PAGE_BYTES = 4096


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrip_actor", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,  # a case that wrongly starts serving fails here instead of hanging
        check=False,
    )


async def _store(data_dir: Path) -> None:
    async with open_engine(config=small_config(data_dir)) as engine:
        await program_with_asset(engine)


def _data_file(data_dir: Path) -> Path:
    return data_dir / "ledger.lmdb" / "data.mdb"


def _set_meta(data_dir: Path, key: bytes, value: bytes | None) -> None:
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True, db=meta) as txn:
            if value is None:
                txn.delete(key)
            else:
                txn.put(key, value)
    finally:
        env.close()


def _a_file(data_dir: Path) -> None:
    data_dir.write_text("not a directory\n")


def _truncated(data_dir: Path) -> None:
    # Short by pages in use (a stored value's): a file short only by free pages is whole (see
    # test_loose_tail_pages_are_not_truncation.py), so the page cut must be one a reader needs.
    os.truncate(_data_file(data_dir), end_of_a_page_in_use(data_dir) - _PAGE_BYTES)


def _not_lmdb(data_dir: Path) -> None:
    _data_file(data_dir).write_bytes(b"\0" * 3 * _PAGE_BYTES)


def _old_schema(data_dir: Path) -> None:
    _set_meta(data_dir, b"schema", b"2")


def _newer_schema(data_dir: Path) -> None:
    _set_meta(data_dir, b"schema", msgspec.json.encode(SCHEMA_VERSION + 1))


def _no_schema(data_dir: Path) -> None:
    _set_meta(data_dir, b"schema", None)


# case: (damage, exit status, what stderr says)
_CASES: dict[str, tuple[Callable[[Path], None], ExitCode, str]] = {
    "data dir is a file": (_a_file, ExitCode.DATA_DIR_UNUSABLE, "is not a directory"),
    "truncated data.mdb": (_truncated, ExitCode.DATA_FILE_DAMAGED, "truncated, its last commit needs"),
    "data.mdb is not LMDB": (_not_lmdb, ExitCode.DATA_FILE_DAMAGED, "not an LMDB data file"),
    "old schema": (_old_schema, ExitCode.SCHEMA_MISMATCH, f"store schema v2, this version needs v{SCHEMA_VERSION}"),
    "newer schema": (_newer_schema, ExitCode.SCHEMA_MISMATCH, "written by a newer scrip"),
    "no schema record": (_no_schema, ExitCode.SCHEMA_MISMATCH, "store records no schema version"),
}


def _assert_one_line_refusal(result: subprocess.CompletedProcess[str], code: ExitCode, says: str) -> None:
    assert result.returncode != -signal.SIGBUS
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


@pytest.mark.parametrize("case", list(_CASES))
async def test_serve_and_verify_refuse_an_unusable_store_in_one_line(tmp_path: Path, case: str) -> None:
    damage, code, says = _CASES[case]
    data_dir = tmp_path / "data"
    if damage is not _a_file:
        await _store(data_dir)
    damage(data_dir)
    before = sorted(p.name for p in data_dir.iterdir()) if data_dir.is_dir() else None
    served = _run("serve", "--data-dir", str(data_dir), "--port", "0")
    _assert_one_line_refusal(served, code, says)
    assert served.stderr.startswith("scrip: ")
    assert "listening" not in served.stdout
    # Refused before anything was written: no API key file, nothing new in the directory.
    assert (sorted(p.name for p in data_dir.iterdir()) if data_dir.is_dir() else None) == before
    checked = _run("verify", "--data-dir", str(data_dir))
    _assert_one_line_refusal(checked, code, says)
    assert "verify OK" not in checked.stdout


def test_exit_statuses_are_distinct_and_agree_with_the_server() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    assert ExitCode.COMMIT_FAILED == EXIT_COMMIT_FAILED


async def test_verify_reports_an_old_schema_store_as_not_ok_in_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _store(data_dir)
    _set_meta(data_dir, b"schema", msgspec.json.encode(SCHEMA_VERSION - 1))
    result = _run("verify", "--data-dir", str(data_dir), "--json")
    assert result.returncode == ExitCode.SCHEMA_MISMATCH
    report = msgspec.json.decode(result.stdout)
    assert report["ok"] is False and report["schema_ok"] is False
    assert report["problems"] == [
        f"store schema v{SCHEMA_VERSION - 1}, this version needs v{SCHEMA_VERSION}: run `scrip serve` once to "
        "migrate it (the migration runs when the server opens the store)"
    ]


async def test_a_map_smaller_than_the_data_is_refused_by_serve_and_fine_for_verify(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _store(data_dir)
    used_bytes = _data_file(data_dir).stat().st_size
    config = tmp_path / "small.toml"
    config.write_text(f"[storage]\nlmdb_map_size_bytes = {used_bytes - _PAGE_BYTES}\n")
    served = _run("serve", "--data-dir", str(data_dir), "--port", "0", "--config", str(config))
    _assert_one_line_refusal(served, ExitCode.MAP_TOO_SMALL, f"raise it to at least {used_bytes}")
    # verify never writes: it maps at least what is stored, whatever the setting.
    checked = _run("verify", "--data-dir", str(data_dir), "--config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "verify OK" in checked.stdout


async def test_a_data_file_cut_exactly_at_its_last_page_still_opens(tmp_path: Path) -> None:
    # The truncation check is exact: a file as long as its newest commit needs is whole (LMDB grows it no further),
    # and a file that ends inside a page in use is not.
    data_dir = tmp_path / "data"
    await _store(data_dir)
    env = lmdb.open(str(data_dir / "ledger.lmdb"), readonly=True, max_dbs=64, subdir=True)
    try:
        needed_bytes = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    finally:
        env.close()
    assert _data_file(data_dir).stat().st_size >= needed_bytes
    with _data_file(data_dir).open("r+b") as file:
        file.truncate(needed_bytes)
    checked = _run("verify", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # One byte short of a page in use is truncated (a page only partly in the file counts as missing).
    os.truncate(_data_file(data_dir), end_of_a_page_in_use(data_dir) - 1)
    _assert_one_line_refusal(_run("verify", "--data-dir", str(data_dir)), ExitCode.DATA_FILE_DAMAGED, "truncated")
