"""Budget leases: a shared wallet spent from many partitions, never one unit overspent, never stranded.

A PREFUNDED wallet (docs/money-out.md) or a rule budget (docs/budgets.md) belongs to one *owner* partition, but the
credits that spend it happen on every partition. Asking the owner for each credit costs a round trip through the log;
splitting the funding into fixed shares strands whatever the quiet partitions never spend. So the owner *leases*
slices of the remainder to the partitions that ask, and a partition spends its slice synchronously, in the same LMDB
transaction as the credit. Grants shrink as the remainder shrinks, and below a threshold
(``remainder < partitions × min_lease_minor``) the owner grants no more: every further debit travels to the owner
(the *endgame*, the slow path), so the last units go to whoever asks first instead of sitting in idle leases.

Two sides, each a deterministic state machine persisted in LMDB (its own named database, in the caller's txn):

* ``LeaseOwner.handle(txn, message, now_ms) -> reply`` on the owner partition, for ``LeaseRequest``,
  ``LeaseReturn`` and ``EndgameDebit``. Replies are idempotent: a redelivered request or debit gets the reply it got
  the first time (stored under its request id or origin offset), and a lease returned twice is closed once.
* ``PartitionLeases`` on every partition: ``draw`` spends from the local lease (True) or reports it short (False);
  then ``short`` returns the messages to produce — the debit itself as an ``EndgameDebit`` (one round trip, never
  two) and, unless a request is pending or the owner recently denied one, a ``LeaseReturn`` of the old lease and a
  ``LeaseRequest`` for a new one. ``on_reply`` applies the owner's replies; ``expire``, ``release_all`` (on
  rebalance) and ``pending`` (re-send after a restart) keep nothing stranded and nothing lost.

Every message a partition produces is first recorded in its LMDB txn and stays pending until the owner's reply
arrives, so a crash between commit and produce loses nothing: ``pending`` re-sends it, and the owner's idempotency
makes the re-send harmless. The owner's books hold, asserted before each write and after each read,
``outstanding_minor + remainder_minor + spent_minor == funded_minor``, where *outstanding* counts open leases at their
full grant (the owner cannot know what a partition has drawn until the lease comes back). A lease that expires is not
reclaimed by the owner on its own — that could hand out units the partition already spent — but the partition stops
drawing from it at ``expires_at_ms`` and returns it the next time it runs ``expire``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
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
    """One debit made at the owner (the slow path), deduplicated by the record that caused it."""

    partition: int
    wallet_id: str
    amount_minor: int
    origin_partition: int
    origin_offset: int


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


class Insufficient(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The endgame debit was refused: the remainder (shown) is smaller than the amount."""

    partition: int
    wallet_id: str
    origin_partition: int
    origin_offset: int
    remainder_minor: int


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


_ENCODER = msgspec.msgpack.Encoder()
_REPLY_DECODER = msgspec.msgpack.Decoder(LeaseReply)
_MESSAGE_DECODER = msgspec.msgpack.Decoder(LeaseMessage)
_BOOKS_DECODER = msgspec.msgpack.Decoder(WalletBooks)
_LEASE_DECODER = msgspec.msgpack.Decoder(OpenLease)
_HOLDING_DECODER = msgspec.msgpack.Decoder(Holding)

OWNER_DB = b"leases.owner"
PARTITION_DB = b"leases.partition"


def _assert_books(books: WalletBooks) -> None:
    assert books.remainder_minor >= 0, books
    assert books.outstanding_minor >= 0, books
    assert books.spent_minor >= 0, books
    assert books.outstanding_minor + books.remainder_minor + books.spent_minor == books.funded_minor, books


def _prefixed(txn: lmdb.Transaction, db: object, prefix: bytes) -> list[tuple[bytes, bytes]]:
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


_ORIGIN = struct.Struct(">IQ")  # big-endian, so key order is (partition, offset) order and pruning is a range


def _origin_key(prefix: bytes, origin_partition: int, origin_offset: int) -> bytes:
    return prefix + _ORIGIN.pack(origin_partition, origin_offset)


