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

from collections.abc import Callable

import lmdb

from scrip_actor.partitioned._lease_messages import (
    ENCODER,
    HOLDING_DECODER,
    MESSAGE_DECODER,
    ORIGIN,
    origin_key,
    prefixed,
)
from scrip_actor.partitioned._lease_messages import OWNER_DB as OWNER_DB
from scrip_actor.partitioned._lease_messages import PARTITION_DB as PARTITION_DB
from scrip_actor.partitioned._lease_messages import Debited as Debited
from scrip_actor.partitioned._lease_messages import EndgameDebit as EndgameDebit
from scrip_actor.partitioned._lease_messages import Holding as Holding
from scrip_actor.partitioned._lease_messages import Insufficient as Insufficient
from scrip_actor.partitioned._lease_messages import LeaseDenied as LeaseDenied
from scrip_actor.partitioned._lease_messages import LeaseGrant as LeaseGrant
from scrip_actor.partitioned._lease_messages import LeaseMessage as LeaseMessage
from scrip_actor.partitioned._lease_messages import LeasePolicy as LeasePolicy
from scrip_actor.partitioned._lease_messages import LeaseReply as LeaseReply
from scrip_actor.partitioned._lease_messages import LeaseRequest as LeaseRequest
from scrip_actor.partitioned._lease_messages import LeaseReturn as LeaseReturn
from scrip_actor.partitioned._lease_messages import OpenLease as OpenLease
from scrip_actor.partitioned._lease_messages import ReturnAccepted as ReturnAccepted
from scrip_actor.partitioned._lease_messages import WalletBooks as WalletBooks
from scrip_actor.partitioned._lease_owner import LeaseOwner as LeaseOwner


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
        holding = Holding() if raw is None else HOLDING_DECODER.decode(raw)
        assert 0 <= holding.drawn_minor <= holding.granted_minor, holding
        return holding

    def _put_holding(self, txn: lmdb.Transaction, wallet_id: str, holding: Holding) -> None:
        assert 0 <= holding.drawn_minor <= holding.granted_minor, holding
        assert holding.lease_id is not None or holding.granted_minor == 0, holding
        txn.put(b"h:" + wallet_id.encode(), ENCODER.encode(holding), db=self._db)

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
        self,
        txn: lmdb.Transaction,
        wallet_id: str,
        amount_minor: int,
        origin_offset: int,
        now_ms: int,
        ordinal: int = 0,
    ) -> list[LeaseMessage]:
        """After a failed draw: the debit goes to the owner, and (when it may) a new lease is asked for.

        ``ordinal`` numbers the debits of one record (0, 1, ...): each is deduplicated on its own.
        """
        debit = EndgameDebit(
            partition=self._partition,
            wallet_id=wallet_id,
            amount_minor=amount_minor,
            origin_partition=self._partition,
            origin_offset=origin_offset,
            ordinal=ordinal,
        )
        key = origin_key(b"d:", self._partition, origin_offset, ordinal)
        stored = txn.put(key, ENCODER.encode(debit), db=self._db, overwrite=False)
        assert stored, ("a debit of this record and ordinal is already pending", debit)
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
        txn.put(b"t:" + holding.lease_id.encode(), ENCODER.encode(returned), db=self._db)
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
            key = origin_key(b"d:", reply.origin_partition, reply.origin_offset, reply.ordinal)
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
        for key, value in prefixed(txn, self._db, b"h:"):
            holding = HOLDING_DECODER.decode(value)
            if holding.lease_id is not None and condition(holding):
                messages.append(self._start_return(txn, key[2:].decode(), holding))
                self._put_holding(txn, key[2:].decode(), holding)
        return messages

    def answered_below(self, txn: lmdb.Transaction, consumed_offset: int) -> int:
        """Every endgame debit of this partition below this offset has been answered and applied.

        The lowest offset still waiting for its answer, or ``consumed_offset + 1`` when none waits; send it to the
        owners now and then so they can ``prune_debit_replies``.
        """
        rows = prefixed(txn, self._db, b"d:")
        if not rows:
            return consumed_offset + 1
        partition, offset, _ordinal = ORIGIN.unpack(rows[0][0][2:])
        assert partition == self._partition, rows[0]
        return offset

    def pending(self, txn: lmdb.Transaction) -> list[LeaseMessage]:
        """Everything produced and not yet answered, to produce again after a restart (the owner deduplicates)."""
        messages: list[LeaseMessage] = [MESSAGE_DECODER.decode(value) for _, value in prefixed(txn, self._db, b"t:")]
        messages.extend(MESSAGE_DECODER.decode(value) for _, value in prefixed(txn, self._db, b"d:"))
        for key, value in prefixed(txn, self._db, b"h:"):
            holding = HOLDING_DECODER.decode(value)
            if holding.pending_request_id is not None:
                messages.append(self._request(key[2:].decode(), holding))
        return messages
