"""Owning a data directory, and the checks that run before LMDB maps a byte of it.

Two things go wrong at start-up without these:

* Two processes open one store for writing. LMDB's own lock serialises their write transactions but not their
  memory: each engine trusts its in-memory journal head and inbox, so each overwrites the other's records (lost
  acknowledged events, a wallet paid out twice). :class:`DataDirLock` makes the data directory belong to one
  process: an exclusive ``flock`` on ``<data dir>/scrip.lock``, held open for the life of the store. It is a
  separate file on purpose: LMDB's ``lock.mdb`` uses POSIX record locks, which one process's second ``close()`` of
  the file would silently drop, so the second opener must be refused before it ever opens the environment. The
  kernel releases a ``flock`` when its holder exits, however it exits (SIGKILL included), so there is nothing stale
  to clean up.
* LMDB maps ``data.mdb`` and trusts its meta pages. A file that ends before a page its newest commit uses ends in
  SIGBUS on the first read past the end of the file; a map smaller than the data already stored lets the server
  start and then fail its first commit. :func:`check_data_file` reads the two meta pages with plain ``read()``
  calls (never through a mapping) and refuses both with one line. A file may legitimately end before the last page
  its meta names when those pages are free (LMDB never writes a page a transaction allocated and freed again):
  then the freelist is read with ``pread`` (:mod:`scrip_actor._lmdb_freelist`) and the file is refused only if a
  missing page is not in it. A writer then extends the file to its last page (a sparse hole; see :func:`_extend`).
"""

from __future__ import annotations

import fcntl
import os
import struct
import weakref
from pathlib import Path

from scrip_actor._lmdb_freelist import FreelistDamaged, FreelistRoot, FreelistTruncated, free_pages_between
from scrip_actor.errors import DataDirInUse, DataDirUnusable, DataFileDamaged, MapTooSmall

__all__ = ["DataDirLock", "DataFileFacts", "check_data_file", "held_in_this_process", "prepare_data_dir"]

LOCK_FILE_NAME = "scrip.lock"
ENV_DIR_NAME = "ledger.lmdb"
DATA_FILE_NAME = "data.mdb"

# LMDB 0.9 on a 64-bit build (py-lmdb bundles it): a 16-byte page header, then MDB_meta. Offsets within a meta page.
_META_MAGIC = 0xBEEFC0DE
_META_VERSION = 1
_META_MAGIC_AT = 16  # mm_magic, mm_version: two u32
_META_MAPSIZE_AT = 32  # mm_mapsize: size_t
_META_PAGE_SIZE_AT = 40  # mm_dbs[FREE_DBI].md_pad holds the page size: u32
_META_FREE_DEPTH_AT = 46  # mm_dbs[FREE_DBI].md_depth: u16
_META_FREE_ROOT_AT = 80  # mm_dbs[FREE_DBI].md_root: u64
_META_LAST_PAGE_AT = 136  # mm_last_pg, mm_txnid: two u64
_META_BYTES = 152
_PAGE_SIZE_MIN = 512
_PAGE_SIZE_MAX = 65536
_PID_BYTES_MAX = 32
_FIRST_DATA_PAGE = 2  # pages 0 and 1 are the meta pages
_LIVE_WRITER_ATTEMPTS = 3  # a refused check is redone while commits land meanwhile (verify beside a server)

# Data directories this process holds the lock of (real paths): a second open here must not even open LMDB.
_held: set[str] = set()


def held_in_this_process(data_dir: Path) -> bool:
    """Whether this process already owns ``data_dir`` (an open engine or writable store)."""
    return os.path.realpath(data_dir) in _held