class LeaseOwner:
    """The owner partition's side: grants, returns and endgame debits for the wallets it owns.

    Args:
        env: the owner partition's LMDB environment (opened with room for one more named database).
        policy: lease sizes and the endgame threshold.
    """

    def __init__(self, env: lmdb.Environment, policy: LeasePolicy) -> None:
        self._db = env.open_db(OWNER_DB)
        self._policy = policy

    def books(self, txn: lmdb.Transaction, wallet_id: str) -> WalletBooks | None:
        """The wallet's books, or None for a wallet never funded."""
        raw = txn.get(b"w:" + wallet_id.encode(), db=self._db)
        if raw is None:
            return None
        books = _BOOKS_DECODER.decode(raw)
        _assert_books(books)
        return books

    def _put_books(self, txn: lmdb.Transaction, wallet_id: str, books: WalletBooks) -> None:
        _assert_books(books)
        txn.put(b"w:" + wallet_id.encode(), _ENCODER.encode(books), db=self._db)

    def fund(self, txn: lmdb.Transaction, wallet_id: str, amount_minor: int) -> WalletBooks:
        """Add funding (a wallet fund operation); the new units join the remainder."""
        assert amount_minor > 0, amount_minor
        books = self.books(txn, wallet_id) or WalletBooks()
        books.funded_minor += amount_minor
        books.remainder_minor += amount_minor
        self._put_books(txn, wallet_id, books)
        return books

    def open_leases(self, txn: lmdb.Transaction) -> dict[str, OpenLease]:
        """Every lease granted and not yet returned, by lease id."""
        return {key[2:].decode(): _LEASE_DECODER.decode(value) for key, value in _prefixed(txn, self._db, b"l:")}

    def handle(self, txn: lmdb.Transaction, message: LeaseMessage, now_ms: int) -> LeaseReply:
        """Apply one message (at most once) and answer it; a redelivery gets the first answer again."""
        if isinstance(message, LeaseReturn):
            return self._return(txn, message)
        cache_key = (
            b"r:" + message.request_id.encode()
            if isinstance(message, LeaseRequest)
            else _origin_key(b"e:", message.origin_partition, message.origin_offset)
        )
        cached = txn.get(cache_key, db=self._db)
        if cached is not None:
            return _REPLY_DECODER.decode(cached)
        if isinstance(message, LeaseRequest):
            reply: LeaseReply = self._grant(txn, message, now_ms)
        else:
            reply = self._debit(txn, message)
        txn.put(cache_key, _ENCODER.encode(reply), db=self._db)
        return reply

    def prune_debit_replies(self, txn: lmdb.Transaction, origin_partition: int, below_offset: int) -> int:
        """Forget the endgame replies of one partition's debits below ``below_offset``; their count.

        Safe once that partition reports ``PartitionLeases.answered_below`` *through the same ordered topic
        partition as its debits*: it re-sends a debit only until it has applied the answer, and every copy it sent
        before then is ahead of the report in that topic, so the owner has already answered it from the cache. A
        report that could overtake a copy (another topic, a producer without idempotence) would let that copy be
        debited twice.
        """
        start = _origin_key(b"e:", origin_partition, 0)
        end = _origin_key(b"e:", origin_partition, below_offset)
        keys: list[bytes] = []
        with txn.cursor(db=self._db) as cursor:
            if cursor.set_range(start):
                for key in cursor.iternext(values=False):
                    if key >= end:
                        break
                    keys.append(bytes(key))
        for key in keys:
            txn.delete(key, db=self._db)
        return len(keys)

    def _grant_size_minor(self, books: WalletBooks, want_minor: int) -> int:
        policy = self._policy
        share_minor = books.remainder_minor // (policy.partitions_count * policy.share_divisor)
        return min(want_minor, books.remainder_minor, max(policy.min_lease_minor, share_minor))

    def _grant(self, txn: lmdb.Transaction, request: LeaseRequest, now_ms: int) -> LeaseGrant | LeaseDenied:
        books = self.books(txn, request.wallet_id)
        if books is None:
            return LeaseDenied(
                partition=request.partition,
                wallet_id=request.wallet_id,
                request_id=request.request_id,
                reason="unknown_wallet",
            )
        policy = self._policy
        granted_minor = self._grant_size_minor(books, max(request.want_minor, policy.min_lease_minor))
        if books.remainder_minor < policy.partitions_count * policy.min_lease_minor or granted_minor <= 0:
            return LeaseDenied(
                partition=request.partition,
                wallet_id=request.wallet_id,
                request_id=request.request_id,
                reason="endgame",
            )
        books.leases_granted_count += 1
        lease_id = f"{request.wallet_id}/{books.leases_granted_count}"
        books.remainder_minor -= granted_minor
        books.outstanding_minor += granted_minor
        lease = OpenLease(
            partition=request.partition,
            wallet_id=request.wallet_id,
            granted_minor=granted_minor,
            expires_at_ms=now_ms + policy.lease_ttl_ms,
        )
        txn.put(b"l:" + lease_id.encode(), _ENCODER.encode(lease), db=self._db)
        self._put_books(txn, request.wallet_id, books)
        return LeaseGrant(
            partition=request.partition,
            wallet_id=request.wallet_id,
            request_id=request.request_id,
            lease_id=lease_id,
            granted_minor=granted_minor,
            expires_at_ms=lease.expires_at_ms,
        )

    def _return(self, txn: lmdb.Transaction, returned: LeaseReturn) -> ReturnAccepted:
        accepted = ReturnAccepted(
            partition=returned.partition, wallet_id=returned.wallet_id, lease_id=returned.lease_id
        )
        raw = txn.get(b"l:" + returned.lease_id.encode(), db=self._db)
        if raw is None:  # already returned: the redelivery closes nothing twice
            return accepted
        lease = _LEASE_DECODER.decode(raw)
        assert lease.partition == returned.partition, (lease, returned)
        assert 0 <= returned.unused_minor <= lease.granted_minor, (lease, returned)
        books = self.books(txn, returned.wallet_id)
        assert books is not None, returned
        books.outstanding_minor -= lease.granted_minor
        books.remainder_minor += returned.unused_minor
        books.spent_minor += lease.granted_minor - returned.unused_minor
        txn.delete(b"l:" + returned.lease_id.encode(), db=self._db)
        self._put_books(txn, returned.wallet_id, books)
        return accepted

    def _debit(self, txn: lmdb.Transaction, debit: EndgameDebit) -> Debited | Insufficient:
        assert debit.amount_minor > 0, debit
        books = self.books(txn, debit.wallet_id)
        remainder_minor = 0 if books is None else books.remainder_minor
        if books is None or debit.amount_minor > remainder_minor:
            return Insufficient(
                partition=debit.partition,
                wallet_id=debit.wallet_id,
                origin_partition=debit.origin_partition,
                origin_offset=debit.origin_offset,
                remainder_minor=remainder_minor,
            )
        books.remainder_minor -= debit.amount_minor
        books.spent_minor += debit.amount_minor
        self._put_books(txn, debit.wallet_id, books)
        return Debited(
            partition=debit.partition,
            wallet_id=debit.wallet_id,
            origin_partition=debit.origin_partition,
            origin_offset=debit.origin_offset,
            amount_minor=debit.amount_minor,
        )


