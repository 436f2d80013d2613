"""LMDB's freelist read straight from ``data.mdb`` with ``os.pread``: which pages past the end of the file are free.

Why this exists. LMDB (0.9, bundled in py-lmdb) can commit a newest meta page whose last page lies beyond the end of
the file, and that file is whole. A write transaction takes new pages from the end of the map (``mt_next_pgno``);
when it frees one of them again before it commits (a page split undone by a merge, an overflow value put and
deleted, py-lmdb's ``putmulti`` retrying an append), the page is *loose* (``P_LOOSE``): ``mdb_page_flush`` skips it
(``if (dp->mp_flags & (P_LOOSE|P_KEEP)) { ... continue; }``), ``mdb_freelist_save`` files its number in the
freelist (``FREE_DBI``), and the meta still counts it (``mm_last_pg = txn->mt_next_pgno - 1``). Nothing ever reads
a free page, so the bytes never written are never missed; LMDB's own ``mdb_env_copyfd0`` clamps its copy to the
file's size for this reason (ITS#7886, "Don't try to write past end of file"). A data file is therefore truncated
only when a page past its end is *in use*, which is what :func:`free_pages_between` lets the caller decide:
LMDB's invariant (``mdb_audit``: ``freecount + count + NUM_METAS == mt_next_pgno``) is that every page below
``mt_next_pgno`` is a meta page, a page of some tree, or in the freelist.

How. The freelist is a B-tree (``mm_dbs[FREE_DBI]``: ``md_root``, ``md_depth``) keyed by transaction id; each leaf
value is an IDL, ``u64 count`` then ``count`` page numbers, kept on overflow pages (``F_BIGDATA``) when it does not
fit in the leaf. The walk reads pages with ``os.pread`` and never maps the file: a page past the end of the file is
a short read here, not a SIGBUS. It trusts nothing it reads. Every page number must lie in ``[2, last_page]``, every
page is read at most once (a cycle or a shared page is damage), the tree is exactly ``md_depth`` levels deep, node
offsets and sizes stay inside their page, and an IDL's count fits its value. So the walk reads at most
``last_page + 1`` pages and ends on any input, and whatever is wrong raises :class:`FreelistDamaged` (the file is
damaged) or :class:`FreelistTruncated` (a page the walk needs is past the end of the file) for the caller to turn
into one line.

The layout is LMDB 0.9's on a 64-bit little-endian build (``mdb.c``: ``MDB_page``, ``MDB_node``, ``PAGEBASE`` 0).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

__all__ = ["FreelistDamaged", "FreelistRoot", "FreelistTruncated", "free_pages_between"]

# MDB_page: mp_pgno u64, mp_pad u16, mp_flags u16, then mp_lower u16 / mp_upper u16 (or mp_pages u32 on overflow).
_PAGE_HEADER = struct.Struct("<QHHHH")
_PAGE_HEADER_BYTES = 16  # PAGEHDRSZ: the node offsets (mp_ptrs, u16 each) start here
_OVERFLOW_PAGES = struct.Struct("<I")  # mp_pages, at byte 12 of an overflow page
_OVERFLOW_PAGES_AT = 12
_P_BRANCH = 0x01
_P_LEAF = 0x02
_P_OVERFLOW = 0x04
_P_LEAF2 = 0x20
_P_SUBP = 0x40
_KIND_FLAGS = _P_BRANCH | _P_LEAF | _P_OVERFLOW | _P_LEAF2 | _P_SUBP
# MDB_node: mn_lo u16, mn_hi u16, mn_flags u16, mn_ksize u16, then the key and the data.
_NODE_HEADER = struct.Struct("<HHHH")
_NODE_HEADER_BYTES = 8
_F_BIGDATA = 0x01  # the data is the u64 number of the overflow page that holds it
_TXN_ID_BYTES = 8  # FREE_DBI keys are transaction ids (MDB_INTEGERKEY, size_t)
_PAGE_NUMBER = struct.Struct("<Q")
_ID_BYTES = 8  # MDB_ID, one IDL entry
_FIRST_DATA_PAGE = 2  # pages 0 and 1 are the meta pages, never free
_DEPTH_MAX = 32  # CURSOR_STACK in mdb.c: no LMDB tree is deeper
P_INVALID = 0xFFFF_FFFF_FFFF_FFFF  # md_root of an empty tree


class FreelistDamaged(Exception):
    """The freelist is not a well-formed LMDB tree; the message says where."""


class FreelistTruncated(Exception):
    """A page the freelist needs lies past the end of the file: the file is truncated."""


class FreelistRoot:
    """Where the newest meta page says the freelist is, and the bounds it holds for every page number."""

    def __init__(self, *, root_page: int, depth: int, page_size_bytes: int, last_page: int) -> None:
        assert page_size_bytes > _PAGE_HEADER_BYTES
        assert last_page >= _FIRST_DATA_PAGE - 1
        self.root_page = root_page  # P_INVALID: the freelist is empty
        self.depth = depth
        self.page_size_bytes = page_size_bytes
        self.last_page = last_page  # mm_last_pg of the meta page


def free_pages_between(fd: int, freelist: FreelistRoot, first_page: int, last_page: int) -> set[int]:
    """The pages in ``first_page..last_page`` (inclusive) that the freelist of ``freelist`` names.

    Reads the whole freelist with ``os.pread`` on ``fd`` (never a mapping); see the module docstring for what is
    checked on the way.

    Raises:
        FreelistDamaged: anything malformed: a page of the wrong kind, an offset outside its page, a page number
            outside the file's pages, a page reached twice, an IDL longer than its value.
        FreelistTruncated: a freelist page (tree or overflow) is past the end of the file.
    """
    assert _FIRST_DATA_PAGE <= first_page <= last_page <= freelist.last_page
    if freelist.root_page == P_INVALID:
        return set()
    if not 1 <= freelist.depth <= _DEPTH_MAX:
        raise FreelistDamaged(f"freelist depth {freelist.depth}")
    walk = _Walk(fd, freelist)
    found: set[int] = set()
    for idl in walk.idls():
        for page in idl:
            if not _FIRST_DATA_PAGE <= page <= freelist.last_page:
                raise FreelistDamaged(f"freelist names page {page}, outside 2..{freelist.last_page}")
            if first_page <= page <= last_page:
                found.add(page)
    return found


class _Walk:
    """One depth-first walk of the freelist tree; every page it reads is read once (see the module docstring)."""

    def __init__(self, fd: int, freelist: FreelistRoot) -> None:
        self._fd = fd
        self._freelist = freelist
        self._seen: set[int] = set()  # every page read, tree and overflow: each at most once
        self._file_bytes = os.fstat(fd).st_size

    def idls(self) -> Iterator[tuple[int, ...]]:
        """Yield the page numbers of each freelist record (an IDL), leaf by leaf."""
        stack = [(self._freelist.root_page, 1)]
        while stack:
            page_number, level = stack.pop()
            page = self._page(page_number, 1)
            flags, nodes = _tree_page(page, page_number)
            if level < self._freelist.depth:
                if flags != _P_BRANCH:
                    raise FreelistDamaged(f"freelist page {page_number} at level {level} is not a branch page")
                # Pushed in reverse so leaves come out in key order (the order does not matter for the answer).
                stack.extend((_child(page, at, page_number), level + 1) for at in reversed(nodes))
            elif flags != _P_LEAF:
                raise FreelistDamaged(f"freelist page {page_number} at depth {level} is not a leaf page")
            else:
                for at in nodes:
                    yield _idl(self._leaf_value(page, at, page_number), page_number)

    def _page(self, page_number: int, pages: int) -> bytes:
        """Read ``pages`` pages from ``page_number``: each new to this walk and inside the file's page range."""
        last = page_number + pages - 1
        size = self._freelist.page_size_bytes
        if not _FIRST_DATA_PAGE <= page_number <= last <= self._freelist.last_page:
            raise FreelistDamaged(f"freelist refers to pages {page_number}..{last}, beyond {self._freelist.last_page}")
        # Before anything is allocated or counted: a corrupt page count must not cost more than the file holds.
        if (last + 1) * size > self._file_bytes:
            raise FreelistTruncated(f"freelist pages {page_number}..{last} end past the end of the file")
        for number in range(page_number, last + 1):
            if number in self._seen:
                raise FreelistDamaged(f"freelist reaches page {number} twice")
            self._seen.add(number)
        data = os.pread(self._fd, pages * size, page_number * size)
        if len(data) < pages * size:  # the file shrank since fstat
            raise FreelistTruncated(f"freelist pages {page_number}..{last} end past the end of the file")
        return data

    def _leaf_value(self, page: bytes, at: int, page_number: int) -> bytes:
        """The value of the leaf node at offset ``at``: in the page, or on its overflow pages (``F_BIGDATA``)."""
        low, high, node_flags, key_bytes = _NODE_HEADER.unpack_from(page, at)
        value_bytes = low | high << 16
        if key_bytes != _TXN_ID_BYTES or node_flags & ~_F_BIGDATA:
            raise FreelistDamaged(f"freelist page {page_number}: a node with key size {key_bytes}, flags {node_flags}")
        value_at = at + _NODE_HEADER_BYTES + key_bytes
        if not node_flags & _F_BIGDATA:
            if value_at + value_bytes > len(page):
                raise FreelistDamaged(f"freelist page {page_number}: a value runs past the end of its page")
            return page[value_at : value_at + value_bytes]
        if value_at + _PAGE_NUMBER.size > len(page):
            raise FreelistDamaged(f"freelist page {page_number}: an overflow page number runs past its page")
        (overflow_page,) = _PAGE_NUMBER.unpack_from(page, value_at)
        return self._overflow_value(overflow_page, value_bytes)

    def _overflow_value(self, page_number: int, value_bytes: int) -> bytes:
        first = self._page(page_number, 1)
        page_flags = _PAGE_HEADER.unpack_from(first)[2]
        (pages,) = _OVERFLOW_PAGES.unpack_from(first, _OVERFLOW_PAGES_AT)
        if page_flags & _KIND_FLAGS != _P_OVERFLOW or _PAGE_HEADER.unpack_from(first)[0] != page_number:
            raise FreelistDamaged(f"freelist value page {page_number} is not an overflow page")
        if pages < 1 or _PAGE_HEADER_BYTES + value_bytes > pages * self._freelist.page_size_bytes:
            raise FreelistDamaged(
                f"freelist overflow page {page_number}: {pages} pages cannot hold {value_bytes} bytes"
            )
        rest = self._page(page_number + 1, pages - 1) if pages > 1 else b""
        return (first + rest)[_PAGE_HEADER_BYTES : _PAGE_HEADER_BYTES + value_bytes]


