"""The owner partition's side of the lease protocol: grants, returns and endgame debits (see ``_leases``)."""

from __future__ import annotations

import lmdb

from scrip_actor.partitioned._lease_messages import (
    BOOKS_DECODER,
    ENCODER,
    LEASE_DECODER,
    OWNER_DB,
    REPLY_DECODER,
    Debited,
    EndgameDebit,
    Insufficient,
    LeaseDenied,
    LeaseGrant,
    LeaseMessage,
    LeasePolicy,
    LeaseReply,
    LeaseRequest,
    LeaseReturn,
    OpenLease,
    ReturnAccepted,
    WalletBooks,
    assert_books,
    origin_key,
    prefixed,
)


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
        books = BOOKS_DECODER.decode(raw)
        assert_books(books)
        return books

    def _put_books(self, txn: lmdb.Transaction, wallet_id: str, books: WalletBooks) -> None:
        assert_books(books)
        txn.put(b"w:" + wallet_id.encode(), ENCODER.encode(books), db=self._db)

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
        return {key[2:].decode(): LEASE_DECODER.decode(value) for key, value in prefixed(txn, self._db, b"l:")}

    def handle(self, txn: lmdb.Transaction, message: LeaseMessage, now_ms: int) -> LeaseReply:
        """Apply one message (at most once) and answer it; a redelivery gets the first answer again."""
        if isinstance(message, LeaseReturn):
            return self._return(txn, message)
        cache_key = (
            b"r:" + message.request_id.encode()
            if isinstance(message, LeaseRequest)
            else origin_key(b"e:", message.origin_partition, message.origin_offset, message.ordinal)
        )
        cached = txn.get(cache_key, db=self._db)
        if cached is not None:
            first = REPLY_DECODER.decode(cached)
            assert first.wallet_id == message.wallet_id, (first, message)  # the same message, redelivered
            assert not isinstance(first, Debited) or first.amount_minor == message.amount_minor, (first, message)
            return first
        if isinstance(message, LeaseRequest):
            reply: LeaseReply = self._grant(txn, message, now_ms)
        else:
            reply = self._debit(txn, message)
        txn.put(cache_key, ENCODER.encode(reply), db=self._db)
        return reply

    def prune_debit_replies(self, txn: lmdb.Transaction, origin_partition: int, below_offset: int) -> int:
        """Forget the endgame replies of one partition's debits below ``below_offset``; their count.

        Safe once that partition reports ``PartitionLeases.answered_below`` *through the same ordered topic
        partition as its debits*: it re-sends a debit only until it has applied the answer, and every copy it sent
        before then is ahead of the report in that topic, so the owner has already answered it from the cache. A
        report that could overtake a copy (another topic, a producer without idempotence) would let that copy be
        debited twice.
        """
        start = origin_key(b"e:", origin_partition, 0)
        end = origin_key(b"e:", origin_partition, below_offset)
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
        txn.put(b"l:" + lease_id.encode(), ENCODER.encode(lease), db=self._db)
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
        lease = LEASE_DECODER.decode(raw)
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
                ordinal=debit.ordinal,
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
            ordinal=debit.ordinal,
        )