class PartitionLeases:
    """One partition's side: its leases, drawn synchronously, and the messages it still owes the owners.

    Keys in its named database: ``h:<wallet>`` the holding, ``t:<lease>`` a return not yet accepted,
    ``d:<origin partition>:<origin offset>`` an endgame debit not yet answered.

    Args:
        env: the partition's LMDB environment (room for one more named database).
        partition: this partition's number (it names the request ids, so they are unique across partitions).
        policy: the same policy as the owners' (the retry delay after a denial).
    """

    def __init__(self, env: lmdb.Environment, partition: int, policy: LeasePolicy) -> None:
        self._db = env.open_db(PARTITION_DB)
        self._partition = partition
        self._policy = policy

    def holding(self, txn: lmdb.Transaction, wallet_id: str) -> Holding:
        """This partition's lease on the wallet (an empty holding if it never had one)."""
        raw = txn.get(b"h:" + wallet_id.encode(), db=self._db)
        holding = Holding() if raw is None else _HOLDING_DECODER.decode(raw)
        assert 0 <= holding.drawn_minor <= holding.granted_minor, holding
        return holding

    def _put_holding(self, txn: lmdb.Transaction, wallet_id: str, holding: Holding) -> None:
        assert 0 <= holding.drawn_minor <= holding.granted_minor, holding
        assert holding.lease_id is not None or holding.granted_minor == 0, holding
        txn.put(b"h:" + wallet_id.encode(), _ENCODER.encode(holding), db=self._db)

    def available_minor(self, txn: lmdb.Transaction, wallet_id: str, now_ms: int) -> int:
        """What a draw could take right now (0 once the lease has expired)."""
        holding = self.holding(txn, wallet_id)
        if holding.lease_id is None or now_ms >= holding.expires_at_ms:
            return 0
        return holding.granted_minor - holding.drawn_minor

    def draw(self, txn: lmdb.Transaction, wallet_id: str, amount_minor: int, now_ms: int) -> bool:
        """Spend from the local lease in the caller's txn (True), or leave it untouched when short (False)."""
        assert amount_minor > 0, amount_minor
        if self.available_minor(txn, wallet_id, now_ms) < amount_minor:
            return False
        holding = self.holding(txn, wallet_id)
        holding.drawn_minor += amount_minor
        self._put_holding(txn, wallet_id, holding)
        return True

    def short(
        self, txn: lmdb.Transaction, wallet_id: str, amount_minor: int, origin_offset: int, now_ms: int
    ) -> list[LeaseMessage]:
        """After a failed draw: the debit goes to the owner, and (when it may) a new lease is asked for."""
        debit = EndgameDebit(
            partition=self._partition,
            wallet_id=wallet_id,
            amount_minor=amount_minor,
            origin_partition=self._partition,
            origin_offset=origin_offset,
        )
        txn.put(_origin_key(b"d:", self._partition, origin_offset), _ENCODER.encode(debit), db=self._db)
        messages: list[LeaseMessage] = [debit]
        holding = self.holding(txn, wallet_id)
        recently_denied = (
            holding.denied_at_ms is not None and now_ms < holding.denied_at_ms + self._policy.denied_retry_ms
        )
        if holding.pending_request_id is None and not recently_denied:
            messages.extend(self._renew(txn, wallet_id, holding, amount_minor))
        return messages

    def _renew(self, txn: lmdb.Transaction, wallet_id: str, holding: Holding, want_minor: int) -> list[LeaseMessage]:
        messages: list[LeaseMessage] = []
        if holding.lease_id is not None:
            messages.append(self._start_return(txn, wallet_id, holding))
        holding.requests_sent_count += 1
        holding.pending_request_id = f"{self._partition}:{wallet_id}:{holding.requests_sent_count}"
        holding.pending_want_minor = max(want_minor, self._policy.min_lease_minor, self._policy.request_minor)
        self._put_holding(txn, wallet_id, holding)
        messages.append(self._request(wallet_id, holding))
        return messages

    def _request(self, wallet_id: str, holding: Holding) -> LeaseRequest:
        assert holding.pending_request_id is not None, holding
        return LeaseRequest(
            partition=self._partition,
            wallet_id=wallet_id,
            want_minor=holding.pending_want_minor,
            request_id=holding.pending_request_id,
        )

    def _start_return(self, txn: lmdb.Transaction, wallet_id: str, holding: Holding) -> LeaseReturn:
        """Close the local lease (mutates ``holding``; the caller writes it) and record the return as owed."""
        assert holding.lease_id is not None, holding
        returned = LeaseReturn(
            partition=self._partition,
            wallet_id=wallet_id,
            lease_id=holding.lease_id,
            unused_minor=holding.granted_minor - holding.drawn_minor,
        )
        txn.put(b"t:" + holding.lease_id.encode(), _ENCODER.encode(returned), db=self._db)
        holding.lease_id = None
        holding.granted_minor = 0
        holding.drawn_minor = 0
        holding.expires_at_ms = 0
        return returned

    def on_reply(self, txn: lmdb.Transaction, reply: LeaseReply, now_ms: int) -> bool:
        """Apply an owner's reply; False for a duplicate (already applied), which the caller must ignore.

        A ``Debited`` or ``Insufficient`` that returns True is the answer to the caller's credit: apply it (or
        refuse the credit) in this same txn.
        """
        assert reply.partition == self._partition, reply
        if isinstance(reply, ReturnAccepted):
            key = b"t:" + reply.lease_id.encode()
            return txn.delete(key, db=self._db)
        if isinstance(reply, Debited | Insufficient):
            key = _origin_key(b"d:", reply.origin_partition, reply.origin_offset)
            return txn.delete(key, db=self._db)
        holding = self.holding(txn, reply.wallet_id)
        if holding.pending_request_id != reply.request_id:
            return False
        holding.pending_request_id = None
        if isinstance(reply, LeaseDenied):
            holding.denied_at_ms = now_ms
        else:
            assert holding.lease_id is None, holding  # the old lease was returned when this one was asked for
            holding.lease_id = reply.lease_id
            holding.granted_minor = reply.granted_minor
            holding.drawn_minor = 0
            holding.expires_at_ms = reply.expires_at_ms
            holding.denied_at_ms = None
        self._put_holding(txn, reply.wallet_id, holding)
        return True

    def expire(self, txn: lmdb.Transaction, now_ms: int) -> list[LeaseMessage]:
        """Return every lease that has expired (the partition can no longer draw from it anyway)."""
        return self._return_where(txn, lambda holding: now_ms >= holding.expires_at_ms)

    def release_all(self, txn: lmdb.Transaction) -> list[LeaseMessage]:
        """Return every lease (on rebalance, before the partition is handed over), so nothing is stranded."""
        return self._return_where(txn, lambda holding: True)

    def _return_where(self, txn: lmdb.Transaction, condition: Callable[[Holding], bool]) -> list[LeaseMessage]:
        messages: list[LeaseMessage] = []
        for key, value in _prefixed(txn, self._db, b"h:"):
            holding = _HOLDING_DECODER.decode(value)
            if holding.lease_id is not None and condition(holding):
                messages.append(self._start_return(txn, key[2:].decode(), holding))
                self._put_holding(txn, key[2:].decode(), holding)
        return messages

    def answered_below(self, txn: lmdb.Transaction, consumed_offset: int) -> int:
        """Every endgame debit of this partition below this offset has been answered and applied.

        The lowest offset still waiting for its answer, or ``consumed_offset + 1`` when none waits; send it to the
        owners now and then so they can ``prune_debit_replies``.
        """
        rows = _prefixed(txn, self._db, b"d:")
        if not rows:
            return consumed_offset + 1
        partition, offset = _ORIGIN.unpack(rows[0][0][2:])
        assert partition == self._partition, rows[0]
        return offset

    def pending(self, txn: lmdb.Transaction) -> list[LeaseMessage]:
        """Everything produced and not yet answered, to produce again after a restart (the owner deduplicates)."""
        messages: list[LeaseMessage] = [_MESSAGE_DECODER.decode(value) for _, value in _prefixed(txn, self._db, b"t:")]
        messages.extend(_MESSAGE_DECODER.decode(value) for _, value in _prefixed(txn, self._db, b"d:"))
        for key, value in _prefixed(txn, self._db, b"h:"):
            holding = _HOLDING_DECODER.decode(value)
            if holding.pending_request_id is not None:
                messages.append(self._request(key[2:].decode(), holding))
        return messages
