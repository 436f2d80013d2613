"""The lease protocol's messages, the state each side persists, and the codecs and key helpers both sides share.

Private to ``scrip_actor.partitioned``; ``_leases`` is the face (its docstring tells the protocol).
"""

from __future__ import annotations

import struct
from typing import Literal

import lmdb
import msgspec

# --- messages (partition → owner) ------------------------------------------------------------------------------


class LeaseRequest(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A partition asks for a slice of a wallet; ``request_id`` makes a redelivery get the same answer."""

    partition: int
    wallet_id: str
    want_minor: int
    request_id: str


class LeaseReturn(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A partition gives a lease back with what it did not draw; the owner books the rest as spent."""

    partition: int
    wallet_id: str
    lease_id: str
    unused_minor: int


class EndgameDebit(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One debit made at the owner (the slow path), deduplicated by the record that caused it and its ordinal.

    ``ordinal`` tells apart the debits one record makes (two actions, two wallets of one owner): keyed by the
    record alone, the second would overwrite the first's pending copy and be answered from the first's reply.
    """

    partition: int
    wallet_id: str
    amount_minor: int
    origin_partition: int
    origin_offset: int
    ordinal: int = 0


# --- replies (owner → partition) -------------------------------------------------------------------------------


class LeaseGrant(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A lease: the partition may draw up to ``granted_minor`` until ``expires_at_ms``."""

    partition: int
    wallet_id: str
    request_id: str
    lease_id: str
    granted_minor: int
    expires_at_ms: int


class LeaseDenied(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """No lease: the wallet is in its endgame (or unknown); debit through the owner instead."""

    partition: int
    wallet_id: str
    request_id: str
    reason: Literal["endgame", "unknown_wallet"]


class ReturnAccepted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The lease is closed (also the answer to a second return of the same lease)."""

    partition: int
    wallet_id: str
    lease_id: str


class Debited(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The endgame debit was taken from the remainder."""

    partition: int
    wallet_id: str
    origin_partition: int
    origin_offset: int
    amount_minor: int
    ordinal: int = 0


class Insufficient(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The endgame debit was refused: the remainder (shown) is smaller than the amount."""

    partition: int
    wallet_id: str
    origin_partition: int
    origin_offset: int
    remainder_minor: int
    ordinal: int = 0


LeaseMessage = LeaseRequest | LeaseReturn | EndgameDebit
LeaseReply = LeaseGrant | LeaseDenied | ReturnAccepted | Debited | Insufficient

# --- persisted state -------------------------------------------------------------------------------------------


class WalletBooks(msgspec.Struct, kw_only=True):
    """The owner's books for one wallet; ``leases_granted_count`` numbers the lease ids."""

    funded_minor: int = 0
    remainder_minor: int = 0
    outstanding_minor: int = 0
    spent_minor: int = 0
    leases_granted_count: int = 0


class OpenLease(msgspec.Struct, frozen=True, kw_only=True):
    """A lease the owner has granted and not yet seen returned."""

    partition: int
    wallet_id: str
    granted_minor: int
    expires_at_ms: int


class Holding(msgspec.Struct, kw_only=True):
    """A partition's side of one wallet: its current lease, its pending request and its request counter."""

    lease_id: str | None = None
    granted_minor: int = 0
    drawn_minor: int = 0
    expires_at_ms: int = 0
    pending_request_id: str | None = None
    pending_want_minor: int = 0
    requests_sent_count: int = 0
    denied_at_ms: int | None = None


class LeasePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How big leases are and when the endgame starts.

    ``partitions_count × min_lease_minor`` is the endgame threshold; a grant is at most the remainder divided by
    ``partitions_count × share_divisor`` (so grants shrink with the remainder) and at least ``min_lease_minor``.
    A partition asks for ``max(debit, request_minor)``: by default as much as it may get, its share.
    """

    partitions_count: int
    min_lease_minor: int
    share_divisor: int = 2
    request_minor: int = 1 << 62
    lease_ttl_ms: int = 60_000
    denied_retry_ms: int = 5_000


ENCODER = msgspec.msgpack.Encoder()
REPLY_DECODER = msgspec.msgpack.Decoder(LeaseReply)
MESSAGE_DECODER = msgspec.msgpack.Decoder(LeaseMessage)
BOOKS_DECODER = msgspec.msgpack.Decoder(WalletBooks)
LEASE_DECODER = msgspec.msgpack.Decoder(OpenLease)
HOLDING_DECODER = msgspec.msgpack.Decoder(Holding)

OWNER_DB = b"leases.owner"
PARTITION_DB = b"leases.partition"


def assert_books(books: WalletBooks) -> None:
    assert books.remainder_minor >= 0, books
    assert books.outstanding_minor >= 0, books
    assert books.spent_minor >= 0, books
    assert books.outstanding_minor + books.remainder_minor + books.spent_minor == books.funded_minor, books


def prefixed(txn: lmdb.Transaction, db: object, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) whose key starts with ``prefix``, in key order."""
    rows: list[tuple[bytes, bytes]] = []
    with txn.cursor(db=db) as cursor:
        if not cursor.set_range(prefix):
            return rows
        for key, value in cursor:
            if not key.startswith(prefix):
                break
            rows.append((bytes(key), bytes(value)))
    return rows


ORIGIN = struct.Struct(">IQI")  # big-endian: key order is (partition, offset, ordinal), so pruning is a range


def origin_key(prefix: bytes, origin_partition: int, origin_offset: int, ordinal: int = 0) -> bytes:
    return prefix + ORIGIN.pack(origin_partition, origin_offset, ordinal)
