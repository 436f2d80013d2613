"""Ids that name their partition: what lets the front route ``GET /v1/events/{id}`` to the one store holding it.

Every store has a 64-bit id prefix (``meta`` key ``id_prefix``, :mod:`scrip_actor.ids`): the high half of each
event, journal-entry and state-change id. A single-process store draws it at random. A partition's store gets
:func:`partition_prefix` instead: its top 32 bits are the partition number, so the first 8 hex digits of every
such id *are* the partition (``00000002-...`` lives in partition 2), and its low 32 bits are a CRC-32 of the
topic, so two topics' partition ``n`` do not mint the same ids. It is a pure function of (topic, partition):
a store rebuilt by replaying the partition from offset 0 into a fresh directory mints the very same ids.

A participant created by an event carries the first 8 hex digits of that event's id
(:func:`scrip_actor.engine._step.created_participant_id`), so participant ids name their partition the same way.
Catalog ids (programs, assets, rules) are random UUIDs copied with the seeded catalog: identical in every
partition, and not routable by their digits (any partition answers them).

The engine role calls :func:`claim_partition_ids` before it opens partition ``n``'s store: a store seeded by
copying one template (tests/partitioned/partition_setup.py) holds the template's random prefix, and two
partitions would mint colliding ids. The prefix may only change while the store has minted no id yet (no
event, journal entry, state change or participant); otherwise the claim is refused with
:class:`ForeignIdPrefix` rather than leave a store whose old ids name another partition.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from scrip_actor.config import StorageSettings
from scrip_actor.store import Store, encode

__all__ = ["PARTITIONS_MAX", "ForeignIdPrefix", "claim_partition_ids", "partition_of", "partition_prefix"]

PARTITIONS_MAX = 1 << 32  # the partition number fills the prefix's top 32 bits
# The databases an id of this store's prefix is stored in (participant ids carry it since they derive from events).
_MINTED = ("events", "journal", "state_history", "participants")


class ForeignIdPrefix(ValueError):
    """A partition's store already minted ids under another prefix: they would name the wrong partition."""


def partition_prefix(topic: str, partition: int) -> int:
    """The id prefix of partition ``partition`` of ``topic``: the partition in the top 32 bits, CRC-32 below."""
    if not 0 <= partition < PARTITIONS_MAX:
        raise ValueError(f"a partition number is 0..{PARTITIONS_MAX - 1}, got {partition}")
    return partition << 32 | zlib.crc32(topic.encode())


def partition_of(identifier: str) -> int | None:
    """The partition an event, journal-entry or participant id of a partition's store names, or None when
    ``identifier`` is not a UUID's text at all (the caller answers 404 as for any unknown id)."""
    if not isinstance(identifier, str) or len(identifier) != 36 or identifier[8] != "-":
        return None
    try:
        return int(identifier[:8], 16)
    except ValueError:
        return None


def claim_partition_ids(storage: StorageSettings, topic: str, partition: int) -> None:
    """Make the store at ``storage.data_dir`` mint partition ``partition``'s ids (see the module docstring).

    Opens the store (so it raises DataDirInUse while a previous owner holds it; the caller retries), does nothing
    if the prefix is already the partition's, sets it if the store has minted nothing yet, and raises
    :class:`ForeignIdPrefix` otherwise.
    """
    wanted = partition_prefix(topic, partition)
    store = Store(storage.data_dir, map_size_bytes=storage.lmdb_map_size_bytes, sync=storage.sync, max_readers=4)
    try:
        if store.id_prefix == wanted:
            return
        minted = {name: store.count(name) for name in _MINTED if store.count(name)}
        if minted:
            raise ForeignIdPrefix(
                f"the store {Path(storage.data_dir)} already holds ids under another prefix ({minted}): it was "
                f"not made for partition {partition} of topic {topic!r}, or was made before partition ids existed; "
                f"partition ids can only be set on a store with no events yet (seed it from a catalog-only copy, "
                f"or rebuild it by replaying the partition into a fresh directory)"
            )
        store.write([[("meta", b"id_prefix", encode(wanted))]])
    finally:
        store.close()