def _tree_page(page: bytes, page_number: int) -> tuple[int, list[int]]:
    """A branch or leaf page's kind flag and its node offsets, each checked to leave a whole node header in the page."""
    stored_number, _, flags, lower, upper = _PAGE_HEADER.unpack_from(page)
    if stored_number != page_number:
        raise FreelistDamaged(f"freelist page {page_number} says it is page {stored_number}")
    if not _PAGE_HEADER_BYTES <= lower <= upper <= len(page) or (lower - _PAGE_HEADER_BYTES) % 2:
        raise FreelistDamaged(f"freelist page {page_number}: bounds {lower}..{upper}")
    keys = (lower - _PAGE_HEADER_BYTES) // 2
    nodes = list(struct.unpack_from(f"<{keys}H", page, _PAGE_HEADER_BYTES))
    if any(not upper <= at <= len(page) - _NODE_HEADER_BYTES for at in nodes):
        raise FreelistDamaged(f"freelist page {page_number}: a node outside {upper}..{len(page)}")
    if not nodes:
        raise FreelistDamaged(f"freelist page {page_number} is empty")
    return flags & _KIND_FLAGS, nodes


def _child(page: bytes, at: int, page_number: int) -> int:
    """The child page number of the branch node at ``at`` (mn_lo | mn_hi << 16 | mn_flags << 32)."""
    low, high, top, key_bytes = _NODE_HEADER.unpack_from(page, at)
    if at + _NODE_HEADER_BYTES + key_bytes > len(page):
        raise FreelistDamaged(f"freelist page {page_number}: a branch key runs past the end of its page")
    return low | high << 16 | top << 32


def _idl(value: bytes, page_number: int) -> tuple[int, ...]:
    """The page numbers of one freelist record: ``count``, then ``count`` u64 page numbers (room may follow)."""
    if len(value) < _ID_BYTES or len(value) % _ID_BYTES:
        raise FreelistDamaged(f"freelist page {page_number}: a record of {len(value)} bytes is not an IDL")
    (count,) = _PAGE_NUMBER.unpack_from(value)
    if count > len(value) // _ID_BYTES - 1:
        raise FreelistDamaged(f"freelist page {page_number}: an IDL of {count} pages in {len(value)} bytes")
    return struct.unpack_from(f"<{count}Q", value, _ID_BYTES)
