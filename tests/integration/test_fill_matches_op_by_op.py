"""``Store.write`` (and so ``Store.fill``) leaves a store exactly as applying each op of each record in turn would.

``fill`` groups a batch per database, keeps only the last value of a key in the last-value databases, puts with
``putmulti``, appends where it can and falls back when LMDB refuses an append. None of that may show: each batch of
random records (few keys, so repeats are common; keys out of order in the append databases; deletes of present and
absent keys; empty values) goes through ``write`` into one store and op by op, with ``txn.put`` and ``txn.delete``,
into a reference store, and every database must hold the same after every batch. Batches follow one another, so
later ones update, re-append and delete what earlier ones wrote.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from scrip_actor.store import DATABASES, Op, Store, be64

# Keys of 8 big-endian bytes (as the append databases use) from a small range, plus short arbitrary ones.
keys = st.one_of(st.integers(min_value=0, max_value=12).map(be64), st.binary(min_size=1, max_size=2))
values = st.one_of(st.none(), st.binary(max_size=6))  # None deletes; b"" is a value, not a delete
ops = st.tuples(st.sampled_from(DATABASES), keys, values)
records = st.lists(st.lists(ops, max_size=10), max_size=6)  # 0 and 1 record take fill's short path
batches = st.lists(records, min_size=1, max_size=4)


def _store(path: Path) -> Store:
    return Store(path, map_size_bytes=16 << 20, sync=False, max_readers=16)


def _apply_op_by_op(store: Store, batch: list[list[Op]]) -> None:
    """The reference: every op in turn, in one transaction."""
    txn = store.begin_write()
    for ops_of_record in batch:
        for db, key, value in ops_of_record:
            if value is None:
                txn.delete(key, db=store.dbs[db])
            else:
                txn.put(key, value, db=store.dbs[db])
    store.commit_write(txn)


def _contents(store: Store) -> dict[str, list[tuple[bytes, bytes]]]:
    contents = {db: list(store.scan(db)) for db in DATABASES}
    contents["meta"] = [(key, value) for key, value in contents["meta"] if key != b"id_prefix"]  # random per store
    return contents


# A put and then a delete of one key in a database that keeps order, and the reverse.
@example([[[("journal_index", b"k", b"v"), ("journal_index", b"k", None)], [("journal_index", b"j", b"")]]])
@example([[[("lots", b"k", None)], [("lots", b"k", b"v")]]])
# An append database: a key repeated in a batch, a key lower than the last, and an update in a later batch.
@example([[[("journal", be64(3), b"a")], [("journal", be64(1), b"b"), ("journal", be64(3), b"c")]]])
@example([[[("events", be64(5), b"a")], [("events", be64(6), b"b")]], [[("events", be64(5), b"c")], []]])
# Deletes of absent keys, and a last-value database whose last op deletes.
@example([[[("events_failed", be64(9), None)], [("meta", b"x", b"1"), ("meta", b"x", None)]]])
@settings(max_examples=200, deadline=None)
@given(batches)
def test_write_matches_applying_each_op_in_turn(batches: list[list[list[Op]]]) -> None:
    with tempfile.TemporaryDirectory(prefix="scrip-fill-") as scratch:
        filled, reference = _store(Path(scratch) / "filled"), _store(Path(scratch) / "reference")
        try:
            for batch in batches:
                filled.write(batch)
                _apply_op_by_op(reference, batch)
                assert _contents(filled) == _contents(reference)
        finally:
            filled.close()
            reference.close()
