"""A data file that ends before the last page its newest commit names is whole when those pages are free.

LMDB never writes the pages a transaction allocated past the old end of the file and freed again before it
committed (loose pages, and overflow pages put and deleted in one transaction), yet the meta page counts them; the
freelist names them. Such a store must open, verify and serve (a crash left one behind 1 time in 10 with the
putmulti fill, and the server refused to start). A file that is short by a page in use stays refused in one line.
And whatever the length of the file, and whatever garbage its freelist holds, the open check answers, accepting
only files whose missing pages are all free, or refusing with DataFileDamaged, and LMDB reading every record of an
accepted file never dies of SIGBUS (that part runs in a subprocess, which a SIGBUS would kill instead of pytest).

The stores here are real: built by the engine, then given a loose tail by one raw LMDB transaction that puts a
value on new overflow pages and deletes it again, as LMDB itself leaves them.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scrip_actor import CreditAction, open_engine
from scrip_actor._data_dir import check_data_file
from scrip_actor.errors import DataFileDamaged, ExitCode
from tests.conftest import ManualClock, small_config
from tests.helpers import available, program_with_asset, rule, send
from tests.integration.lmdb_pages import (
    PAGE_BYTES,
    data_file,
    end_of_a_page_in_use,
    env_dir,
    leave_loose_tail,
    used_bytes,
)

REPO = Path(__file__).resolve().parents[2]
_START = datetime(2026, 1, 1, tzinfo=UTC)
_TAIL_PAGES = 40  # the overflow value put and deleted: more pages than the small store has free
# Reads every record of every database, the value bytes included (overflow pages), then commits a write: what a
# reader and the writer of an accepted file may touch. A SIGBUS kills it with -SIGBUS.
_READ_EVERYTHING = """
import lmdb, sys
env = lmdb.open(sys.argv[1], max_dbs=64, subdir=True, map_size=1 << 30)
with env.begin() as txn:
    names = [key for key, _ in txn.cursor()]
total = 0
for name in names:
    db = env.open_db(name, create=False)
    with env.begin(db=db) as txn:
        for key, value in txn.cursor():
            total += len(key) + len(bytes(value))
meta = env.open_db(b"meta")
with env.begin(write=True, db=meta) as txn:
    txn.put(b"read-everything", b"x" * 20000)
print(total)
"""


async def _store(data_dir: Path) -> None:
    async with open_engine(config=small_config(data_dir), clock=ManualClock(_START)) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
        for number in range(20):
            await send(engine, program, f"member-{number % 5}", {})


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def loose_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real scrip store whose file ends pages before its last page, every missing page free."""
    import trio

    data_dir = tmp_path_factory.mktemp("loose") / "data"
    trio.run(_store, data_dir)
    leave_loose_tail(data_dir, _TAIL_PAGES)
    assert data_file(data_dir).stat().st_size + 10 * PAGE_BYTES < used_bytes(data_dir)
    return data_dir


def _copy(store: Path, to: Path) -> Path:
    shutil.copytree(store, to)
    (to / "scrip.lock").unlink(missing_ok=True)
    return to


