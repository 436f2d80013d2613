"""The freelist walk of the open check finds exactly LMDB's free pages, on freelists big enough to branch.

LMDB's own audit (``mdb_audit`` in mdb.c) holds every commit to ``free pages + pages of every tree + 2 meta pages ==
last page + 1``. The pages of every tree are LMDB's own counts: ``stat()`` of the main and each named database, and
the freelist tree's counts in the meta page (``mm_dbs[FREE_DBI]``: branch, leaf and overflow pages). So the number
of free pages the walk finds over the whole file must be exactly that difference. The stores
are raw LMDB, shaped to give a freelist several levels of work: old read transactions pin snapshots so freed pages
pile up as hundreds of freelist records (a branch page above the leaves), and one large delete frees thousands of
pages in one record (an IDL on overflow pages). (Loose tails, where the walk matters, are made on real stores in
test_loose_tail_pages_are_not_truncation.py: this test is about the walk being exact on a big freelist.)
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import lmdb
import pytest

from scrip_actor._lmdb_freelist import FreelistRoot, free_pages_between

_PAGE_BYTES = 4096


def _build(path: Path, rng: random.Random) -> None:
    env = lmdb.open(str(path), map_size=1 << 30, max_dbs=4, max_readers=512)
    db = env.open_db(b"a")
    with env.begin(write=True, db=db) as txn:
        for number in range(20_000):
            txn.put(b"k%07d" % number, os.urandom(rng.randint(10, 300)))
    pinned = [env.begin()]  # held to the end: what is freed from here on cannot be reused, so records pile up
    with env.begin(write=True, db=db) as txn:  # thousands of pages freed at once: one IDL on overflow pages
        for number in range(0, 20_000, 2):
            txn.delete(b"k%07d" % number)
    for _ in range(250):
        if rng.random() < 0.5:
            pinned.append(env.begin())
        with env.begin(write=True, db=db) as txn:
            for _ in range(rng.randint(1, 150)):
                key = b"k%07d" % rng.randint(0, 20_000)
                if rng.random() < 0.6:
                    txn.delete(key)
                else:
                    txn.put(key, os.urandom(rng.randint(10, 2200)))
    for txn in pinned:
        txn.abort()
    env.close()


def _tree_pages(path: Path) -> int:
    """Pages of the main database and every named one, by LMDB's own counts."""
    env = lmdb.open(str(path), readonly=True, max_dbs=4, lock=False)
    try:
        stats = [env.stat()]
        with env.begin() as txn:
            names = [key for key, _ in txn.cursor()]
        stats += [_db_stat(env, name) for name in names]
        return sum(stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"] for stat in stats)
    finally:
        env.close()


def _db_stat(env: lmdb.Environment, name: bytes) -> dict[str, int]:
    db = env.open_db(name, create=False)
    with env.begin() as txn:
        return dict(txn.stat(db))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_walk_finds_every_free_page_once_and_nothing_else(tmp_path: Path, seed: int) -> None:
    _build(tmp_path, random.Random(seed))
    data = (tmp_path / "data.mdb").read_bytes()
    metas = [(struct.unpack_from("<Q", data, base + 144)[0], base) for base in (0, _PAGE_BYTES)]
    _, base = max(metas)
    depth, free_branch, free_leaf, free_overflow = struct.unpack_from("<HQQQ", data, base + 46)
    (free_root,) = struct.unpack_from("<Q", data, base + 80)
    (last_page,) = struct.unpack_from("<Q", data, base + 136)
    assert depth >= 2  # the walk goes through a branch page
    assert free_overflow > 0  # and reads at least one IDL from overflow pages
    freelist = FreelistRoot(root_page=free_root, depth=depth, page_size_bytes=_PAGE_BYTES, last_page=last_page)
    with (tmp_path / "data.mdb").open("rb") as file:
        free = free_pages_between(file.fileno(), freelist, 2, last_page)
    in_trees = _tree_pages(tmp_path) + free_branch + free_leaf + free_overflow
    assert len(free) + in_trees + 2 == last_page + 1
