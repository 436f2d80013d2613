"""Raw LMDB transactions that put a store's pages where a test needs them: a free tail, or a page in use.

LMDB decides where pages go; these helpers make the outcome certain by asking for more pages than the store has
free (so they come from the end of the map) and by reading ``last_pgno`` before and after.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

PAGE_BYTES = 4096
# More pages than the small test stores ever have free: such a value cannot fit in reused pages.
_IN_USE_VALUE_PAGES = 400


def env_dir(data_dir: Path) -> Path:
    return data_dir / "ledger.lmdb"


def data_file(data_dir: Path) -> Path:
    return env_dir(data_dir) / "data.mdb"


def _open(data_dir: Path) -> lmdb.Environment:
    return lmdb.open(str(env_dir(data_dir)), max_dbs=64, subdir=True, map_size=1 << 30)


def used_bytes(data_dir: Path) -> int:
    """(last page + 1) * page size of the newest commit: what its meta page says the file holds."""
    env = _open(data_dir)
    try:
        return int((env.info()["last_pgno"] + 1) * env.stat()["psize"])
    finally:
        env.close()


def leave_loose_tail(data_dir: Path, pages: int) -> None:
    """One transaction that frees pages, then one that puts a value on new pages at the end and deletes it.

    The first makes sure the second has a freelist in hand (``me_pghead``), which is when LMDB drops the dirty
    overflow pages of a deleted value instead of writing them (``mdb_ovpage_free``): the meta then names ``pages``
    more pages than the file holds, all of them in the freelist.
    """
    env = _open(data_dir)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True, db=meta) as txn:
            txn.put(b"loose-tail-probe", b"p" * PAGE_BYTES * 3)
        with env.begin(write=True, db=meta) as txn:
            txn.delete(b"loose-tail-probe")
        with env.begin(write=True, db=meta) as txn:
            txn.put(b"loose-tail-probe", b"q" * PAGE_BYTES * pages)
            txn.delete(b"loose-tail-probe")
    finally:
        env.close()


def end_of_a_page_in_use(data_dir: Path) -> int:
    """Store a value on new pages at the end of the file; return the end offset of a page it surely occupies.

    The value's pages are contiguous and new (``_IN_USE_VALUE_PAGES`` is more than are free), so they lie within
    the pages the commit added; the other pages it added (branch and freelist pages) number ``others``, so the
    value starts at most ``others`` pages in and the page after that is the value's. Cutting the file anywhere
    before the returned offset removes a page a reader of that value needs: a truly truncated file.
    """
    env = _open(data_dir)
    try:
        last_before = env.info()["last_pgno"]
        meta = env.open_db(b"meta")
        with env.begin(write=True, db=meta) as txn:
            txn.put(b"in-use-probe", b"u" * PAGE_BYTES * (_IN_USE_VALUE_PAGES - 1))  # header and key fit in one
        others = env.info()["last_pgno"] - last_before - _IN_USE_VALUE_PAGES
    finally:
        env.close()
    assert 0 <= others < _IN_USE_VALUE_PAGES - 2
    page_in_value = last_before + 1 + others + 1
    return (page_in_value + 1) * PAGE_BYTES