async def test_a_store_with_a_loose_tail_opens_verifies_and_serves(loose_store: Path, tmp_path: Path) -> None:
    data_dir = _copy(loose_store, tmp_path / "data")
    file_bytes, needed_bytes = data_file(data_dir).stat().st_size, used_bytes(data_dir)
    # verify maps the file read-only and reads every record: OK, and it writes nothing (the file stays short).
    checked = _run("-m", "scrip_actor", "verify", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "verify OK" in checked.stdout
    assert data_file(data_dir).stat().st_size == file_bytes
    # Raw LMDB reading everything and committing, in a subprocess: no SIGBUS.
    copy = _copy(loose_store, tmp_path / "raw")
    raw = _run("-c", _READ_EVERYTHING, str(env_dir(copy)))
    assert raw.returncode == 0, raw.stderr
    # The server opens it, serves the old balances and new events, and the store verifies after.
    async with open_engine(config=small_config(data_dir), clock=ManualClock(_START)) as engine:
        # A writer extends the file over its free tail (a sparse hole): nothing can fault on those pages now.
        assert data_file(data_dir).stat().st_size >= needed_bytes
        program = (await engine.list_programs()).data[0]
        asset = (await engine.list_assets(program_id=program.id)).data[0]
        assert await available(engine, "member-0", asset) == "4.00"
        await send(engine, program, "member-0", {})
        assert await available(engine, "member-0", asset) == "5.00"
        report = await engine.verify()
        assert report.ok, report.problems
    checked = _run("-m", "scrip_actor", "verify", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_file_short_by_a_page_in_use_is_still_refused(loose_store: Path, tmp_path: Path) -> None:
    data_dir = _copy(loose_store, tmp_path / "data")
    in_use_end = end_of_a_page_in_use(data_dir)
    for cut in (in_use_end - PAGE_BYTES, in_use_end - 1):  # the page missing, then only its last byte
        os.truncate(data_file(data_dir), cut)
        with pytest.raises(DataFileDamaged, match="truncated, its last commit needs"):
            check_data_file(data_dir, map_size_bytes=None)
        checked = _run("-m", "scrip_actor", "verify", "--data-dir", str(data_dir))
        assert checked.returncode == ExitCode.DATA_FILE_DAMAGED, checked.stderr
        assert checked.stderr.count("\n") == 1 and "truncated, its last commit needs" in checked.stderr
    # The refusal is right: LMDB reading that store, past the check, dies of SIGBUS.
    raw = _run("-c", _READ_EVERYTHING, str(env_dir(data_dir)))
    assert raw.returncode == -signal.SIGBUS, raw.stderr


def _meta_free_root(data: bytes) -> int:
    """md_root of the freelist in the newest meta page (LMDB 0.9, 64-bit: see scrip_actor/_data_dir.py)."""
    metas = [struct.unpack_from("<QQ", data, base + 136)[::-1] + (base,) for base in (0, PAGE_BYTES)]
    _, _, base = max(metas)
    return int(struct.unpack_from("<Q", data, base + 80)[0])


@st.composite
def _cuts(draw: st.DrawFn, file_bytes: int, needed_bytes: int) -> int:
    """A length for the file: mostly near the end of what was written, sometimes anywhere, sometimes mid-page."""
    tail = needed_bytes - file_bytes
    near = draw(st.integers(min_value=max(0, file_bytes - tail), max_value=needed_bytes))
    anywhere = draw(st.integers(min_value=0, max_value=needed_bytes))
    cut = draw(st.sampled_from([near, near, near, anywhere]))
    return cut if draw(st.booleans()) else cut - cut % PAGE_BYTES


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_length_is_accepted_with_its_missing_pages_free_or_refused(loose_store: Path, data: st.DataObject) -> None:
    file_bytes, needed_bytes = data_file(loose_store).stat().st_size, used_bytes(loose_store)
    cut = data.draw(_cuts(file_bytes, needed_bytes), label="cut")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = _copy(loose_store, Path(scratch) / "data")
        os.truncate(data_file(data_dir), cut)
        try:
            check_data_file(data_dir, map_size_bytes=None)
            accepted = True
        except DataFileDamaged:
            accepted = False
        event("accepted" if accepted else "refused")  # --hypothesis-show-statistics: both must occur
        checked = _run("-m", "scrip_actor", "verify", "--data-dir", str(data_dir))
        assert checked.returncode != -signal.SIGBUS
        assert "Traceback" not in checked.stderr
        if not accepted:
            assert checked.returncode == ExitCode.DATA_FILE_DAMAGED, checked.stderr
            assert checked.stderr.count("\n") == 1
            assert cut < file_bytes  # what LMDB wrote is never refused
            return
        assert checked.returncode == 0, checked.stdout + checked.stderr
        raw = _run("-c", _READ_EVERYTHING, str(env_dir(data_dir)))
        assert raw.returncode == 0, f"accepted at {cut} bytes, but LMDB died reading it: {raw.returncode} {raw.stderr}"


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_freelist_is_refused_never_a_crash_or_a_hang(loose_store: Path, data: st.DataObject) -> None:
    # Only the check runs here (it reads with pread, never a mapping, so it cannot SIGBUS this process): the file
    # already ends before its free tail, so the check must walk the freelist, whose pages and meta fields get garbage.
    original = data_file(loose_store).read_bytes()
    page_count = len(original) // PAGE_BYTES
    root = _meta_free_root(original)
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(min_value=1, max_value=8), label="writes")):
        page = data.draw(
            st.sampled_from([0, 1, root, root, min(root + 1, page_count - 1)]) | st.integers(2, page_count - 1)
        )
        at = page * PAGE_BYTES + data.draw(st.integers(0, 160) | st.integers(0, PAGE_BYTES - 8))
        damaged[at : at + 8] = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff" * 8, b"\0" * 8]))
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        env_dir(data_dir).mkdir()
        data_file(data_dir).write_bytes(bytes(damaged))
        try:
            facts = check_data_file(data_dir, map_size_bytes=None)
        except DataFileDamaged as error:
            assert str(error).count("\n") == 0
            event("refused: " + str(error).split(": ", 1)[1].split(" ", 2)[0])
        else:
            event("accepted")
            assert facts is not None and facts.used_bytes > 0