def prepare_data_dir(data_dir: Path, *, create: bool) -> None:
    """Refuse a data directory that is not a directory (or cannot be created); create it when ``create``."""
    for path in (data_dir, data_dir / ENV_DIR_NAME):
        if path.exists() and not path.is_dir():
            raise DataDirUnusable(f"{path} is not a directory")
    if not create:
        return
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent is a file, no permission, read-only file system
        raise DataDirUnusable(f"cannot create data directory {data_dir}: {error.strerror or error}") from None


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/scrip.lock`` (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        """Take the lock, or raise :class:`DataDirInUse` naming the holder's pid.

        The pid written into the file is only for that message: the lock is the flock, never the file's content.
        """
        self.path = data_dir / LOCK_FILE_NAME
        self._real = os.path.realpath(data_dir)
        if self._real in _held:
            raise DataDirInUse(f"data directory {data_dir} is already open in this process")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise DataDirUnusable(f"cannot open {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, _PID_BYTES_MAX, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise DataDirInUse(f"data directory {data_dir} is in use by {who}") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held.add(self._real)
        # Released by release(), or when this object is collected: a store dropped without close() (an exception
        # part-way through opening an engine) must not keep the directory locked for the rest of the process.
        self._release = weakref.finalize(self, _unlock, fd, self._real)

    def release(self) -> None:
        """Give the directory up (idempotent). The file stays: unlinking it would let two holders lock two inodes."""
        self._release()


def _unlock(fd: int, real_path: str) -> None:
    _held.discard(real_path)
    os.ftruncate(fd, 0)  # no stale pid for the next reader of the file
    os.close(fd)  # closing the last descriptor releases the flock


class DataFileFacts:
    """What the newest meta page of an existing ``data.mdb`` says, and how the file's length compares."""

    def __init__(self, *, file_bytes: int, used_bytes: int, map_size_bytes: int, free_tail_pages: int) -> None:
        assert used_bytes > 0
        assert free_tail_pages >= 0
        assert (free_tail_pages == 0) == (used_bytes <= file_bytes)
        self.file_bytes = file_bytes  # as found, before any extension
        self.used_bytes = used_bytes  # (last page + 1) * page size: what the newest commit needs mapped
        self.map_size_bytes = map_size_bytes  # the map size the last writer recorded
        # Pages past the end of the file, every one of them free (loose pages LMDB never wrote): see _lmdb_freelist.
        self.free_tail_pages = free_tail_pages


class _Meta:
    """The fields of one meta page the checks need."""

    def __init__(self, first: bytes, base: int, page_size: int) -> None:
        (self.map_size_bytes,) = struct.unpack_from("<Q", first, base + _META_MAPSIZE_AT)
        self.last_page, self.txn_id = struct.unpack_from("<QQ", first, base + _META_LAST_PAGE_AT)
        (self.free_depth,) = struct.unpack_from("<H", first, base + _META_FREE_DEPTH_AT)
        (self.free_root,) = struct.unpack_from("<Q", first, base + _META_FREE_ROOT_AT)
        self.page_size = page_size
        self.used_bytes = (self.last_page + 1) * page_size


def check_data_file(
    data_dir: Path, *, map_size_bytes: int | None, extend_free_tail: bool = False
) -> DataFileFacts | None:
    """Refuse a ``data.mdb`` LMDB could not map safely; None when there is none yet (a new store).

    A file shorter than its newest commit is truncated only when a missing page is in use: the pages LMDB
    allocated and freed again in one transaction are never written, so a whole file can end before its last page
    (see :mod:`scrip_actor._lmdb_freelist`). Those pages must all be in the freelist, read without a mapping.

    Args:
        map_size_bytes: the map the caller will open with; None to skip that check (read-only use maps at least
            what is stored).
        extend_free_tail: when every check passed and the file ends before its last page (all of the missing
            pages free), extend it to that page with a sparse hole of zeros. Only a writer that holds the data
            directory's lock asks for this; ``verify`` never writes.

    Raises:
        DataFileDamaged: the file is not LMDB's, shorter than its newest commit with a missing page in use (mapping
            it would SIGBUS), or its freelist is malformed.
        MapTooSmall: the data already stored does not fit in ``map_size_bytes``.
    """
    path = data_dir / ENV_DIR_NAME / DATA_FILE_NAME
    try:
        with path.open("rb") as file:
            meta, file_bytes, free_tail_pages = _read_data_file(file.fileno(), path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DataFileDamaged(f"cannot read {path}: {error.strerror or error}") from None
    facts = DataFileFacts(
        file_bytes=file_bytes,
        used_bytes=meta.used_bytes,
        map_size_bytes=meta.map_size_bytes,
        free_tail_pages=free_tail_pages,
    )
    if map_size_bytes is not None and map_size_bytes < facts.used_bytes:
        raise MapTooSmall(
            f"storage.lmdb_map_size_bytes is {map_size_bytes} but {path} already holds {facts.used_bytes} bytes: "
            f"raise it to at least {facts.used_bytes} (the stored map size was {facts.map_size_bytes})"
        )
    if extend_free_tail and free_tail_pages:
        _extend(path, facts.used_bytes)
    return facts


def _read_data_file(fd: int, path: Path) -> tuple[_Meta, int, int]:
    """The newest meta, the file's length and its free tail pages (see :func:`_free_tail_pages`).

    ``verify`` runs beside a live writer and these reads hold no LMDB read transaction, so a commit can land
    between them. Two orders keep that from reading as damage: the length is taken *after* the meta pages, as a
    writer writes its pages before its meta page; and a refusal stands only if the newest commit is still the one
    checked, else (a commit may have reused the freelist pages just walked) the check runs again, a bounded number
    of times. With the data directory's lock held (``serve``) no commit can land, and nothing is retried.
    """
    for attempt in range(_LIVE_WRITER_ATTEMPTS):
        first = os.pread(fd, _PAGE_SIZE_MAX + _META_BYTES, 0)
        file_bytes = os.fstat(fd).st_size
        meta = _newest_meta(path, first, file_bytes)
        try:
            return meta, file_bytes, _free_tail_pages(fd, path, meta, file_bytes)
        except DataFileDamaged:
            again = _newest_meta(path, os.pread(fd, _PAGE_SIZE_MAX + _META_BYTES, 0), file_bytes)
            if again.txn_id == meta.txn_id or attempt == _LIVE_WRITER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _extend(path: Path, used_bytes: int) -> None:
    """Make the file as long as its newest commit says, so no reader of any kind can fault on the free tail.

    Why extend at all, when LMDB itself never reads a free page: a free tail that stays missing until LMDB happens
    to reuse those pages leaves every open walking the freelist again, ``env.copy()`` (``mdb_env_copyfd0``)
    writing a copy that is short in the same way, and any tool that maps the file and reads up to ``mm_last_pg``
    (a checksummer, a backup agent, a future LMDB) one SIGBUS away. Why it is safe: every page extended is free,
    so its bytes are never read before LMDB writes the page whole; the zeros are a sparse hole (no disk used); one
    ``truncate`` either happens or not (a crash before it leaves the file as it was, and the next open does it
    again); and the caller holds the data directory's lock, so no other writer exists. LMDB does the same itself
    with ``MDB_WRITEMAP``, which ``ftruncate``s the file to the whole map at open.
    """
    try:
        os.truncate(path, used_bytes)
    except OSError as error:
        raise DataDirUnusable(f"cannot extend {path} to {used_bytes} bytes: {error.strerror or error}") from None


def _newest_meta(path: Path, first: bytes, file_bytes: int) -> _Meta:
    """Parse both meta pages (page 0 and page 1) and return the one with the larger transaction id."""
    damaged = f"{path} is damaged ({file_bytes} bytes)"
    if len(first) < _META_BYTES:
        raise DataFileDamaged(f"{damaged}: shorter than an LMDB meta page; restore it from a backup")
    magic, version = struct.unpack_from("<II", first, _META_MAGIC_AT)
    (page_size,) = struct.unpack_from("<I", first, _META_PAGE_SIZE_AT)
    if magic != _META_MAGIC or version != _META_VERSION:
        raise DataFileDamaged(f"{damaged}: not an LMDB data file (magic {magic:#x}, version {version})")
    if not _PAGE_SIZE_MIN <= page_size <= _PAGE_SIZE_MAX or page_size & (page_size - 1):
        raise DataFileDamaged(f"{damaged}: impossible page size {page_size}")
    if len(first) < page_size + _META_BYTES:
        raise DataFileDamaged(f"{damaged}: truncated inside its second meta page; restore it from a backup")
    metas = []
    for base in (0, page_size):
        magic, _ = struct.unpack_from("<II", first, base + _META_MAGIC_AT)
        if magic == _META_MAGIC:
            metas.append(_Meta(first, base, page_size))
    return max(metas, key=lambda meta: meta.txn_id)


def _free_tail_pages(fd: int, path: Path, meta: _Meta, file_bytes: int) -> int:
    """How many pages past the end of the file the newest commit names; refuse the file if any of them is in use.

    A page only partly in the file counts as missing (LMDB would read its end past the end of the file).
    """
    if meta.used_bytes <= file_bytes:
        return 0
    first_missing = file_bytes // meta.page_size
    missing = meta.last_page - first_missing + 1
    truncated = (
        f"{path} is damaged ({file_bytes} bytes): truncated, its last commit needs {meta.used_bytes} bytes; "
        "restore it from a backup"
    )
    if first_missing < _FIRST_DATA_PAGE:
        raise DataFileDamaged(truncated)
    freelist = FreelistRoot(
        root_page=meta.free_root, depth=meta.free_depth, page_size_bytes=meta.page_size, last_page=meta.last_page
    )
    try:
        free = free_pages_between(fd, freelist, first_missing, meta.last_page)
    except FreelistTruncated:
        raise DataFileDamaged(truncated) from None
    except FreelistDamaged as error:
        raise DataFileDamaged(f"{path} is damaged ({file_bytes} bytes): {error}; restore it from a backup") from None
    if len(free) != missing:
        raise DataFileDamaged(truncated)
    return missing
